"""The tolerance table: one row per (dtype, device type), with its reasoning.

Every comparison in the project (pytest suite, ``lstm-ref check``, benchmarks'
agreement checks) looks its tolerance up here; nothing widens it on the fly.
An element passes when ``|actual - expected| <= atol + (rtol + T * rtol_per_step) * |expected|``
for a sequence of T steps (see :class:`Tolerance`).

Two bounds pin each row:

* loose enough for torch against torch: oneDNN vs native on CPU, seeds,
  T=1000, saturating inputs with |c| in the hundreds;
* tight enough that doing the arithmetic one precision lower is caught:
  float64 computed in float32, float32 computed in float16 or bfloat16
  (``tests/test_tolerances.py`` proves both are caught).

The measurements behind each row are in its ``why``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass(frozen=True)
class Tolerance:
    """``|actual - expected| <= atol + (rtol + steps * rtol_per_step) * |expected|``.

    The per-step term is the recurrence's own error growth: when a forget gate
    saturates at f ~ 1, c_t is a running sum and a rounding difference in f
    (one ULP of 1.0 between two sigmoid kernels) compounds once per step, so
    two correct float32 LSTMs drift apart by ~1.5 ULP of relative error per
    step (measured: oneDNN vs native torch, |x| = 30 held for T steps:
    3.7e-7 at T=20, 1.4e-5 at T=200, 9.3e-5 at T=1000).
    """

    atol: float
    rtol: float
    rtol_per_step: float
    why: str

    def over(self, steps: int) -> Tolerance:
        """This tolerance for a sequence of ``steps`` time steps (the per-step term folded in)."""
        return replace(self, rtol=self.rtol + steps * self.rtol_per_step, rtol_per_step=0.0)

    def summed_over(self, rows: int, magnitude: float, dtype: torch.dtype | str) -> Tolerance:
        """This tolerance for a sum over ``rows`` terms whose result's largest element is
        ``magnitude`` (a parameter gradient: a sum over every time step of every sequence):

            atol + REDUCTION_ULPS * eps(dtype) * sqrt(rows) * magnitude

        Rounding in a sum grows ~sqrt(rows) times the terms' size, and where terms cancel an
        element is left far smaller than that error: an element-wise rtol cannot see it.
        """
        eps = torch.finfo(getattr(torch, str(dtype).removeprefix("torch."))).eps
        return replace(self, atol=self.atol + REDUCTION_ULPS * eps * rows ** 0.5 * magnitude)


#: Parameter gradients sum over every (time step, sequence) row. Measured (float32, CPU, against
#: the float64 truth on the same weights and inputs; worst element of any parameter gradient):
#: rows 15 (the grid): torch oneDNN 4.5e-7, native 5.8e-7, lstm_ref 2.4e-7 with max|grad| 4.4;
#: rows 160 (H128): 6.6e-6, 4.7e-6, 2.9e-6 (max 19.5); rows 264 (real_I768_H520_N33): 1.2e-5,
#: 8.7e-6, 7.4e-6 (max 27.3); rows 1048 (real_I300_H260_N131): 6.3e-5, 1.5e-5, 1.4e-5 (max 60.4):
#: ~0.25-0.5 eps * sqrt(rows) * max|grad|, the element-wise row alone failing oneDNN against native
#: there (1.07x). One ULP of that scale leaves torch against torch at <= 0.3 of it and float16
#: arithmetic (~5e-4 relative per operation) still 100x out.
REDUCTION_ULPS = 1.0


FLOAT32_WHY = (
    "atol/rtol are torch.testing's float32 defaults. Per step: 4 ULP of relative error "
    "(2.4e-7), ~2.5x the worst torch-vs-torch drift measured (oneDNN vs native, saturated "
    "forget gates, T=20..1000). Worst error/tolerance over the default matrix: oneDNN vs "
    "lstm_ref 0.12, native vs lstm_ref 0.12 (see README). Computing in float16 (~5e-4 "
    "relative per operation) or bfloat16 (~4e-3) fails by orders of magnitude at T=5 and "
    "still at T=1000 (tests/test_tolerances.py). GRU and RNN (one torch path on CPU, the native "
    "loop; measured over their default matrices): torch vs lstm_ref 0.053; torch's float32 vs the "
    "float64 oracle up to 1.01 (GRU saturating_T200: an update gate pinned near 1 carries rounding "
    "as a saturated forget gate does), RNN 0.10; a GRU computing (1-z)*n + z*h, not ATen's "
    "n + z*(h-n), lands 0.83 from torch there; computed in bfloat16 they fail by 358x or more. "
    "Their realistic-tier parameter gradients (N=131, I=300; torch's own float32 gradients 4.7e-5 "
    "from float64's for RNN_TANH, lstm_ref's 4.6e-5) need the summed-over term: 1.2-3.9x the row "
    "without it, 0.11 at worst with it."
)
FLOAT64_WHY = (
    "Two float64 LSTMs differ only by summation order: ~1e-16 per step, 1e-14 after 1000 "
    "steps or with |c| ~ 200; worst error/tolerance over the default matrix ~2e-4. A float64 "
    "LSTM computed in float32 errs by 1e-8 or more, over 1,000x these bounds. GRU and RNN: "
    "worst 0.002 over their default matrices."
)

TOLERANCES: dict[tuple[str, str], Tolerance] = {
    ("float64", "cpu"): Tolerance(atol=1e-12, rtol=1e-10, rtol_per_step=4.4e-16, why=FLOAT64_WHY),
    ("float32", "cpu"): Tolerance(atol=1e-5, rtol=1.3e-6, rtol_per_step=2.4e-7, why=FLOAT32_WHY),
    ("float64", "cuda"): Tolerance(
        atol=1e-12, rtol=1e-10, rtol_per_step=4.4e-16,
        why="The CPU row, unmeasured on a GPU so far: cuDNN float64 has no reduced-precision mode.",
    ),
    ("float32", "cuda"): Tolerance(
        atol=1e-5, rtol=1.3e-6, rtol_per_step=2.4e-7,
        why=(
            "The CPU row, unmeasured on a GPU so far, with TF32 disabled for the run (the "
            "harness does so and reports it): TF32 keeps a 10-bit mantissa (~5e-4 relative) "
            "and fails this row by design."
        ),
    ),
}


def tolerance_for(dtype: torch.dtype | str, device: torch.device | str) -> Tolerance:
    """The row for ``dtype`` on ``device``'s type; LookupError if the table has none."""
    dtype_name = str(dtype).removeprefix("torch.")
    device_type = torch.device(device).type
    try:
        return TOLERANCES[dtype_name, device_type]
    except KeyError:
        known = ", ".join(f"{d}/{t}" for d, t in TOLERANCES)
        raise LookupError(
            f"no tolerance for {dtype_name} on {device_type}; the table has {known}"
        ) from None


