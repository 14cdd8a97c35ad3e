"""Helpers that training, the profiler, the launchers and the report share.

Neutral ground: nothing here imports from `seqbench.harness.profile`, `.report` or a launcher,
so each of those can use these without reaching into another.
- `outcome`: an exception or a dead worker's exit -> a record status and a one-line reason;
- `scaling`: Student-t quantiles and log-log slope fits with 95% intervals;
- `profile_frame`: profile records as pandas tables (the profiler's summary and the report).
"""
