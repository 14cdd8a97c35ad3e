"""One run, start to record: build the model, train, test at every length, describe it.

`execute` never raises for a problem of the run itself: whatever happens becomes a record
with status ok | failed | oom | diverged, so a sweep always moves on. (A crash of the whole
process — SIGKILL, os._exit — is the launcher's to record.)
"""

from __future__ import annotations

import time
import traceback
from typing import Any

import torch

from seqbench.architectures import LanguageModel
from seqbench.architectures.contract import state_bytes
from seqbench.harness.common.outcome import exception_outcome, is_oom_error, one_line
from seqbench.harness.evaluate import evaluate
from seqbench.harness.prepare import Prepared, prepare
from seqbench.harness.protocol import protocol_metrics
from seqbench.harness.records import make_record
from seqbench.harness.spec import RunSpec
from seqbench.harness.train import TrainResult, train
from seqbench.seeds import derive_seed


def execute(spec_data: dict[str, Any]) -> dict[str, Any]:
    """Run a (resolved) spec and return its complete record; never raises for run errors."""
    start = time.perf_counter()
    spec = RunSpec.from_dict(spec_data)
    metrics: dict[str, Any] = {}
    timings: dict[str, Any] = {}
    status, reason = "ok", None
    run_id, definition = spec.spec_id, None  # until prepare has resolved the identity
    try:
        prepared = prepare(spec)
        spec = prepared.spec  # already resolved in a sweep; resolved here for direct calls
        run_id, definition = prepared.run_id, prepared.definition
        status, reason = run_prepared(prepared, metrics, timings)
    except Exception as exc:
        status, reason = exception_outcome(exc)
        metrics["traceback"] = traceback.format_exc(limit=-8)
    finally:
        if spec.device.startswith("cuda") and torch.cuda.is_available():
            torch.cuda.empty_cache()
    timings["wall_s"] = time.perf_counter() - start
    return make_record(
        kind="run",
        run_id=run_id,
        spec=spec.to_dict(),
        definition=definition,
        status=status,
        reason=reason,
        metrics=metrics,
        timings=timings,
        device=spec.device,
    )


def run_prepared(
    prepared: Prepared, metrics: dict[str, Any], timings: dict[str, Any]
) -> tuple[str, str | None]:
    """Train and test, filling `metrics` and `timings` as it goes (partial on failure)."""
    spec = prepared.spec
    torch.manual_seed(derive_seed(spec.seed, "init"))
    model = LanguageModel(prepared.config).to(spec.device)
    counts = model.parameter_counts()
    metrics.update(params_total=counts["total"], params_active=counts["active"])
    result = train(model, prepared.task, spec)
    metrics.update(training_metrics(result))
    timings.update(
        train_s=result.train_s,
        train_tokens=result.train_tokens,
        tokens_per_s=result.train_tokens / result.train_s if result.train_s > 0 else None,
    )
    if result.diverged:
        timings["eval_s"] = result.val_s
        return "diverged", result.diverged
    start = time.perf_counter()
    metrics["test"], metrics["moe"] = test_all_lengths(model, prepared)
    metrics["kernel_paths"] = kernel_paths(model)
    timings["eval_s"] = result.val_s + time.perf_counter() - start
    return "ok", None


def training_metrics(result: TrainResult) -> dict[str, Any]:
    return {
        "steps_run": result.steps_run,
        "stopped_early": result.stopped_early,
        "train_loss": result.train_loss,
        "val": result.val,
        "val_curve": result.val_curve,  # learning curve: step, tokens, validation scores
        **protocol_metrics(result.val_curve),
    }


def test_all_lengths(
    model: LanguageModel, prepared: Prepared
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Test-split scores keyed by length (as a string, JSON keys); MoE stats at train length.

    Each length is one full-sequence forward per chunk of sequences: the mixers' parallel
    (prefill) path, never token-by-token decoding, so recurrent models reach 2^14+ tokens in
    seconds. Chunks hold about as many tokens as a training batch (one sequence at least), so
    memory stays near training's. A model whose decode state grows with the context
    (attention's KV cache) is not run beyond `attention_eval_cap` tokens, and a length that
    runs out of memory is recorded `oom`: either way that length says so and the rest go on.
    """
    spec = prepared.spec
    scores: dict[str, Any] = {}
    moe = None
    grows: bool | None = None
    for length in spec.test_lengths():
        cap = spec.attention_eval_cap
        if length > spec.seq_len and cap is not None and length > cap:
            grows = state_grows(model, spec.device) if grows is None else grows
            if grows:
                scores[str(length)] = over_cap(length, cap)
                continue
        task = prepared.test_task_at(length)
        n = spec.test_examples if length == spec.seq_len else spec.long_test_examples
        batch = task.split_batch(n or spec.test_examples, spec.seed, "test")
        chunk = max(1, spec.batch_size * spec.seq_len // length)
        try:
            scores[str(length)] = evaluate(
                model, batch, batch_size=chunk, device=spec.device, dtype=spec.dtype
            )
        except Exception as exc:
            if length == spec.seq_len or not is_oom_error(exc):
                raise
            scores[str(length)] = {"status": "oom", "reason": one_line(exc)}
            if spec.device.startswith("cuda"):
                torch.cuda.empty_cache()
        if length == spec.seq_len:
            moe = model.aux_stats() or None  # of the last test chunk at the training length
    return scores, moe


def over_cap(length: int, cap: int) -> dict[str, Any]:
    """The score entry of a length not run because the KV cache would exceed the cap."""
    return {
        "status": "oom",
        "reason": f"{length} tokens is over attention_eval_cap={cap} for a model whose "
        "decode state grows with the context",
    }


@torch.no_grad()
def state_grows(model: LanguageModel, device: str) -> bool:
    """True when the model's decode state after 4 tokens holds more bytes than after 2
    (a KV cache), False for fixed-size states (SSMs, LRU)."""
    was_training = model.training
    model.eval()
    try:
        tokens = torch.zeros(1, 4, dtype=torch.long, device=device)
        _, short = model.prefill(tokens[:, :2])
        _, long = model.prefill(tokens)
    finally:
        model.train(was_training)
    return state_bytes(long) > state_bytes(short)


def kernel_paths(model: LanguageModel) -> dict[str, str]:
    """Which implementation each layer's mixer ran, for mixers that say (`kernel_path`)."""
    paths = {}
    for i, block in enumerate(model.blocks):
        path = getattr(block.mixer, "kernel_path", None)
        if path is not None:
            paths[f"layer{i}"] = str(path)
    return paths
