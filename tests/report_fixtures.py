"""Realistic record folders for the report tests, written through seqbench.harness.records.

Run records follow the harness schema (RunSpec fields, metrics.test per length, val, moe...);
profile records follow the profiler's (spec.mode train/decode/counted, metrics named by
method). Numbers come from simple laws plus seeded noise — attention time a·L + b·L², SSM
time ∝ L, KV cache ∝ kv-heads · context, constant recurrent state — so that the claims have
known answers and the tests can break a law on purpose to see a verdict flip.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np

from seqbench.architectures.model import ModelConfig
from seqbench.harness.prepare import mixer_family
from seqbench.harness.records import make_record, spec_hash, write_record
from seqbench.harness.spec import RunSpec
from seqbench.tasks import TASKS

VOCAB = 64
MODELS: dict[str, dict[str, Any]] = {
    "mha": {"mixer_kwargs": {"attention": {"n_heads": 8, "n_kv_heads": 8}}},
    "gqa": {"mixer_kwargs": {"attention": {"n_heads": 8, "n_kv_heads": 2}}},
    "mqa": {"mixer_kwargs": {"attention": {"n_heads": 8, "n_kv_heads": 1}}},
    "mha-moe": {
        "mixer_kwargs": {"attention": {"n_heads": 8, "n_kv_heads": 8}},
        "ffn": "moe",
        "ffn_kwargs": {"n_experts": 8, "top_k": 2},
    },
    "mamba": {"layer_pattern": ("mamba",), "mixer_kwargs": {"mamba": {"d_state": 16}}},
    "lru": {"layer_pattern": ("lru",)},
}
# Mean test accuracy at the training length by (arch, task); seeds add noise around it.
BASE_ACCURACY = {
    "mqar": {"mha": 0.97, "gqa": 0.96, "mqa": 0.9, "mha-moe": 0.95, "mamba": 0.7, "lru": 0.3},
    "selective_copy": {
        "mha": 0.9,
        "gqa": 0.88,
        "mqa": 0.85,
        "mha-moe": 0.9,
        "mamba": 0.97,
        "lru": 0.4,
    },
    "induction": {"mha": 0.99, "gqa": 0.98, "mqa": 0.97, "mha-moe": 0.99, "mamba": 0.9, "lru": 0.5},
}


def rng(*key: Any) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def model_dict(arch: str, d_model: int, n_layers: int = 2, **overrides: Any) -> dict[str, Any]:
    base = {"layer_pattern": ("attention",), **MODELS.get(arch, MODELS["mha"])}
    config = ModelConfig(vocab_size=VOCAB, d_model=d_model, n_layers=n_layers, **base)
    data = config.to_dict()
    for key, value in overrides.items():  # e.g. ffn_kwargs={"n_experts": 16, "top_k": 2}
        data[key] = value
    return data


def params(arch: str, d_model: int, n_layers: int = 2, n_experts: int = 8, top_k: int = 2):
    """(total, active): embedding + head + layers; an MoE's experts count k of E as active."""
    embed = 2 * VOCAB * d_model
    mixer = 4 * d_model * d_model
    ffn = 3 * d_model * 4 * d_model
    if MODELS.get(arch, {}).get("ffn") == "moe" or arch == "mha-moe":
        router = d_model * n_experts
        total = embed + n_layers * (mixer + router + n_experts * ffn)
        return total, embed + n_layers * (mixer + router + top_k * ffn)
    total = embed + n_layers * (mixer + ffn)
    return total, total


# -- run records ----------------------------------------------------------------------------------
def run_record(
    arch: str,
    task: str,
    *,
    seq_len: int = 64,
    d_model: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    eval_lengths: tuple[int, ...] = (),
    status: str = "ok",
    reason: str | None = None,
    accuracy: float | None = None,
) -> dict[str, Any]:
    spec = RunSpec(
        arch=arch,
        task=task,
        seq_len=seq_len,
        d_model=d_model,
        n_layers=2,
        eval_lengths=list(eval_lengths),
        knobs={"vocab_size": VOCAB},
        steps=400,
        batch_size=32,
        lr=lr,
        warmup=40,
        seed=seed,
        device="cpu",
        dtype="float32",
    ).to_dict()
    noise = rng(arch, task, seq_len, d_model, lr, seed)
    if accuracy is None:
        base = BASE_ACCURACY.get(task, {}).get(arch, 0.6)
        lr_penalty = 0.0 if lr == 3e-3 else 0.05
        width_gain = 0.02 * np.log2(d_model / 64)
        accuracy = base - lr_penalty + width_gain + noise.normal(0, 0.02)
    accuracy = float(np.clip(accuracy, 0.0, 1.0))
    total, active = params(arch, d_model)
    metrics: dict[str, Any] = {"params_total": total, "params_active": active}
    definition = run_definition(arch, task, d_model)
    if status != "ok":
        return make_record(
            kind="run",
            run_id=spec_hash("run", spec),
            spec=spec,
            definition=definition,
            status=status,
            reason=reason or "RuntimeError: boom",
            metrics=metrics,
            timings={"wall_s": 1.0},
            device="cpu",
        )
    test = {}
    for length in sorted({seq_len, *eval_lengths}):
        ratio = length / seq_len
        decay = {"mamba": 0.97, "lru": 0.85}.get(arch, 0.6) ** np.log2(ratio)
        acc = float(np.clip(accuracy * decay, 0, 1))
        test[str(length)] = {"accuracy": acc, "exact_match": acc**4, "loss": 1.0 - acc}
    val_acc = float(np.clip(accuracy + noise.normal(0, 0.01), 0, 1))
    metrics.update(
        steps_run=400,
        stopped_early=False,
        train_loss=1.0 - accuracy,
        val={"accuracy": val_acc, "exact_match": val_acc**4, "loss": 1.0 - val_acc},
        val_curve=[{"step": 400, "accuracy": val_acc}],
        test=test,
        kernel_paths={},
        moe=moe_stats(noise) if arch == "mha-moe" else None,
    )
    timings = {
        "train_s": 10.0,
        "train_tokens": 400 * 32 * seq_len,
        "tokens_per_s": 81920.0,
        "eval_s": 1.0,
        "wall_s": 11.5,
    }
    return make_record(
        kind="run",
        run_id=spec_hash("run", spec),
        spec=spec,
        definition=definition,
        status="ok",
        metrics=metrics,
        timings=timings,
        device="cpu",
    )


