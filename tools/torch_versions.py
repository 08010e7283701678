"""Did torch.nn.LSTM (GRU, RNN) change between torch versions? The tables of docs/versions.md.

    python tools/torch_versions.py OUT_DIR PYTHON [PYTHON ...] > tables.md

Each PYTHON is an interpreter with torch and lstm_ref installed (one venv per torch version,
oldest first). Run in each interpreter in turn:

1. ``write``: golden vectors (:func:`lstm_ref.vectors.write_vectors`, what ``lstm-ref vectors``
   writes: float64 truth, float32 and float64 cases) into ``OUT_DIR/<n>/vectors``;
2. ``verify``: this version's torch modules (``--impl torch``) replay every version's vectors
   (what ``lstm-ref verify DIR --impl torch`` does): passed cases and the worst error as a
   multiple of the tolerance;
3. ``record``: this version's modules (nn.LSTM, nn.GRU, nn.RNN) on the first version's vector
   inputs, on each CPU path that really computes the case (oneDNN where it takes it, the native
   loop), float32 and float64: output, h_n, c_n (the LSTM's), and the gradients of
   ``sum(output*w_o) + sum(h_n*w_h) + sum(c_n*w_c)`` (fixed weights exact in any dtype) with
   respect to the input, h0, c0 and every parameter.

The records are then compared pairwise, element by element (:func:`compare`): how many cases
differ at all, the greatest difference, and in ULPs of the dtype.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstm_ref.candidates import load_factory
from lstm_ref.compare import split_result, state_names, ulp
from lstm_ref.configs import torch_runs_path
from lstm_ref.conformance import PASSED, call_hx, torch_path
from lstm_ref.vectors import case_config, case_module, read_manifest, verify_vectors, write_vectors

PATHS = ("onednn", "native")
FORWARD = ("output", "h_n", "c_n")


def loss_weights(tensor: Tensor) -> Tensor:
    """Fixed weights for ``tensor``'s share of the loss: multiples of 1/4 in [-1.25, 1.25]."""
    pattern = (torch.arange(tensor.numel(), dtype=torch.float64) * 7 % 11 - 5) / 4
    return pattern.reshape(tensor.shape).to(tensor.dtype)


def run_case(entry: dict, arrays: dict[str, Tensor], path: str) -> dict[str, Tensor]:
    """torch's module of one vector case (nn.LSTM, nn.GRU, nn.RNN) on its inputs, on ``path``:
    its outputs and gradients by name."""
    config = case_config(entry)
    module = case_module(entry, arrays).train(False)
    x = arrays["input"].clone().requires_grad_()
    input = (pack_padded_sequence(x, arrays["lengths"], batch_first=config.batch_first, enforce_sorted=False)
             if "lengths" in arrays else x)
    leaves = {"input": x}
    initial = {name: arrays[name].clone().requires_grad_() for name in ("h0", "c0") if name in arrays}
    leaves.update(initial)
    leaves.update(module.named_parameters())
    with torch_path(path):
        result = module(input, call_hx(tuple(initial.values()) or None))
        names = state_names(result)
        output, states = split_result(result, names)
        if "lengths" in arrays:
            output = pad_packed_sequence(output, batch_first=config.batch_first)[0]
        loss = sum((t * loss_weights(t)).sum() for t in (output, *states))
        grads = torch.autograd.grad(loss, list(leaves.values()))
    results = {"output": output.detach(), **{name: state.detach() for name, state in zip(names, states)}}
    results.update((f"grad.{name}", grad) for name, grad in zip(leaves, grads))
    return results


def record(vectors: Path, out: Path) -> int:
    """Write this torch's results on every case of ``vectors``, once per path that really
    computes it, as ``out`` (npz, keys ``path|dtype|case id|tensor``); return how many runs."""
    arrays: dict[str, np.ndarray] = {}
    runs = 0
    for entry in read_manifest(vectors)["cases"]:
        config = case_config(entry)
        with np.load(vectors / entry["file"], allow_pickle=False) as archive:
            data = {k: torch.from_numpy(np.array(archive[k])) for k in archive.files}
        for path in PATHS:
            runs_on = torch_runs_path(replace(config, torch_path=path))
            prefix = f"{runs_on}|{config.dtype}|{replace(config, torch_path=runs_on).id}"
            if f"{prefix}|output" in arrays:
                continue
            runs += 1
            for name, tensor in run_case(entry, data, path).items():
                arrays[f"{prefix}|{name}"] = tensor.numpy()
    np.savez(out, **arrays)
    return runs


