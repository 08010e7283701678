"""Does torch.onnx.export (dynamo=True) write nn.GRU with ONNX's linear_before_reset=1?

torch's GRU applies the reset gate after the recurrent product, n = tanh(W_in x + b_in +
r * (W_hn h + b_hn)): ONNX's GRU with linear_before_reset=1. With linear_before_reset=0
(ONNX's default) a runtime computes n = tanh(W_in x + b_in + W_hn (r * h) + b_hn), another
equation. pytorch/pytorch#189225 reports the dynamo exporter writing the attribute as 0
(the translation lives in onnxscript's aten_gru, microsoft/onnxscript#2852). This script
exports a GRU with the default exporter, prints the attribute of every GRU node it wrote (or
the ops it wrote instead of one), and compares ONNX Runtime's output with torch's, for a
one-layer and a two-layer bidirectional GRU with an initial state.

Run: python docs/findings/onnx_export_gru_linear_before_reset.py  (needs torch, onnxscript, onnxruntime)
"""

import collections
import warnings

import onnxruntime
import onnxscript
import torch

warnings.filterwarnings("ignore")
print("torch", torch.__version__, "onnxscript", onnxscript.__version__, "onnxruntime", onnxruntime.__version__)
for kwargs in ({}, {"num_layers": 2, "bidirectional": True}):
    torch.manual_seed(0)
    gru = torch.nn.GRU(input_size=4, hidden_size=6, **kwargs).eval()
    layers = gru.num_layers * (2 if gru.bidirectional else 1)
    x, h0 = torch.randn(5, 2, 4), torch.randn(layers, 2, 6)
    program = torch.onnx.export(gru, (x, h0), dynamo=True)   # every other setting: the default
    graph = program.model_proto.graph
    nodes = [node for node in graph.node if node.op_type == "GRU"]
    attributes = [{a.name: a.i for a in node.attribute if a.name == "linear_before_reset"} for node in nodes]
    print(f"nn.GRU({kwargs or ''}): GRU nodes {len(nodes)}, linear_before_reset {attributes}"
          + ("" if nodes else f"; ops written: {dict(collections.Counter(n.op_type for n in graph.node))}"))
    session = onnxruntime.InferenceSession(program.model_proto.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    feeds = dict(zip((i.name for i in session.get_inputs()), (x.numpy(), h0.numpy())))
    output, h_n = session.run(None, feeds)[:2]
    with torch.no_grad():
        expected, expected_h = gru(x, h0)
    error = max(abs(output - expected.numpy()).max(), abs(h_n - expected_h.numpy()).max())
    print(f"  ONNX Runtime against torch: max abs error {error:.3g}, largest |output| {abs(expected).max():.3g}")
