"""The workloads: each module defines NAME, ``configure(quick, seed, workdir)`` (run once in the
parent: it checks jdl can build the model, writes the shared initial weights and returns the
spec and the options every implementation gets, or raises ``Skip``) and ``build(impl, options)``
returning a ``benchmarks.timing.Runner``."""

from benchmarks.workloads import char_lstm, gpt, lenet5, mlp

WORKLOADS = {mlp.NAME: mlp, lenet5.NAME: lenet5, char_lstm.NAME: char_lstm, gpt.NAME: gpt}