def verify(vectors: Path) -> dict:
    """This torch's modules on ``vectors``: cases passed, their number, the worst tolerance ratio."""
    results = verify_vectors(vectors, load_factory("torch")[1])
    return {"passed": sum(r.status == PASSED for r in results), "cases": len(results),
            "worst_ratio": max(r.worst_ratio for r in results)}


def compare(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> list[dict]:
    """Rows of (path, dtype, forward|gradients): cases compared, cases with any difference, the
    greatest absolute difference and in ULPs of the dtype (at ``b``'s value), and where."""
    rows: dict[tuple[str, str, str], dict] = {}
    for key in sorted(a.keys() & b.keys()):
        path, dtype, case, tensor = key.split("|")
        row = rows.setdefault((path, dtype, "forward" if tensor in FORWARD else "gradients"),
                              {"cases": set(), "differing": set(), "max_abs": 0.0, "max_ulp": 0.0, "worst": ""})
        row["cases"].add(case)
        x, y = torch.from_numpy(a[key]), torch.from_numpy(b[key])
        difference = (x.double() - y.double()).abs()
        if difference.numel() == 0 or not bool((difference > 0).any()):
            continue
        row["differing"].add(case)
        in_ulp = float((difference / ulp(y.double(), y.dtype)).max())
        if in_ulp > row["max_ulp"]:
            row["max_ulp"], row["worst"] = in_ulp, f"{case} {tensor}"
        row["max_abs"] = max(row["max_abs"], float(difference.max()))
    return [{"path": path, "dtype": dtype, "kind": kind, "cases": len(row["cases"]),
             "differing": len(row["differing"]), "max_abs": row["max_abs"], "max_ulp": row["max_ulp"],
             "worst": row["worst"]} for (path, dtype, kind), row in sorted(rows.items())]


def _in(python: str, *arguments: object) -> str:
    """Run this script's subcommand in ``python``; its standard output."""
    command = [python, __file__, *map(str, arguments)]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def run(out: Path, pythons: list[str]) -> str:
    """Everything in the module docstring; the markdown tables."""
    versions = []
    for index, python in enumerate(pythons):
        versions.append(_in(python, "write", out / str(index) / "vectors"))
    lines = ["Golden vectors written by one torch (rows), replayed by another's torch modules (columns): "
             "cases passed, and the worst error as a multiple of the tolerance.", "",
             "| written by | " + " | ".join(f"verified by {v}" for v in versions) + " |",
             "|---|" + "---|" * len(versions)]
    for writer, version in enumerate(versions):
        cells = []
        for python in pythons:
            found = json.loads(_in(python, "verify", out / str(writer) / "vectors"))
            cells.append(f"{found['passed']}/{found['cases']}, {found['worst_ratio']:.3g}x")
        lines.append(f"| {version} | " + " | ".join(cells) + " |")
    for index, python in enumerate(pythons):
        _in(python, "record", out / "0" / "vectors", out / str(index) / "record.npz")
    lines += ["", "torch's own results (nn.LSTM, nn.GRU, nn.RNN) on the same inputs, one version against another: "
              "cases with any difference, the greatest difference (absolute, and in ULPs of the dtype), and where.", "",
              "| versions | path | dtype | results | cases differing | max abs | max ULP | worst |",
              "|---|---|---|---|---|---|---|---|"]
    records = [dict(np.load(out / str(i) / "record.npz")) for i in range(len(pythons))]
    for i, j in itertools.combinations(range(len(pythons)), 2):
        for row in compare(records[i], records[j]):
            lines.append(f"| {versions[i]} → {versions[j]} | {row['path']} | {row['dtype']} | {row['kind']} | "
                         f"{row['differing']}/{row['cases']} | {row['max_abs']:.3g} | {row['max_ulp']:.3g} | "
                         f"{row['worst'] or '-'} |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    command, *arguments = argv
    if command == "write":
        write_vectors(arguments[0])
        print(torch.__version__)
    elif command == "verify":
        print(json.dumps(verify(Path(arguments[0]))))
    elif command == "record":
        print(record(Path(arguments[0]), Path(arguments[1])))
    else:
        print(run(Path(command), arguments))


if __name__ == "__main__":
    main(sys.argv[1:])
