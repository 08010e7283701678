"""torch.onnx.export (dynamo=True, torch's default exporter) drops an LSTM's projection.

nn.LSTM(proj_size=P) computes h_t = W_hr (o_t * tanh(c_t)). ONNX's LSTM operator has no
projection; the exporter nevertheless writes an LSTM node with hidden_size = P and leaves
weight_hr out, instead of refusing the module or adding the projection after the node. The
model it writes is invalid: ONNX Runtime fails on it, with or without initial states.

Run: python docs/findings/onnx_export_proj_size.py  (needs torch, onnxscript, onnxruntime)
"""

import warnings

import onnxruntime
import torch

warnings.filterwarnings("ignore")
torch.manual_seed(0)
lstm = torch.nn.LSTM(input_size=4, hidden_size=6, proj_size=3).eval()
x = torch.randn(5, 2, 4)

program = torch.onnx.export(lstm, (x,), dynamo=True)           # every other setting: the default
node = next(node for node in program.model_proto.graph.node if node.op_type == "LSTM")
print("torch", torch.__version__, "onnxruntime", onnxruntime.__version__)
print("ONNX LSTM node hidden_size:", [a.i for a in node.attribute if a.name == "hidden_size"],
      "- the module has hidden_size 6 and proj_size 3")
session = onnxruntime.InferenceSession(program.model_proto.SerializeToString(), providers=["CPUExecutionProvider"])
try:
    session.run(None, {session.get_inputs()[0].name: x.numpy()})
    print("ONNX Runtime ran the model")
except Exception as error:
    print("ONNX Runtime:", str(error).splitlines()[0][:300])
