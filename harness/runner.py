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
from seqbench.harness.common.outcome import exception_outcome
from seqbench.harness.evaluate import evaluate
from seqbench.harness.prepare import Prepared, prepare
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
        "val_curve": result.val_curve,
    }


def test_all_lengths(
    model: LanguageModel, prepared: Prepared
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Test-split scores keyed by length (as a string, JSON keys); MoE stats at train length.

    Chunks hold about as many tokens as a training batch, so long lengths fit in memory.
    """
    spec = prepared.spec
    scores: dict[str, Any] = {}
    moe = None
    for length in spec.test_lengths():
        task = prepared.task_at(length)
        batch = task.split_batch(spec.test_examples, spec.seed, "test")
        chunk = max(1, spec.batch_size * spec.seq_len // length)
        scores[str(length)] = evaluate(
            model, batch, batch_size=chunk, device=spec.device, dtype=spec.dtype
        )
        if length == spec.seq_len:
            moe = model.aux_stats() or None  # of the last test chunk at the training length
    return scores, moe


def kernel_paths(model: LanguageModel) -> dict[str, str]:
    """Which implementation each layer's mixer ran, for mixers that say (`kernel_path`)."""
    paths = {}
    for i, block in enumerate(model.blocks):
        path = getattr(block.mixer, "kernel_path", None)
        if path is not None:
            paths[f"layer{i}"] = str(path)
    return paths
