"""quantize_dynamic accepts an nn.LSTM with proj_size, and the quantized module cannot run it.

torch.ao.quantization.quantize_dynamic replaces nn.LSTM(proj_size=P) with
torch.ao.nn.quantized.dynamic.LSTM without refusing the projection (it refuses bias=False with
"mod.bias must be True"). The quantized module then fails on the calls the float module takes:
without states inside the int8 GEMM, with states on their shape (it expects h0 of size H, not P).

Run: python docs/findings/quantized_dynamic_proj_size.py  (needs torch only)
"""

import torch

torch.manual_seed(0)
holder = torch.nn.ModuleDict({"lstm": torch.nn.LSTM(input_size=4, hidden_size=6, proj_size=3).eval()})
quantized = torch.ao.quantization.quantize_dynamic(holder, {torch.nn.LSTM}, dtype=torch.qint8)["lstm"]
x, state = torch.randn(5, 2, 4), (torch.randn(1, 2, 3), torch.randn(1, 2, 6))
print("torch", torch.__version__)
print("nn.LSTM:", [tuple(t.shape) for t in (holder["lstm"](x, state)[0], *holder["lstm"](x, state)[1])])
for name, args in (("without states", (x,)), ("with states", (x, state))):
    try:
        quantized(*args)
        print(f"quantized LSTM {name}: ran")
    except Exception as error:
        print(f"quantized LSTM {name}: {type(error).__name__}: {str(error).splitlines()[0][:160]}")
