"""torch.compile of nn.LSTM on the CPU: a training step crashes, and dropout between layers is dropped.

1. With autograd on, parameters requiring grad and an input that does not (an ordinary training
   step on data, or inference without no_grad), the compiled LSTM raises at run time:
   "TypeError: expected Tensor() for op: torch.ops.aten.mkldnn_rnn_layer.default". With the
   input requiring grad too, it runs and matches eager.
2. In training mode with dropout=1.0 between two layers (under no_grad), eager nn.LSTM zeroes
   the first layer's output before the second; the compiled one returns the output of the
   stack without any dropout.

Run: python docs/findings/torch_compile_lstm_training.py  (needs torch)
"""

import warnings

import torch
from torch import nn

warnings.filterwarnings("ignore")
print("torch", torch.__version__)
torch.manual_seed(0)
x, state = torch.randn(5, 3, 4), (torch.randn(2, 3, 6), torch.randn(2, 3, 6))


def compiled(module: nn.Module):
    with torch._dynamo.config.patch(allow_rnn=True):  # without it dynamo runs nn.LSTM eagerly
        return torch.compile(module)(x, state)[0]


lstm = nn.LSTM(4, 6, num_layers=2).eval()
for input_requires_grad in (False, True):
    x.requires_grad_(input_requires_grad)
    torch._dynamo.reset()
    try:
        error = (compiled(lstm) - lstm(x, state)[0]).abs().max().item()
        print(f"1. input requires grad={input_requires_grad}: ran, max |compiled - eager| = {error:.2g}")
    except Exception as failure:
        print(f"1. input requires grad={input_requires_grad}: {type(failure).__name__}: {failure}")
x.requires_grad_(False)

dropped = nn.LSTM(4, 6, num_layers=2, dropout=1.0).train()
no_dropout = nn.LSTM(4, 6, num_layers=2).train()
no_dropout.load_state_dict(dropped.state_dict())
torch._dynamo.reset()
with torch.no_grad():
    eager, compiled_output = dropped(x, state)[0], compiled(dropped)
    without = no_dropout(x, state)[0]
print(f"2. dropout=1.0, train: max |compiled - eager| = {(compiled_output - eager).abs().max():.2g}, "
      f"max |compiled - the same stack without dropout| = {(compiled_output - without).abs().max():.2g}")
