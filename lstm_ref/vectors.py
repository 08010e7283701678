"""Golden vectors: LSTM inputs, weights, states and expected results as files, and their replay.

``lstm-ref vectors --out DIR`` writes, for each configuration of
:func:`vector_configs` in float64 and float32, one ``<id>.npz`` and a
``manifest.json`` describing them, so an implementation in any language can
test against torch's semantics without torch. ``lstm-ref verify DIR [--impl
MODULE:ATTR]`` replays them against an implementation (default lstm_ref).

Each ``.npz`` holds (T steps, N batch, I input, H hidden, H_out = proj_size or
H, D directions, L layers):

    input             (T, N, I), (N, T, I) if batch_first, (T, I) unbatched;
                      packed cases: padded with zeros past each sequence's length
    lengths           (N,) int64, packed cases only (unsorted: pack with enforce_sorted=False)
    h0, c0            (L*D, N, H_out), (L*D, N, H), only when the case has initial states
    weight_ih_l0 ...  torch's parameter names and shapes, gate order i, f, g, o
    output            like input with D*H_out features (packed: zero past each length)
    h_n, c_n          (L*D, N, H_out), (L*D, N, H)

Expected values are torch's float64 result. A float32 case holds the same
draws rounded to float32 and the float64 result of those rounded values,
rounded to float32: the truth for the float32 inputs, not another float32
implementation's answer. A case passes under the tolerance table's row for
its dtype over T steps (:mod:`lstm_ref.tolerances`), written into the manifest.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from lstm_ref import configs
from lstm_ref.accuracy import padded, padded_time_dim
from lstm_ref.candidates import Factory
from lstm_ref.compare import TensorReport, compare_tensor
from lstm_ref.configs import Config
from lstm_ref.conformance import FAILED, PASSED, UNSUPPORTED, Result, build_reference, make_inputs
from lstm_ref.tolerances import tolerance_for

FORMAT = "lstm-ref-golden-vectors"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
VECTOR_DTYPES = ("float64", "float32")


def vector_configs() -> list[Config]:
    """The quick matrix's CPU float64 configurations less those in training mode (dropout
    is random): every axis value at least once, dropout in eval mode and a saturating T=200 case."""
    return [c for c in configs.quick_matrix(("cpu",), ("float64",)) if not c.train]


def write_case(config: Config, dtype: str, directory: Path, seed: int) -> dict:
    """Write one case's ``.npz`` in ``dtype``; return its manifest entry."""
    config = replace(config, dtype="float64")
    reference = build_reference(config, seed)                  # float64
    inputs = make_inputs(config, seed)                         # float64
    if dtype != "float64":                                     # round the draws, keep a float64 truth
        reference = reference.to(getattr(torch, dtype)).double()
        inputs = make_inputs(replace(config, dtype=dtype), seed)
        inputs.input = _cast(inputs.input, torch.float64)
        inputs.hx = None if inputs.hx is None else tuple(s.double() for s in inputs.hx)
    with torch.no_grad():
        output, (h_n, c_n) = reference(inputs.input, inputs.hx)
    arrays = {"input": padded(inputs.input, config), "output": padded(output, config),
              "h_n": h_n, "c_n": c_n, **reference.state_dict()}
    if inputs.hx is not None:
        arrays["h0"], arrays["c0"] = inputs.hx
    if inputs.lengths is not None:
        arrays["lengths"] = inputs.lengths
    case = replace(config, dtype=dtype)
    numpy_arrays = {k: (v.numpy() if k == "lengths" else v.to(case.torch_dtype).numpy())
                    for k, v in arrays.items()}
    name = f"{case.id}.npz"
    np.savez(directory / name, **numpy_arrays)
    tolerance = tolerance_for(dtype, "cpu").over(config.seq_len)
    return {
        "file": name, "id": case.id, "dtype": dtype, "config": case.as_dict(),
        "module_kwargs": case.module_kwargs(), "train": case.train,
        "tolerance": {"atol": tolerance.atol, "rtol": tolerance.rtol},
        "arrays": {k: list(v.shape) for k, v in numpy_arrays.items()},
    }


