"""Golden vectors: LSTM, GRU and RNN inputs, weights, states and expected results as files, and their replay.

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
                      (c0 for the LSTM only)
    weight_ih_l0 ...  torch's parameter names and shapes, gate order i, f, g, o (LSTM),
                      r, z, n (GRU): the manifest's ``gate_orders``
    output            like input with D*H_out features (packed: zero past each length)
    h_n, c_n          (L*D, N, H_out), (L*D, N, H) (c_n for the LSTM only)

A case's ``config.mode`` is its module kind (LSTM, GRU, RNN_TANH, RNN_RELU; torch's
``RNNBase.mode``) and ``module_kwargs`` the constructor arguments of that module
(``nn.RNN``'s include its nonlinearity). Format version 1 held LSTM cases only.

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
from lstm_ref.compare import TensorReport, compare_tensor, result_form, split_result, state_names
from lstm_ref.configs import MODES, TORCH_PATHS, Config
from lstm_ref.conformance import (
    FAILED,
    PASSED,
    UNSUPPORTED,
    Inputs,
    Result,
    build_reference,
    call_hx,
    make_inputs,
    torch_path,
)
from lstm_ref.layouts import GATE_ORDERS, GRU_GATE_ORDERS
from lstm_ref.tolerances import ACCURACY_FACTOR, Tolerance, tolerance_for

FORMAT = "lstm-ref-golden-vectors"
FORMAT_VERSION = 2
#: The versions :func:`read_manifest` replays: 1 held LSTM cases only, 2 any kind.
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
VECTOR_DTYPES = ("float64", "float32")
#: The gate order of the stacked weights of each kind, as the manifest states it.
MANIFEST_GATE_ORDERS = {"LSTM": ", ".join(GATE_ORDERS["torch"]), "GRU": ", ".join(GRU_GATE_ORDERS["torch"]),
                        "RNN_TANH": "one gate", "RNN_RELU": "one gate"}


def vector_configs(modes: tuple[str, ...] = MODES) -> list[Config]:
    """The quick matrix's CPU float64 configurations less those in training mode (dropout
    is random), for each kind of ``modes`` (:func:`lstm_ref.configs.for_modes`): every axis
    value at least once, dropout in eval mode and a saturating T=200 case."""
    return configs.for_modes([c for c in configs.quick_matrix(("cpu",), ("float64",)) if not c.train], modes)


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
        result = reference(inputs.input, call_hx(inputs.hx))
    names = state_names(result)
    output, states = split_result(result, names)
    arrays = {"input": padded(inputs.input, config), "output": padded(output, config),
              **dict(zip(names, states, strict=True)), **reference.state_dict()}
    if inputs.hx is not None:
        arrays.update(zip(("h0", "c0"), inputs.hx))
    if inputs.lengths is not None:
        arrays["lengths"] = inputs.lengths
    case = replace(config, dtype=dtype)
    numpy_arrays = {k: (v.numpy() if k == "lengths" else v.to(case.torch_dtype).numpy())
                    for k, v in arrays.items()}
    name = f"{case.id}.npz"
    np.savez(directory / name, **numpy_arrays)
    expected = {k: torch.from_numpy(numpy_arrays[k]) for k in ("output", *names)}
    row = tolerance_for(dtype, "cpu").over(config.seq_len)
    torch_ratio = torch_error(reference, inputs, case, expected, row)
    scale = max(1.0, ACCURACY_FACTOR.get(dtype, 1.0) * torch_ratio)
    return {
        "file": name, "id": case.id, "dtype": dtype, "config": case.as_dict(),
        "module_kwargs": case.module_kwargs(), "train": case.train,
        "tolerance": {"atol": scale * row.atol, "rtol": scale * row.rtol},
        "torch_error": torch_ratio,
        "arrays": {k: list(v.shape) for k, v in numpy_arrays.items()},
    }


def torch_error(reference: nn.Module, inputs: Inputs, case: Config, expected: dict[str, Tensor],
                tolerance: Tolerance) -> float:
    """torch's own error on a case, as a multiple of ``tolerance``: the worst over ``expected``'s
    tensors with ``reference`` (float64) and ``inputs`` cast to the case's dtype, on the worse of
    the CPU's torch paths.

    A float32 computation errs against the float64 truth by more than two float32 computations
    differ from each other where both round alike: torch's float32 GRU with its update gate pinned
    near 1 for 200 steps (saturating_T200) is 1.01x the float32 row from the truth, and
    lstm_ref's 0.053x from torch. So a case's tolerance is the row times
    ``max(1, ACCURACY_FACTOR[dtype] * this)``: as accurate as torch passes, as in
    :mod:`lstm_ref.accuracy`. Where torch is within half the row (every LSTM case), the row stands.
    """
    dtype = case.torch_dtype
    module = copy.deepcopy(reference).to(dtype)
    hx = None if inputs.hx is None else tuple(state.to(dtype) for state in inputs.hx)
    worst = 0.0
    with torch.no_grad():
        for path in TORCH_PATHS["cpu"]:
            with torch_path(path):
                result = module(_cast(inputs.input, dtype), call_hx(hx))
            output, states = split_result(result, state_names(result))
            got = {"output": padded(output, case), **dict(zip(("h_n", "c_n"), states))}
            worst = max(worst, *(compare_tensor(k, got[k], want, tolerance).tolerance_ratio
                                 for k, want in expected.items()))
    return worst


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
        "pass_rule": "|actual - expected| <= atol + rtol * |expected| element-wise, for output, h_n, c_n "
                     "(c_n: the LSTM only), atol and rtol the case's: the tolerance row for its dtype over its T "
                     "steps, times max(1, 2 * torch_error), torch_error being torch's own worst error on the case "
                     "(run in the case's dtype) as a multiple of that row",
        "gate_orders": MANIFEST_GATE_ORDERS, "cases": entries,
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
    if manifest.get("version") not in READABLE_VERSIONS:
        raise VectorsError(f"{path}: format version {manifest.get('version')}, "
                           f"this reader knows {', '.join(map(str, READABLE_VERSIONS))}")
    return manifest


def case_config(entry: dict) -> Config:
    """A manifest entry's configuration (version 1 entries have no ``mode``: the LSTM)."""
    return Config(**{k: v for k, v in entry["config"].items() if k != "id"})


