"""Repository-level pytest configuration.

The conformance fixtures come from the ``lstm_ref.plugin`` (registered through
the ``pytest11`` entry point when the project is installed). Here: hypothesis
profiles, chosen with HYPOTHESIS_PROFILE (``ci`` by default; ``thorough`` for
many more examples), and one torch thread per pytest-xdist worker.
"""

import os

import torch
from hypothesis import settings

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)  # N single-threaded workers, not N workers fighting over threads

settings.register_profile("ci", max_examples=30, deadline=None)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

pytest_plugins = ("pytester",)
