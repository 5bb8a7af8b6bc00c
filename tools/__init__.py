"""Benchmarks and maintenance scripts; run each from the repository root as ``python -m tools.NAME``."""
