"""torch.onnx.export of an nn.LSTM with dynamic shapes: the first export in a process differs from the next.

The same call, twice in one fresh process, writes two different models:

1. An example of one sequence (N=1) with the batch marked dynamic. torch.export.export refuses
   it ("Constraints violated (batch)"). The first torch.onnx.export applies torch.export's
   suggested fix and writes a model whose batch is 1, without an error or a warning; ONNX
   Runtime then refuses every other batch size. The second writes a dynamic batch that runs
   every batch size correctly.
2. Two bidirectional layers with the sequence length and batch marked dynamic (N=2 example).
   The first export declares the sequence length dynamic, but ONNX Runtime fails at any other
   length than the example's in a Reshape node. The second declares the example's length
   static.

After any LSTM has gone through torch.onnx.export in the process (one without dynamic shapes
will do; an nn.Linear will not), every later export behaves like the second.

Run: python docs/findings/onnx_export_first_call_differs.py  (needs torch, onnxscript, onnxruntime)
"""

import logging
import subprocess
import sys
import warnings


def case(name: str) -> None:
    import onnxruntime
    import torch

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    torch.manual_seed(0)
    layers, bidirectional, example_batch = (1, False, 1) if name == "batch" else (2, True, 2)
    lstm = torch.nn.LSTM(4, 6, num_layers=layers, bidirectional=bidirectional).eval()
    states = layers * (2 if bidirectional else 1)

    def inputs(steps: int, batch: int):
        return torch.randn(steps, batch, 4), (torch.randn(states, batch, 6), torch.randn(states, batch, 6))

    batch, steps = torch.export.Dim("batch"), torch.export.Dim("steps")
    dynamic = {"input": {1: batch} if name == "batch" else {0: steps, 1: batch}, "hx": ({1: batch}, {1: batch})}
    example = inputs(3, example_batch)
    runs = [(3, 3)] if name == "batch" else [(3, 2), (7, 2)]
    print(f"{name}: {layers} layer(s), bidirectional={bidirectional}, example T=3 N={example_batch}, "
          f"dynamic: {'N' if name == 'batch' else 'T and N'}")
    for call in (1, 2):
        program = torch.onnx.export(lstm, example, dynamo=True, dynamic_shapes=dynamic, verbose=False)
        declared = [d.dim_param or d.dim_value for d in program.model_proto.graph.input[0].type.tensor_type.shape.dim]
        session = onnxruntime.InferenceSession(program.model_proto.SerializeToString(),
                                               providers=["CPUExecutionProvider"])
        for t, n in runs:
            x, state = inputs(t, n)
            feed = dict(zip([i.name for i in session.get_inputs()], (x.numpy(), *(s.numpy() for s in state))))
            try:
                output = session.run(None, feed)[0]
                with torch.no_grad():
                    outcome = f"ran, max |onnx - torch| = {abs(output - lstm(x, state)[0].numpy()).max():.2g}"
            except Exception as failure:
                outcome = "ONNX Runtime: " + str(failure).splitlines()[0][:110]
            print(f"  export {call}: input dims {declared}; at T={t} N={n}: {outcome}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        case(sys.argv[1])
    else:
        import onnxruntime
        import torch

        print("torch", torch.__version__, "onnxruntime", onnxruntime.__version__)
        for name in ("batch", "steps"):  # each in a fresh interpreter: the outcome depends on the process's history
            print(subprocess.run([sys.executable, __file__, name], capture_output=True, text=True).stdout, end="")
