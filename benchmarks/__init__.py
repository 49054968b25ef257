"""Benchmarks and table builders: each script is run from the repository root as a module,
``python -m benchmarks.<name> ...``, and writes its results under ``benchmarks/results/``."""
