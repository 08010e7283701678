"""A dynamically quantized nn.LSTM refuses unbatched input, which nn.LSTM takes.

nn.LSTM accepts an unbatched sequence x of shape (T, input_size) with states (L*D, H) since
torch 1.11. torch.ao.quantization.quantize_dynamic replaces it with
torch.ao.nn.quantized.dynamic.LSTM, whose forward still requires a 3-D input: the same call that
works on the float module raises on the quantized one.

Run: python docs/findings/quantized_dynamic_unbatched.py  (needs torch only)
"""

import torch

torch.manual_seed(0)
holder = torch.nn.ModuleDict({"lstm": torch.nn.LSTM(input_size=4, hidden_size=6).eval()})
quantized = torch.ao.quantization.quantize_dynamic(holder, {torch.nn.LSTM}, dtype=torch.qint8)["lstm"]
x = torch.randn(5, 4)                                                  # unbatched: (T, input_size)
print("torch", torch.__version__)
print("nn.LSTM:", [tuple(t.shape) for t in (holder["lstm"](x)[0], *holder["lstm"](x)[1])])
try:
    quantized(x)
    print("quantized LSTM: ran")
except Exception as error:
    print(f"{type(quantized).__module__}.{type(quantized).__name__}: {type(error).__name__}: {error}")
