"""Scan kernels of the recurrent mixers, each beside its plain sequential reference.

- `selective`: Mamba-1's selective scan (per-channel, per-state decay), chunked autograd
  function with a recomputing reverse-time backward.
- `ssd`: Mamba-2's state-space duality scan (scalar decay per head), chunked matmul form.
- `linear_scan`: the LRU's complex diagonal time-invariant recurrence, chunked matmul form.
- `chunked_linear`: the linear-attention family (linear attention, RetNet, GLA, DeltaNet,
  Gated DeltaNet): chunked matmul form, WY/UT form for the delta rule.
- `cuda`: lazy access to mamba-ssm's CUDA kernels, used only when present.
"""
