"""Under CPU autocast, nn.LSTM's oneDNN path raises where the native path runs; the two return
different dtypes where both run.

torch.autocast("cpu", dtype=torch.bfloat16 or torch.float16) around a float32 nn.LSTM: with
oneDNN enabled (torch's default on CPU), on a CPU without native bfloat16/float16 arithmetic
(no AVX512-BF16/AMX: torch.ops.mkldnn._is_mkldnn_bf16_supported() is False), the call raises
"could not create a primitive descriptor for the LSTM forward propagation primitive", with or
without grad. With oneDNN disabled (the native ATen loop) it runs, computes its matrix products
in the autocast dtype, and returns output, h_n and c_n in float32. On CPUs with native bfloat16,
oneDNN runs under bfloat16 autocast and returns them in bfloat16 (reported, not reproduced on
this machine). A bfloat16 or float16 module (no autocast) runs on both paths.

With projections (proj_size > 0) oneDNN is not used, and the native path under autocast returns
output and h_n in the autocast dtype but c_n in float32: the projection's matmul is autocast,
the cell state is not.

Run: python docs/findings/onednn_cpu_autocast_lstm.py  (needs torch only)
"""

import torch

torch.manual_seed(0)
lstm = torch.nn.LSTM(input_size=4, hidden_size=6)
x = torch.randn(5, 3, 4)
with torch.no_grad():
    exact = lstm.double()(x.double())[0]
    lstm.float()
print("torch", torch.__version__, "| oneDNN bfloat16 support:", torch.ops.mkldnn._is_mkldnn_bf16_supported(),
      "| float16 support:", torch.ops.mkldnn._is_mkldnn_fp16_supported())
for dtype in (torch.bfloat16, torch.float16):
    for onednn in (True, False):
        path = "oneDNN" if onednn else "native"
        with torch.backends.mkldnn.flags(enabled=onednn), torch.autocast("cpu", dtype=dtype), torch.no_grad():
            try:
                output, (h_n, c_n) = lstm(x)
                error = (output.double() - exact).abs().max().item()
                print(f"autocast {dtype}, {path}: output {output.dtype}, h_n {h_n.dtype}, c_n {c_n.dtype}; "
                      f"max error against float64 {error:.2g}")
            except RuntimeError as failure:
                print(f"autocast {dtype}, {path}: RuntimeError: {str(failure).splitlines()[0]}")

projected = torch.nn.LSTM(input_size=4, hidden_size=6, proj_size=3)
for dtype in (torch.bfloat16, torch.float16):
    with torch.autocast("cpu", dtype=dtype), torch.no_grad():
        output, (h_n, c_n) = projected(x)
    print(f"autocast {dtype}, proj_size=3 (native): output {output.dtype}, h_n {h_n.dtype}, c_n {c_n.dtype}")
