"""torch APIs whose signature changed within the supported range (torch 2.1 to 2.14, docs/versions.md).

One function per API, each answering the same on every supported torch.
"""

from __future__ import annotations

import torch


def autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` ("cpu", "cuda"). ``torch.is_autocast_enabled``
    takes the device type in recent torch; torch 2.1's takes no argument and answers for CUDA
    only (its CPU flag is ``torch.is_autocast_cpu_enabled()``)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def autocast_dtype(device_type: str) -> torch.dtype:
    """The dtype autocast computes in on ``device_type``: ``torch.get_autocast_dtype``, which
    torch 2.1 lacks (there: ``get_autocast_cpu_dtype`` / ``get_autocast_gpu_dtype``)."""
    if hasattr(torch, "get_autocast_dtype"):
        return torch.get_autocast_dtype(device_type)
    return torch.get_autocast_cpu_dtype() if device_type == "cpu" else torch.get_autocast_gpu_dtype()
