"""Scoring against a plain per-sequence loop, early stopping, divergence, determinism."""

from __future__ import annotations

import dataclasses

import torch

from seqbench.architectures import LanguageModel, build_config
from seqbench.harness.evaluate import evaluate, tally_logits
from seqbench.harness.prepare import prepare
from seqbench.harness.protocol import SOLVED
from seqbench.harness.runner import execute, run_prepared
from seqbench.harness.spec import RunSpec
from seqbench.harness.train import clip_gradients, scored_loss
from seqbench.tasks import IGNORE_INDEX, Batch
from tests.harness_support import ECHO, tiny_spec


def tiny(**fields) -> dict:
    sizes = {"steps": 30, "warmup": 5, "batch_size": 16, "eval_every": 10}
    return tiny_spec(**{**sizes, "val_examples": 32, "test_examples": 32, **fields})


def reference_scores(logits_full: torch.Tensor, targets: torch.Tensor) -> dict:
    """Plain loops over sequences and positions, on full (B, L, V) logits."""
    correct = tokens = exact = sequences = 0
    loss = 0.0
    for b in range(targets.shape[0]):
        row_ok, row_scored = True, False
        for t in range(targets.shape[1]):
            if targets[b, t] == IGNORE_INDEX:
                continue
            row_scored = True
            tokens += 1
            hit = int(logits_full[b, t].argmax()) == int(targets[b, t])
            correct += hit
            row_ok &= hit
            loss -= float(torch.log_softmax(logits_full[b, t], -1)[targets[b, t]])
        if row_scored:
            sequences += 1
            exact += row_ok
    return {"accuracy": correct / tokens, "exact_match": exact / sequences, "loss": loss / tokens}


def tiny_model_and_data(arch: str) -> tuple[LanguageModel, torch.Tensor, torch.Tensor]:
    """One layer of d_model 16 over 6 tokens, and (7, 10) inputs with ~40% of targets scored."""
    torch.manual_seed(0)
    config = build_config(arch, vocab_size=6, overrides={"d_model": 16, "n_layers": 1})
    model = LanguageModel(config)
    inputs = torch.randint(0, 6, (7, 10))  # (B, L)
    targets = torch.where(torch.rand(7, 10) < 0.4, torch.randint(0, 6, (7, 10)), IGNORE_INDEX)
    return model, inputs, targets


def test_scores_match_a_plain_loop_and_head_runs_only_where_scored() -> None:
    model, inputs, targets = tiny_model_and_data("mha")
    model.eval()
    targets[3] = IGNORE_INDEX  # a sequence with nothing scored leaves exact match alone
    targets[5, 2] = int(model(inputs)[5, 2].argmax())  # at least one certain hit
    batch = Batch(inputs, targets)
    with torch.no_grad():
        full = model(inputs)  # (B, L, V)
        masked = model(inputs, positions=batch.scored)  # (N, V)
    torch.testing.assert_close(masked, full[batch.scored])
    expected = reference_scores(full, targets)
    got = tally_logits(masked, targets, batch.scored).scores()
    for key, value in expected.items():
        assert abs(got[key] - value) < 1e-5, (key, got[key], value)
    chunked = evaluate(model, batch, batch_size=3, device="cpu", dtype="float32")
    for key, value in expected.items():
        assert abs(chunked[key] - value) < 1e-5, (key, chunked[key], value)


def test_scored_loss_is_the_scored_cross_entropy_plus_the_aux_loss() -> None:
    model, inputs, targets = tiny_model_and_data("mha-moe")
    batch = Batch(inputs, targets)
    task_loss, loss = scored_loss(model, inputs, batch.scored, targets)
    aux = model.aux_loss().detach()  # of the forward scored_loss ran
    assert float(aux) > 0  # the MoE's balance term is really in the sum
    expected = reference_scores(model(inputs).detach(), targets)["loss"]
    assert abs(float(task_loss.detach()) - expected) < 1e-5
    torch.testing.assert_close(loss.detach(), task_loss.detach() + aux)


def test_clip_gradients_caps_the_global_norm_and_zero_disables_it() -> None:
    model, inputs, targets = tiny_model_and_data("mha")
    scored_loss(model, inputs, Batch(inputs, targets).scored, targets)[1].backward()

    def grads() -> list[torch.Tensor]:
        return [p.grad for p in model.parameters() if p.grad is not None]

    before = [g.clone() for g in grads()]
    norm = float(torch.stack([g.norm() for g in before]).norm())
    assert norm > 1e-3  # something to clip
    spec = RunSpec(arch="mha", task="mqar", seq_len=16, device="cpu")
    clip_gradients(model, dataclasses.replace(spec, grad_clip=0.0))
    assert all(torch.equal(a, b) for a, b in zip(before, grads(), strict=True))
    clip_gradients(model, dataclasses.replace(spec, grad_clip=norm / 4))
    clipped = float(torch.stack([g.norm() for g in grads()]).norm())
    assert abs(clipped - norm / 4) < 1e-4 * norm