# --- Accuracy against the float64 oracle (lstm_ref.accuracy) --------------------------------
# A candidate is "as accurate as torch" on a tensor when, both measured against the float64
# oracle on the same weights and inputs,
#     candidate max abs error <= ACCURACY_FACTOR[dtype] * torch max abs error
#                                 + ACCURACY_FLOOR[dtype] * scale,
# scale = max(1, max |true value|) over the tensor (the floor is an ULP at the values' size), torch's
# error being the worse of its paths on the device (CPU: oneDNN and native): on one tensor
# the two paths' errors differ by up to 6.6x, so either path alone would call the other inaccurate.
# Measured in float32 on CPU, torch 2.13: the default matrix's 372 distinct configurations (eval
# mode) x 3 tensors x seeds 0, 1, 2, each of torch's paths, lstm_ref and lstm_ref.fast against the
# oracle (the script and its output are in docs/accuracy.md):
# - Factor 2: where torch's error is at least 1 ULP of 1.0, lstm_ref's is at most 1.36x it and
#   lstm_ref.fast's 1.23x (correct implementations differ only in rounding order).
# - Floor 1 ULP (2**-23 = 1.2e-7 at 1.0, where gates and h lie): where torch happens to be very
#   exact (errors down to 4e-11 on small projected h_n) a correct implementation is up to 7x less
#   lucky; factor 2 needs a floor of 0.45 ULP there. With 1 ULP at the values' size lstm_ref uses
#   at most 0.62 of the allowed error, lstm_ref.fast 0.62; the allowed error is 3.2x-16.8x
#   torch's (5th to 95th percentile, median 4.9x; the former 16-ULP floor allowed 20x-240x).
# - The scale: a relu RNN's h is unbounded; at |h| = 2.4 lstm_ref erred 1.3 ULP (3.0e-7) where
#   torch erred 0.36 ULP, 1.23x a floor at 1.0's ULP and 0.80 of one at the values' size. Over
#   each of the GRU's and RNNs' float32 default matrices (226 configurations x seeds 0, 1, 2)
#   lstm_ref uses at most 0.82 (GRU), 0.75 (RNN_TANH), 0.80 (RNN_RELU) of the allowed error.
# - Caught: lstm_ref with bias_ih shifted by 6e-7 fails 678 of the 684 runs with a bias (GRU 454,
#   RNN_TANH 458, RNN_RELU 453 of 462) but where torch's own error is as large as the shift's effect
#   (saturating_T200, |c| ~ 200; I=768, H=520); computing in float16 or bfloat16 errs 4e-4 or 3e-3
#   where torch errs 7e-8 (tests/test_accuracy.py proves both).
# float16/bfloat16: the same form, factor 2 and a floor of 0.5 ULP of 1.0 (2**-8 = 3.9e-3 for
# bfloat16, 2**-11 = 4.9e-4 for float16: the numbers of the half-precision block below). Measured on
# CPU (AVX2, where torch's oneDNN path takes no half LSTM and falls back to the native loop) over
# the default matrix's 16 distinct configurations per half dtype (autocast rows aside) x seeds 0,
# 1, 2: torch errs 0.38 ULP of 1.0 (median; up to 553 ULP on saturated c_n); lstm_ref uses at most
# 0.58 (bfloat16) and 0.66 (float16) of the allowed error, lstm_ref.fast 0.55 and 0.51, a candidate
# computing in float32 and rounding its results 0.30 and 0.33; float16 computed as bfloat16 fails
# all 48 runs, by 1.58x or more (with the former 2-ULP floor 3 of them passed). These half numbers
# were measured with the floor at 1.0's ULP; at the values' size it is that or more.
ACCURACY_FACTOR: dict[str, float] = {"float32": 2.0, "float16": 2.0, "bfloat16": 2.0}
ACCURACY_FLOOR: dict[str, float] = {
    "float32": 2.0**-23, "float16": 2.0**-11, "bfloat16": 2.0**-8,
}
# --- end of the accuracy block ----------------------------------------------------------------


