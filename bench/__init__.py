"""Benchmarks: whole-run ratios against a peer run in the same command (never tests)."""