def case_module(entry: dict, arrays: dict[str, Tensor]) -> nn.Module:
    """torch's module of a case (nn.LSTM, nn.GRU or nn.RNN) holding the case's weights."""
    config = case_config(entry)
    module = config.module_class(**entry["module_kwargs"], dtype=config.torch_dtype).train(entry["train"])
    with torch.no_grad():
        module.load_state_dict({k: arrays[k] for k in module.state_dict()})
    return module


def case_state(arrays: dict[str, Tensor]) -> tuple[Tensor, Tensor] | Tensor | None:
    """A case's initial state as its module takes it: ``(h0, c0)`` (LSTM), ``h0`` or None."""
    return call_hx(tuple(arrays[k] for k in ("h0", "c0") if k in arrays) or None)


def replay_case(entry: dict, directory: Path, factory: Factory) -> Result:
    """Run the factory's LSTM on one case's inputs and compare output, h_n, c_n with the file's."""
    config = case_config(entry)
    started = time.perf_counter()
    try:
        with np.load(directory / entry["file"], allow_pickle=False) as archive:
            arrays = {k: torch.from_numpy(np.array(archive[k])) for k in archive.files}
    except (OSError, ValueError) as error:
        raise VectorsError(f"{directory / entry['file']}: {error}") from None
    module = case_module(entry, arrays)
    input: Tensor | PackedSequence = arrays["input"]
    if "lengths" in arrays:
        input = pack_padded_sequence(input, arrays["lengths"], batch_first=config.batch_first,
                                     enforce_sorted=False)
    names = tuple(name for name in ("h_n", "c_n") if name in arrays)
    try:
        candidate = factory(copy.deepcopy(module))
        with torch.no_grad():
            result = candidate(input, case_state(arrays))
    except NotImplementedError as error:
        return Result(config, UNSUPPORTED, message=str(error) or "NotImplementedError")
    except Exception as error:
        return Result(config, FAILED, message=f"candidate raised {type(error).__name__}: {error}")
    try:
        output, states = split_result(result, names)
    except (TypeError, ValueError):
        return Result(config, FAILED, message=f"expected {result_form(names)}, got {type(result).__name__}")
    tolerance = Tolerance(atol=entry["tolerance"]["atol"], rtol=entry["tolerance"]["rtol"], rtol_per_step=0.0,
                          why="the case's own tolerance, from its manifest entry")
    if isinstance(input, PackedSequence) and not isinstance(output, PackedSequence):
        reports = [TensorReport("output", False, f"expected a PackedSequence, got {type(output).__name__}")]
    else:
        reports = [compare_tensor("output", padded(output, config), arrays["output"], tolerance,
                                  time_dim=padded_time_dim(config))]
    reports += [compare_tensor(name, state, arrays[name], tolerance)
                for name, state in zip(names, states, strict=True)]
    status = PASSED if all(r.passed for r in reports) else FAILED
    return Result(config, status, reports, seconds=time.perf_counter() - started)


def verify_vectors(directory: str | Path, factory: Factory) -> list[Result]:
    """Replay every case of the manifest in ``directory``."""
    directory = Path(directory)
    return [replay_case(entry, directory, factory) for entry in read_manifest(directory)["cases"]]
