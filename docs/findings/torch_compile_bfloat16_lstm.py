"""torch.compile of a bfloat16 nn.LSTM raises oneDNN's "could not create a primitive descriptor"
on a CPU without native bfloat16, where the eager module runs.

Eager nn.LSTM checks whether oneDNN can take a bfloat16 LSTM on this CPU
(torch.ops.mkldnn._is_mkldnn_bf16_supported()) and otherwise runs the native loop; the compiled
module calls oneDNN's LSTM regardless and fails, forward and in a training step. A float16
module compiles and runs. (torch._dynamo.config.allow_rnn = True: without it dynamo leaves
nn.LSTM out of the graph and runs it eagerly.)

Run: python docs/findings/torch_compile_bfloat16_lstm.py  (needs torch and a C++ compiler)
"""

import torch

torch._dynamo.config.allow_rnn = True
torch.manual_seed(0)
print("torch", torch.__version__, "| oneDNN bfloat16 support:", torch.ops.mkldnn._is_mkldnn_bf16_supported())
for dtype in (torch.bfloat16, torch.float16):
    lstm = torch.nn.LSTM(input_size=4, hidden_size=6).to(dtype)
    x = torch.randn(5, 3, 4, dtype=dtype)
    with torch.no_grad():
        eager = lstm(x)[0]
        try:
            compiled = torch.compile(lstm)(x)[0]
            print(f"{dtype}: compiled runs, max difference to eager {(compiled - eager).abs().max().item():.3g}")
        except Exception as error:
            print(f"{dtype}: eager runs; compiled raises {type(error).__name__}: {str(error).splitlines()[0]}")
    torch._dynamo.reset()
