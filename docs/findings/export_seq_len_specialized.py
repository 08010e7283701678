"""An exported nn.LSTM cannot take another sequence length than its example's.

torch.export specialises nn.LSTM's time dimension to the example's value: asking for it to be
dynamic (torch.export.Dim) raises "Constraints violated". torch.onnx.export (dynamo=True, the
default exporter) given the same dynamic_shapes does not raise: it writes a model whose input
declares the time dimension dynamic, and which fails in ONNX Runtime at any other length.

Run: python docs/findings/export_seq_len_specialized.py  (needs torch, onnxscript, onnxruntime)
"""

import warnings

import onnxruntime
import torch

warnings.filterwarnings("ignore")
torch.manual_seed(0)
lstm = torch.nn.LSTM(input_size=4, hidden_size=6).eval()
example = (torch.randn(3, 2, 4), (torch.randn(1, 2, 6), torch.randn(1, 2, 6)))   # T=3, N=2, (h0, c0)
T, N = torch.export.Dim("T"), torch.export.Dim("N")
dynamic = {"input": {0: T, 1: N}, "hx": ({1: N}, {1: N})}
print("torch", torch.__version__, "onnxruntime", onnxruntime.__version__)

try:
    torch.export.export(lstm, example, dynamic_shapes=dynamic)
    print("torch.export: exported with a dynamic T")
except Exception as error:
    print("torch.export:", str(error).splitlines()[0][:200])

program = torch.onnx.export(lstm, example, dynamo=True, dynamic_shapes=dynamic)
declared = program.model_proto.graph.input[0].type.tensor_type.shape.dim
print("torch.onnx.export: input dims", [d.dim_param or d.dim_value for d in declared])
session = onnxruntime.InferenceSession(program.model_proto.SerializeToString(), providers=["CPUExecutionProvider"])
for steps in (3, 7):
    x, state = torch.randn(steps, 2, 4), (torch.randn(1, 2, 6), torch.randn(1, 2, 6))
    feed = dict(zip([i.name for i in session.get_inputs()], (x.numpy(), *(s.numpy() for s in state))))
    try:
        output = session.run(None, feed)[0]
        with torch.no_grad():
            error = abs(output - lstm(x, state)[0].numpy()).max()
        print(f"T={steps}: ran, max |onnx - torch| = {error:.2g}")
    except Exception as failure:
        print(f"T={steps}: ONNX Runtime:", str(failure).splitlines()[0][-200:])
