"""pytest-benchmark benchmarks of the LSTM time-step loop (see docs/benchmarks.md)."""
