"""Records folder -> DataFrame, partial files, best-LR selection on validation only."""

from __future__ import annotations

from pathlib import Path

from seqbench.harness.records import make_record, runs_dir, write_record
from seqbench.harness.store import best_lr_table, length_table, load_records, select_best_lr
from seqbench.harness.summary import summary_table


def fake_record(arch: str, lr: float, seed: int, val: float, test: float, **extra) -> dict:
    spec = {
        "arch": arch,
        "task": "mqar",
        "seq_len": 64,
        "eval_lengths": [256],
        "d_model": 64,
        "n_layers": 2,
        "overrides": {},
        "knobs": {"num_pairs": 8},
        "steps": 100,
        "batch_size": 32,
        "optimizer": "adamw",
        "lr": lr,
        "warmup": 10,
        "schedule": "cosine",
        "weight_decay": 0.1,
        "grad_clip": 1.0,
        "early_stop": True,
        "eval_every": 100,
        "val_examples": 256,
        "test_examples": 512,
        "seed": seed,
        "device": "cpu",
        "dtype": "float32",
    }
    scores = {"accuracy": test, "exact_match": test / 2, "loss": 1 - test}
    metrics = {
        "params_total": 1000,
        "params_active": 1000,
        "steps_run": 100,
        "stopped_early": False,
        "train_loss": 0.5,
        "val": {"accuracy": val, "exact_match": val / 2, "loss": 1 - val},
        "test": {"64": scores, "256": {**scores, "accuracy": test / 4}},
        "moe": None,
        "kernel_paths": {"layer0": "torch"},
    }
    status = extra.pop("status", "ok")
    return make_record(
        kind="run",
        run_id=f"{arch}-{lr}-{seed}",
        spec=spec,
        status=status,
        metrics=metrics if status == "ok" else {},
        timings={"wall_s": 1.0, "train_s": 0.8, "eval_s": 0.2, "tokens_per_s": 10.0},
    )


def test_frame_has_one_row_per_valid_record_and_documented_columns(tmp_path: Path) -> None:
    write_record(tmp_path, fake_record("mha", 1e-3, 0, 0.9, 0.8))
    write_record(tmp_path, fake_record("lru", 1e-3, 0, 0.3, 0.2))
    folder = runs_dir(tmp_path)
    (folder / "partial.json").write_text('{"schema_version": 1, "kind": "run", "run')
    (folder / "notarecord.json").write_text('{"hello": 1}')
    (folder / ".x.json.abc.tmp").write_text("{")
    frame = load_records(tmp_path)
    assert len(frame) == 2
    row = frame.set_index("arch").loc["mha"]
    assert row["test_accuracy"] == 0.8 and row["test_accuracy@64"] == 0.8
    assert row["test_accuracy@256"] == 0.2 and row["test_accuracy_longest"] == 0.2
    assert row["longest_len"] == 256 and row["val_accuracy"] == 0.9
    assert row["knob.num_pairs"] == 8 and row["eval_lengths"] == (256,)
    assert row["kernel_path"] == "torch" and row["env_device"] == "cpu"
    assert row["val_curve"] is None  # the fake record has no curve
    for column in ("params_total", "params_active", "steps_run", "wall_s", "tokens_per_s"):
        assert column in frame.columns


def test_empty_folder_gives_an_empty_frame(tmp_path: Path) -> None:
    frame = load_records(tmp_path)
    assert frame.empty and "run_id" in frame.columns


def test_best_lr_uses_validation_never_test(tmp_path: Path) -> None:
    # lr 1e-3: better on validation, worse on test; lr 1e-2: the reverse; lr 1e-1 diverges.
    for seed in (0, 1):
        write_record(tmp_path, fake_record("mha", 1e-3, seed, val=0.9, test=0.5))
        write_record(tmp_path, fake_record("mha", 1e-2, seed, val=0.6, test=0.99))
        write_record(tmp_path, fake_record("mha", 1e-1, seed, val=0.0, test=0.0, status="diverged"))
        write_record(tmp_path, fake_record("lru", 1e-3, seed, val=0.2, test=0.2))
        write_record(tmp_path, fake_record("lru", 1e-2, seed, val=0.4, test=0.1))
    frame = load_records(tmp_path)
    table = best_lr_table(frame).set_index("arch")
    assert table.loc["mha", "lr"] == 1e-3 and table.loc["lru", "lr"] == 1e-2
    assert table.loc["mha", "mean_val_accuracy"] == 0.9
    assert (table["n_seeds"] == 2).all()
    chosen = select_best_lr(frame)
    assert len(chosen) == 4
    assert set(zip(chosen["arch"], chosen["lr"], strict=True)) == {("mha", 1e-3), ("lru", 1e-2)}


def test_length_table_is_long_with_ratio(tmp_path: Path) -> None:
    write_record(tmp_path, fake_record("mha", 1e-3, 0, 0.9, 0.8))
    long = length_table(load_records(tmp_path))
    assert sorted(long["length"]) == [64, 256]
    assert sorted(long["ratio"]) == [1.0, 4.0]
    assert long.set_index("length").loc[256, "accuracy"] == 0.2
    assert "arch" in long.columns


def test_summary_averages_seeds_and_lists_failures(tmp_path: Path) -> None:
    write_record(tmp_path, fake_record("mha", 1e-3, 0, 0.9, 0.8))
    write_record(tmp_path, fake_record("mha", 1e-3, 1, 0.7, 0.6))
    write_record(tmp_path, fake_record("lru", 1e-3, 0, 0.0, 0.0, status="failed"))
    text = summary_table(load_records(tmp_path))
    mha = next(line for line in text.splitlines() if " mha " in f" {line} ")
    assert "0.800" in mha and "0.700" in mha  # mean val 0.8, mean test 0.7 over 2 seeds
    assert "not ok:" in text and "failed" in text


def test_summary_keeps_budgets_that_differ_within_an_architecture(tmp_path: Path) -> None:
    """Two step budgets for one task and architecture (the paper suite's MQAR settings) are two
    rows, keyed by the budget, with the steps actually run beside it."""
    for seed, steps in ((0, 100), (1, 300)):
        record = fake_record("mha", 1e-3, seed, 0.9, 0.8)
        record["spec"]["steps"] = steps
        record["run_id"] = f"mha-{steps}"
        write_record(tmp_path, record)
    text = summary_table(load_records(tmp_path))
    header = text.splitlines()[0].split()
    assert "steps" in header and "steps_run" in header
    assert sum(" mha " in f" {line} " for line in text.splitlines()) == 2
