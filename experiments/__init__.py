"""Research-style experiments: each module has ``run(workdir, quick=False, seed=0) -> dict``."""
