"""A dynamically quantized nn.LSTM (nn.GRU) refuses unbatched input, which nn.LSTM (nn.GRU) takes.

nn.LSTM and nn.GRU accept an unbatched sequence x of shape (T, input_size) with states (L*D, H)
since torch 1.11. torch.ao.quantization.quantize_dynamic replaces them with
torch.ao.nn.quantized.dynamic.LSTM and .GRU, whose forward still requires a 3-D input: the same
call that works on the float module raises on the quantized one.

Run: python docs/findings/quantized_dynamic_unbatched.py  (needs torch only)
"""

import torch

print("torch", torch.__version__)
x = torch.randn(5, 4)                                                  # unbatched: (T, input_size)
for kind in (torch.nn.LSTM, torch.nn.GRU):
    torch.manual_seed(0)
    holder = torch.nn.ModuleDict({"rnn": kind(input_size=4, hidden_size=6).eval()})
    quantized = torch.ao.quantization.quantize_dynamic(holder, {kind}, dtype=torch.qint8)["rnn"]
    output, state = holder["rnn"](x)
    states = state if isinstance(state, tuple) else (state,)
    print(f"nn.{kind.__name__}:", [tuple(t.shape) for t in (output, *states)])
    try:
        quantized(x)
        print(f"quantized {kind.__name__}: ran")
    except Exception as error:
        print(f"{type(quantized).__module__}.{type(quantized).__name__}: {type(error).__name__}: {error}")
