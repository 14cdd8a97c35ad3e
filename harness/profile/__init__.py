"""The profiler behind `seqbench profile`: time, memory, FLOPs, decode state, scaling fits.

Modules, one job each: `points` (what a point is), `timing`, `memory` (the three named
methods), `flops`, `train_step`, `decode`, `meta` (counted on the meta device), `worker` and
`runner` (fresh processes, budgets, oom), `sweep` (the grid and the records), `scaling` and
`fits` (log-log exponents), `frame` and `summary` (pandas tables), `progress`.
"""