# --- Half precision and autocast: the conformance criterion (lstm_ref.half) -------------------
# bfloat16, float16 and autocast rows are judged like the accuracy verdict above, against the
# float64 truth (the same weights, inputs and states upcast exactly, run by torch in float64), but
# against the worst of torch's behaviours (each CPU path, oneDNN and native; under autocast also
# the module converted to the autocast dtype, what oneDNN computes on CPUs with native bfloat16):
#     candidate max abs error <= HALF_FACTOR[dtype] * torch's max abs error + floor[dtype] * scale
# per tensor (output, h_n, c_n, each gradient), dtype the one computed in (the autocast dtype under
# autocast), scale = max(1, max |truth|), floor HALF_FLOOR (HALF_GRADIENT_FLOOR for a gradient).
# Measured on the CPU (torch 2.13, no native bfloat16: oneDNN falls back to the native loop for
# half modules and refuses autocast), ratio = candidate error / allowed error on one call, worst per
# candidate over configs.half_matrix() (44 rows torch runs, 3 tensors) and half_gradient_matrix()
# (31 rows, every gradient and the training step):
#   forward:   torch's other path 0.49, lstm_ref 0.61 (T=1000), lstm_ref.fast 0.49, torch's
#              arithmetic emulated op by op (tests/mutants_half.py same_precision) 0.65, oneDNN's
#              autocast behaviour (results in the autocast dtype) 0.74; more accurate than torch
#              (float32 rounded at the end; the NumPy oracle) 0.21.
#   gradients: torch 0.53, lstm_ref 0.82, lstm_ref.fast 0.65, same_precision 0.72, float32 0.25.
#   caught, forward: float16 computed at bfloat16's 8 bits fails all 21 rows, 2.0x-7.0x (T=5: 2.0x);
#              bfloat16 at 6 bits 0.79x-2.6x (fails 18 of 22); the cell state alone kept 3 bits short
#              0.49x-3.4x (fails 35 of 43). Gradients: float16 at 8 bits 1.5x-4.0x. The check's second
#              call (T more steps from the returned state) widens every margin.
# Factor 2: torch's own paths and lstm_ref differ from each other by up to 1.2x in error where the
# error is above the floor, the op-by-op emulation by 1.9x. Floor: half an ULP of the scale, the
# rounding every stored result carries (torch's error can be far below it on a lucky tensor);
# gradients one ULP: each element is a sum whose partial sums a correct kernel may round in the
# dtype (lstm_ref's float16 weight and bias gradients need it, 1.17x with half an ULP).
HALF_FACTOR: dict[str, float] = {"bfloat16": 2.0, "float16": 2.0}
HALF_FLOOR: dict[str, float] = {"bfloat16": 2.0**-8, "float16": 2.0**-11}
HALF_GRADIENT_FLOOR: dict[str, float] = {"bfloat16": 2.0**-7, "float16": 2.0**-10}
# --- end of the half-precision block ----------------------------------------------------------
