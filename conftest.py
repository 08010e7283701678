"""Repository-level pytest configuration.

The conformance fixtures come from the ``lstm_ref.plugin`` (registered through
the ``pytest11`` entry point when the project is installed). Here: hypothesis
profiles, chosen with HYPOTHESIS_PROFILE (``ci`` by default; ``thorough`` for
many more examples), one torch thread per pytest-xdist worker, and work stealing
between xdist workers: the crash-isolation tests are few and long (they start
worker processes), and handed out in file order they would end on one worker.
"""

import os

import torch
from hypothesis import settings

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)  # N single-threaded workers, not N workers fighting over threads


def pytest_configure(config):
    if getattr(config.option, "dist", "no") == "load":  # -n N without an explicit --dist
        config.option.dist = "worksteal"


settings.register_profile("ci", max_examples=30, deadline=None)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

pytest_plugins = ("pytester",)
