"""torch.onnx.export writes a bfloat16 nn.LSTM as ONNX LSTM nodes with bfloat16 inputs, which
the ONNX LSTM operator does not allow (its type T is float16, float or double): ONNX Runtime
rejects the exported model as invalid. eager torch runs the module; the exporter neither refuses
it nor inserts casts. A float16 LSTM exports and runs.

Run: python docs/findings/onnx_export_bfloat16_lstm.py  (needs torch, onnx, onnxscript, onnxruntime)
"""

import onnxruntime
import torch

torch.manual_seed(0)
for dtype in (torch.bfloat16, torch.float16):
    lstm = torch.nn.LSTM(input_size=4, hidden_size=6).to(dtype).eval()
    x = torch.randn(5, 3, 4, dtype=dtype)
    with torch.no_grad():
        print(f"{dtype}: eager output {tuple(lstm(x)[0].shape)}")
    program = torch.onnx.export(lstm, (x,), dynamo=True, optimize=False)
    try:
        session = onnxruntime.InferenceSession(program.model_proto.SerializeToString(),
                                               providers=["CPUExecutionProvider"])
        print(f"{dtype}: ONNX Runtime loads the exported model; inputs", [i.type for i in session.get_inputs()])
    except Exception as error:
        print(f"{dtype}: ONNX Runtime refuses the exported model: {type(error).__name__}: {error}")
