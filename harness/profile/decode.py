"""Measure inference at one context length: prefill time, decode latency, decode state bytes.

The state is built by the model's own `prefill` over `context` random tokens (fast for every
family: attention keeps its keys and values, recurrent mixers run their scan), then
single-token `step`s are timed one by one. The state bytes are read from the actual state
tensors right after prefill (`seqbench.architectures.contract.state_bytes`): KV cache for attention,
which grows with the context; a fixed-size state for SSMs and LRU.
"""

from __future__ import annotations

from typing import Any

import torch

from seqbench.architectures.contract import state_bytes
from seqbench.harness.profile.points import build_model, random_tokens
from seqbench.harness.profile.timing import summarise, timed_call

DECODE_WARMUP_STEPS = 2
PREFILL_WARMUP_TOKENS = 32


def measure_decode(spec: dict[str, Any]) -> dict[str, Any]:
    device = torch.device(spec["device"])
    model = build_model(spec, device).eval()
    context = spec["context"]
    n_steps = DECODE_WARMUP_STEPS + spec["decode_steps"]
    tokens = random_tokens(spec, context + n_steps, device)  # (B, C + steps)
    prompt = tokens[:, :context]  # (B, C)

    with torch.no_grad():
        model.prefill(prompt[:, :PREFILL_WARMUP_TOKENS])  # warms kernels, not timed
        prefill, (_, state) = timed_call(lambda: model.prefill(prompt), device)
        bytes_at_context = state_bytes(state)
        per_layer = [state_bytes(layer_state) for layer_state in state]
        step_times = []
        for i in range(n_steps):
            token = tokens[:, context + i]  # (B,)
            timing, (_, state) = timed_call(lambda t=token, s=state: model.step(t, s), device)
            step_times.append(timing)
        bytes_after = state_bytes(state)

    decode = summarise(step_times[DECODE_WARMUP_STEPS:], "decode")
    batch = spec["batch"]
    return {
        "prefill_s": prefill.wall_s,
        "prefill_cpu_s": prefill.cpu_s,
        "prefill_tokens_per_s": batch * context / prefill.wall_s,
        "decode_s_per_token": decode["decode_s"],
        "decode_cpu_s_per_token": decode["decode_cpu_s"],
        "decode_s_repeats": decode["decode_s_repeats"],
        "decode_cpu_s_repeats": decode["decode_cpu_s_repeats"],
        "decode_tokens_per_s": batch / decode["decode_s"],
        "state_bytes": bytes_at_context,
        "state_bytes_per_layer": per_layer,
        "state_bytes_after_decode": bytes_after,
        "tokens_decoded": n_steps,
        "parameters": model.parameter_counts(),
        "torch_threads": torch.get_num_threads(),
    }