def test_early_stop_once_solved() -> None:
    record = execute(tiny(task=ECHO, steps=400, lr=1e-2, eval_every=10))
    metrics = record["metrics"]
    assert record["status"] == "ok"
    assert metrics["stopped_early"] and metrics["steps_run"] < 400
    assert metrics["steps_run"] % 10 == 0
    assert metrics["val"]["accuracy"] >= SOLVED and metrics["solved"]
    assert metrics["val_curve"][-1]["step"] == metrics["steps_run"]
    assert all(c["accuracy"] < SOLVED for c in metrics["val_curve"][:-1])
    assert metrics["steps_to"]["0.99"]["step"] == metrics["steps_run"]
    assert metrics["val_curve"][-1]["tokens"] == metrics["steps_run"] * 16 * 8


def test_full_budget_without_early_stop() -> None:
    record = execute(tiny(task=ECHO, steps=40, lr=1e-2, early_stop=False))
    assert record["metrics"]["steps_run"] == 40 and not record["metrics"]["stopped_early"]
    assert [c["step"] for c in record["metrics"]["val_curve"]] == [10, 20, 30, 40]


def test_huge_learning_rate_is_recorded_as_diverged() -> None:
    """lr 1e30 is beyond what a spec accepts (harness/bounds.py), so the resolved spec is
    changed after validation: the training loop itself must catch the non-finite loss."""
    prepared = prepare(RunSpec.from_dict(tiny(grad_clip=0.0, steps=50, warmup=0)))
    prepared.spec = dataclasses.replace(prepared.spec, lr=1e30)
    metrics: dict = {}
    status, reason = run_prepared(prepared, metrics, {})
    assert status == "diverged", reason
    assert "non-finite loss" in reason
    assert metrics["steps_run"] < 50


def test_record_holds_every_metric_and_length() -> None:
    record = execute(tiny(arch="mha-moe", eval_lengths=[16, 4]))
    metrics, timings = record["metrics"], record["timings"]
    assert record["status"] == "ok", record["reason"]
    assert set(metrics["test"]) == {"4", "8", "16"}
    for scores in [metrics["val"], *metrics["test"].values()]:
        assert set(scores) == {"accuracy", "exact_match", "loss", "scored", "sequences"}
        assert 0.0 <= scores["accuracy"] <= 1.0
    assert metrics["params_active"] < metrics["params_total"]
    layer = metrics["moe"]["layer0"]
    assert len(layer["load"]) == layer["n_experts"] == 8
    assert abs(sum(layer["load"]) - 1.0) < 1e-5
    assert timings["tokens_per_s"] > 0 and timings["wall_s"] >= timings["train_s"] > 0
    assert timings["train_tokens"] == metrics["steps_run"] * 16 * 8
    assert record["environment"]["torch"] == torch.__version__
    assert record["run_id"] == prepare(RunSpec.from_dict(record["spec"])).run_id


def test_same_spec_twice_gives_identical_metrics() -> None:
    first = execute(tiny(arch="mha-moe", eval_lengths=[16]))
    second = execute(tiny(arch="mha-moe", eval_lengths=[16]))
    assert first["status"] == "ok"
    assert first["run_id"] == second["run_id"]
    assert first["metrics"] == second["metrics"]
    different_seed = execute(tiny(arch="mha-moe", eval_lengths=[16], seed=1))
    assert different_seed["metrics"]["train_loss"] != first["metrics"]["train_loss"]


def test_a_raising_run_is_recorded_failed_with_its_message() -> None:
    record = execute(tiny(task="tests.harness_support:CrashTask", knobs={"crash": "raise"}))
    assert record["status"] == "failed"
    assert record["reason"] == "RuntimeError: boom from the task"
    assert "Traceback" in record["metrics"]["traceback"]


def test_adamw_is_fused_on_the_cpu_and_steps_like_the_default() -> None:
    """The fused update is torch's one-pass kernel of the same formula: equal to a few ulps."""
    from seqbench.harness.train import build_optimizer

    spec = RunSpec(arch="mha", task="mqar", seq_len=16, steps=10, lr=1e-2, device="cpu")
    torch.manual_seed(0)
    model = LanguageModel(build_config("mha", vocab_size=16, overrides={"d_model": 32}))
    twin = LanguageModel(build_config("mha", vocab_size=16, overrides={"d_model": 32}))
    twin.load_state_dict(model.state_dict())
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    fused = build_optimizer(model, spec)
    assert fused.defaults["fused"] is True
    by_name = dict(twin.named_parameters())
    names = {id(p): n for n, p in model.named_parameters()}
    groups = [
        {**group, "fused": None, "params": [by_name[names[id(p)]] for p in group["params"]]}
        for group in fused.param_groups
    ]  # the same groups (lr, weight decay, betas) on the twin, with torch's default update
    plain = torch.optim.AdamW(groups)
    gen = torch.Generator().manual_seed(1)
    for _ in range(20):
        for p, q in zip(model.parameters(), twin.parameters(), strict=True):
            p.grad = torch.randn(p.shape, generator=gen)
            q.grad = p.grad.clone()
        fused.step()
        plain.step()
    for (name, p), q in zip(model.named_parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-6, msg=name)
        assert not torch.equal(p, start[name]), f"{name} did not move"