def run_definition(arch: str, task: str, d_model: int) -> dict[str, Any]:
    """The `definition` a real run records (Prepared.definition), for the fixture's model."""
    model = model_dict(arch, d_model)
    families = {name: mixer_family(name) for name in model["layer_pattern"]}
    distinct = set(families.values())
    return {
        "model": model,
        "family": distinct.pop() if len(distinct) == 1 else "hybrid",
        "mixer_families": families,
        "task": {"name": task, "version": 1, "tags": list(TASKS.get(task).tags)},
    }


def moe_stats(noise: np.random.Generator, n_experts: int = 8) -> dict[str, Any]:
    out = {}
    for layer in ("layer0", "layer1"):
        load = noise.dirichlet(np.full(n_experts, 20.0))
        out[layer] = {
            "n_experts": n_experts,
            "top_k": 2,
            "load": load.tolist(),
            "dropped_fraction": 0.0,
            "balance_loss": 1.01,
            "z_loss": 0.5,
        }
    return out


def write_runs(folder: Path, records: list[dict[str, Any]]) -> Path:
    for record in records:
        write_record(folder, record)
    return folder


def quick_runs(
    archs=("mha", "gqa", "mamba", "lru", "mha-moe"),
    tasks=("mqar", "selective_copy", "induction"),
    seeds=(0, 1),
    lrs=(1e-3, 3e-3),
    lengths=(64,),
    widths=(64,),
) -> list[dict[str, Any]]:
    """A quick-suite-like grid (induction tested at 4× its length) plus two failures."""
    records = []
    for task in tasks:
        evals = (256,) if task == "induction" else ()
        for arch in archs:
            for seq_len in lengths:
                for width in widths:
                    for lr in lrs:
                        for seed in seeds:
                            records.append(
                                run_record(
                                    arch,
                                    task,
                                    seq_len=seq_len,
                                    d_model=width,
                                    lr=lr,
                                    seed=seed,
                                    eval_lengths=evals,
                                )
                            )
    records.append(
        run_record(
            "lru", "mqar", lr=1e-2, seed=0, status="diverged", reason="non-finite loss at step 37"
        )
    )
    records.append(
        run_record(
            "mamba",
            "mqar",
            lr=1e-2,
            seed=0,
            status="oom",
            reason="RuntimeError: CUDA out of memory",
        )
    )
    return records


# -- profile records ------------------------------------------------------------------------------
LENGTH_FIELD = {"train": "seq_len", "decode": "context", "counted": "seq_len"}


def profile_record(
    mode: str,
    arch: str,
    length: int,
    *,
    impl: str = "sdpa",
    d_model: int = 128,
    batch: int = 1,
    n_experts: int | None = None,
    metrics: dict[str, Any] | None = None,
    status: str = "ok",
    reason: str | None = None,
) -> dict[str, Any]:
    """A profile point; `metrics` default to the laws in the module docstring."""
    overrides: dict[str, Any] = {"d_model": d_model}
    model = model_dict(arch, d_model)
    if n_experts is not None:
        overrides["ffn.n_experts"] = n_experts
        model["ffn_kwargs"] = {"n_experts": n_experts, "top_k": 2}
    attention = model["mixer_kwargs"].get("attention")
    if attention is not None and impl != "sdpa":
        attention["impl"] = impl
        overrides["attention.impl"] = impl
    spec = {
        "mode": mode,
        "arch": arch,
        "overrides": overrides,
        LENGTH_FIELD[mode]: length,
        "batch": batch,
        "d_model": d_model,
        "n_layers": 2,
        "impl": impl if attention is not None else None,
        "vocab_size": VOCAB,
        "device": "meta" if mode == "counted" else "cpu",
        "dtype": "float32",
        "seed": 0,
        "model": model,
    }
    spec |= {
        "train": {"repeats": 3},
        "decode": {"decode_steps": 16},
        "counted": {"method": "counted-meta"},
    }[mode]
    if metrics is None and status == "ok":
        metrics = profile_metrics(mode, arch, length, impl, d_model, batch, model)
    return make_record(
        kind="profile",
        run_id=spec_hash("profile", spec),
        spec=spec,
        status=status,
        reason=reason,
        metrics=metrics or {},
        device="cpu",
    )


