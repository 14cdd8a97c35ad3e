"""The profiler behind `seqbench profile`: time, memory, FLOPs, decode state, scaling fits.

Modules, one job each: `points` (what a point is, its label), `timing`, `memory` (the three
named methods), `flops`, `train_step`, `decode`, `meta` (counted on the meta device), `worker`
(one point measured, as a record), `sweep` (the grid, the waves, the records; points run
through `seqbench.harness.launchers` like training runs), `fits` (log-log exponents per
series) and `summary` (the printed tables). Shared with training and the report, in
`seqbench.harness.common`: `scaling` (t quantiles, log-log fits), `profile_frame` (pandas
tables), `outcome` (statuses and reasons).
"""
