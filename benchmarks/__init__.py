"""Benchmarks: the same workloads in jdl, flax+optax and PyTorch, timed side by side."""