def _cast(input: Tensor | PackedSequence, dtype: torch.dtype) -> Tensor | PackedSequence:
    if isinstance(input, PackedSequence):
        return PackedSequence(input.data.to(dtype), input.batch_sizes, input.sorted_indices,
                              input.unsorted_indices)
    return input.to(dtype)


def write_vectors(directory: str | Path, seed: int = 0, cases: list[Config] | None = None) -> dict:
    """Write every case in every dtype of VECTOR_DTYPES and the manifest; return the manifest."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    entries = [write_case(c, dtype, directory, seed)
               for c in (vector_configs() if cases is None else cases) for dtype in VECTOR_DTYPES]
    manifest = {
        "format": FORMAT, "version": FORMAT_VERSION, "seed": seed, "torch": torch.__version__,
        "pass_rule": "|actual - expected| <= atol + rtol * |expected| element-wise, for output, h_n, c_n",
        "gate_order": "i, f, g, o (torch)", "cases": entries,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


class VectorsError(ValueError):
    """A vectors directory that cannot be replayed (missing or malformed manifest or case)."""


def read_manifest(directory: str | Path) -> dict:
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise VectorsError(f"{path}: no such file (write one with lstm-ref vectors --out DIR)") from None
    except (OSError, json.JSONDecodeError) as error:
        raise VectorsError(f"{path}: not a readable manifest: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise VectorsError(f"{path}: not a {FORMAT} manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise VectorsError(f"{path}: format version {manifest.get('version')}, "
                           f"this reader knows {FORMAT_VERSION}")
    return manifest


def replay_case(entry: dict, directory: Path, factory: Factory) -> Result:
    """Run the factory's LSTM on one case's inputs and compare output, h_n, c_n with the file's."""
    config = Config(**{k: v for k, v in entry["config"].items() if k != "id"})
    started = time.perf_counter()
    try:
        with np.load(directory / entry["file"], allow_pickle=False) as archive:
            arrays = {k: torch.from_numpy(np.array(archive[k])) for k in archive.files}
    except (OSError, ValueError) as error:
        raise VectorsError(f"{directory / entry['file']}: {error}") from None
    module = nn.LSTM(**entry["module_kwargs"], dtype=config.torch_dtype).train(entry["train"])
    with torch.no_grad():
        module.load_state_dict({k: arrays[k] for k in module.state_dict()})
    input: Tensor | PackedSequence = arrays["input"]
    if "lengths" in arrays:
        input = pack_padded_sequence(input, arrays["lengths"], batch_first=config.batch_first,
                                     enforce_sorted=False)
    hx = (arrays["h0"], arrays["c0"]) if "h0" in arrays else None
    try:
        candidate = factory(copy.deepcopy(module))
        with torch.no_grad():
            output, (h_n, c_n) = candidate(input, hx)
    except NotImplementedError as error:
        return Result(config, UNSUPPORTED, message=str(error) or "NotImplementedError")
    except Exception as error:
        return Result(config, FAILED, message=f"candidate raised {type(error).__name__}: {error}")
    tolerance = tolerance_for(config.dtype, "cpu").over(config.seq_len)
    if isinstance(input, PackedSequence) and not isinstance(output, PackedSequence):
        reports = [TensorReport("output", False, f"expected a PackedSequence, got {type(output).__name__}")]
    else:
        reports = [compare_tensor("output", padded(output, config), arrays["output"], tolerance,
                                  time_dim=padded_time_dim(config))]
    reports += [compare_tensor("h_n", h_n, arrays["h_n"], tolerance),
                compare_tensor("c_n", c_n, arrays["c_n"], tolerance)]
    status = PASSED if all(r.passed for r in reports) else FAILED
    return Result(config, status, reports, seconds=time.perf_counter() - started)


def verify_vectors(directory: str | Path, factory: Factory) -> list[Result]:
    """Replay every case of the manifest in ``directory``."""
    directory = Path(directory)
    return [replay_case(entry, directory, factory) for entry in read_manifest(directory)["cases"]]
