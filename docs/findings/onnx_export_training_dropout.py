"""An LSTM in training mode with dropout=1.0, exported with torch.onnx.export, runs as its eval-mode model.

nn.LSTM(num_layers=2, dropout=1.0) in training mode zeroes the second layer's input (torch
allows p in [0, 1]). torch.onnx.export (dynamo=True; the module's own mode is exported) writes a
Dropout node between the layers with ratio 1.0 and training_mode true, but ONNX's Dropout takes
ratio in [0, 1). ONNX Runtime's kernel refuses the node ("ratio must be in the range [0, 1)")
when graph optimisations are off; with its default optimisations the model runs and computes
the eval-mode output, silently. (With ratio 0.5 ONNX Runtime does apply the dropout.)

Run: python docs/findings/onnx_export_training_dropout.py  (needs torch, onnxscript, onnxruntime)
"""

import warnings

import onnxruntime
import torch

warnings.filterwarnings("ignore")
torch.manual_seed(0)
lstm = torch.nn.LSTM(input_size=4, hidden_size=6, num_layers=2, dropout=1.0).train()
x = torch.randn(5, 2, 4)
program = torch.onnx.export(lstm, (x,), dynamo=True)
with torch.no_grad():
    training, inference = lstm(x)[0], lstm.eval()(x)[0]
print("torch", torch.__version__, "onnxruntime", onnxruntime.__version__)
print("ops:", sorted({node.op_type for node in program.model_proto.graph.node}))

for level in (onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL, onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL):
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = level
    session = onnxruntime.InferenceSession(program.model_proto.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    try:
        exported = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])
        print(f"{level.name}: max |onnx - torch training| = {(exported - training).abs().max():.3g}, "
              f"max |onnx - torch eval| = {(exported - inference).abs().max():.3g}")
    except Exception as error:
        print(f"{level.name}: {str(error).splitlines()[0][-120:]}")