def profile_metrics(mode, arch, L, impl, d, batch, model) -> dict[str, Any]:
    noise = rng(mode, arch, L, impl, d)
    layers = model["n_layers"]
    attention = model["mixer_kwargs"].get("attention")
    jitter = 1 + noise.normal(0, 0.02)
    linear_flops = 3 * 2 * layers * 12 * d * d * L * batch
    if attention is not None:
        kv, heads = attention["n_kv_heads"], attention["n_heads"]
        flops = linear_flops + 3 * layers * 4 * L * L * d * batch
        step_s = (2e-6 * L + 4e-9 * L * L) * jitter
        saved = 40 * d * L * layers * batch + (
            4 * heads * L * L * layers * batch if impl == "reference" else 0
        )
        state = 2 * layers * batch * kv * (d // heads) * L * 4 + 8 * layers
        decode_s = 1e-4 + 2e-9 * L
    else:
        flops = linear_flops + 3 * 2 * layers * 16 * d * L * batch
        step_s = 3e-6 * L * jitter
        saved = 60 * d * L * layers * batch
        state = layers * batch * d * 16 * 4
        decode_s = 2e-4
    if model["ffn"] == "moe":
        n_experts = model["ffn_kwargs"]["n_experts"]
        flops += 3 * 2 * layers * d * n_experts * L * batch  # the router grows with E
    total, active = params(arch, d, n_experts=(model.get("ffn_kwargs") or {}).get("n_experts", 8))
    common = {"parameters": {"total": total, "active": active}}
    if mode == "counted":
        return {
            "method": "counted-meta",
            "flops_per_step": flops,
            "flops_per_token": flops / (L * batch),
            "saved_activations": saved,
            "state_bytes": state,
            **common,
        }
    if mode == "train":
        memory = {
            "saved_activations": saved,
            "cpu_rss_delta": int(saved * 1.3 * jitter),
            "cuda_peak_allocated": None,
        }
        return {
            "step_s": step_s,
            "step_cpu_s": step_s * 0.97,  # one thread: CPU time a little under wall time
            "tokens_per_s": L * batch / step_s,
            "memory_bytes": memory,
            "flops_per_step": flops,
            "flops_per_token": flops / (L * batch),
            **common,
        }
    prefill = (1e-6 * L + (2e-10 * L * L if attention is not None else 0)) * jitter
    return {
        "prefill_s": prefill,
        "prefill_cpu_s": prefill * 0.97,
        "prefill_tokens_per_s": L * batch / prefill,
        "decode_s_per_token": decode_s,
        "decode_cpu_s_per_token": decode_s * 0.97,
        "decode_tokens_per_s": batch / decode_s,
        "state_bytes": state,
        **common,
    }


def profile_sweep(
    archs=("mha", "gqa", "mqa", "mamba", "lru", "mha-moe"),
    lengths=(256, 512, 1024, 2048, 4096),
    counted=(16384, 65536),
) -> list[dict[str, Any]]:
    """What `seqbench profile` writes for these archs: train and decode at every length, the
    reference attention path for mha, counted points beyond, MoE at 4/8/16 experts."""
    records = []
    for arch in archs:
        for L in lengths:
            records.append(profile_record("train", arch, L))
            records.append(profile_record("decode", arch, L))
        if arch != "mha-moe":  # MoE routing cannot run on the meta device
            records += [profile_record("counted", arch, L) for L in counted]
    for L in lengths:
        records.append(profile_record("train", "mha", L, impl="reference"))
    records += [profile_record("counted", "mha", L, impl="reference") for L in counted]
    if "mha-moe" in archs:
        records += [profile_record("train", "mha-moe", 512, n_experts=e) for e in (4, 16)]
    records.append(fit_record())
    records.append(
        profile_record(
            "train",
            "mha",
            65536,
            status="oom",
            reason="RuntimeError: [enforce fail] can't allocate memory",
        )
    )
    return records


def fit_record() -> dict[str, Any]:
    """A scaling fit the profiler derives from points (kind "profile", spec.mode "fit")."""
    spec = {"mode": "fit", "of_mode": "train", "x": "seq_len", "series": {"arch": "mha"}}
    fit = {
        "slope": 1.8,
        "intercept": -20.0,
        "ci_low": 1.7,
        "ci_high": 1.9,
        "r2": 0.99,
        "n_points": 3,
        "x_min": 1024.0,
        "x_max": 4096.0,
    }
    metrics = {"fits": {"step_s": {"all": fit, "long": None, "points": []}}, "point_ids": []}
    return make_record(
        kind="profile",
        run_id=spec_hash("profile", spec),
        spec=spec,
        status="ok",
        metrics=metrics,
        device="cpu",
    )
