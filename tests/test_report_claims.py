"""Each claim's verdict follows its rule: supported on textbook data, contradicted when the
data break the law, not measured when the records needed are missing."""

from __future__ import annotations

import pytest

from seqbench.harness.report import claim_checks as checks
from seqbench.harness.report.claims import CONTRADICTED, NOT_MEASURED, SUPPORTED, THRESHOLDS
from seqbench.harness.report.data import load, profile_frame
from tests.report_fixtures import profile_record, run_record, write_runs

LENGTHS = (256, 512, 1024, 2048, 4096)


def frame(records):
    prof = profile_frame(records)
    return prof[prof["status"] == "ok"]


def points(mode, arch, lengths=LENGTHS, **kwargs):
    return [profile_record(mode, arch, L, **kwargs) for L in lengths]


def scaled(records, key, law):
    """Replace metric `key` of each record by law(length, old value) (breaking a textbook law)."""
    for record in records:
        spec, metrics = record["spec"], record["metrics"]
        length = spec.get("seq_len", spec.get("context"))
        if key in metrics:
            metrics[key] = law(length, metrics[key])
        else:
            metrics["memory_bytes"][key] = law(length, metrics["memory_bytes"][key])
    return records


def test_kv_cache():
    mha, gqa, mqa = (points("decode", a, (1024, 4096)) for a in ("mha", "gqa", "mqa"))
    claim = checks.kv_cache(frame(mha + gqa + mqa))
    assert claim.verdict == SUPPORTED
    assert any("ratio 4.00, expected 4.00" in e for e in claim.evidence)
    assert any("ratio 8.00, expected 8.00" in e for e in claim.evidence)
    doubled = scaled(points("decode", "gqa", (1024, 4096)), "state_bytes", lambda L, v: 2 * v)
    assert checks.kv_cache(frame(mha + doubled)).verdict == CONTRADICTED
    assert checks.kv_cache(frame(mha)).verdict == NOT_MEASURED


@pytest.mark.parametrize("metric", ["flops_per_step", "step_s"])
def test_compute_scaling(metric):
    attention, mamba = points("train", "mha"), points("train", "mamba")
    assert checks.compute_scaling(frame(attention + mamba), metric, "x").verdict == SUPPORTED
    source = "flops_per_token" if metric == "flops_per_step" else "step_s"
    quadratic = scaled(points("train", "mamba"), source, lambda L, v: v * L / 256)
    assert checks.compute_scaling(frame(attention + quadratic), metric, "x").verdict == CONTRADICTED
    assert checks.compute_scaling(frame(attention), metric, "x").verdict == NOT_MEASURED
    short = points("train", "mamba", (256, 512))  # two lengths cannot show an exponent's trend
    assert checks.compute_scaling(frame(attention + short), metric, "x").verdict == NOT_MEASURED


def test_exact_counts_join_measured_and_counted_points():
    """FLOPs are counted the same way on the meta device, so one model's measured short points
    and counted long points form one series; the long end decides (L/(6d) ≫ 1 only there)."""
    short = points("train", "mha", (128, 256, 512))
    alone = checks.compute_scaling(frame(short + points("train", "lru")), "flops_per_step", "x")
    assert alone.verdict == NOT_MEASURED  # the short range alone cannot tell
    assert alone.evidence[0].startswith("mha: slope 1.26") and "(not measured)" in alone.evidence[0]
    counted = points("counted", "mha", (4096, 16384, 65536))
    joined = checks.compute_scaling(
        frame(short + counted + points("train", "lru")), "flops_per_step", "x"
    )
    assert joined.verdict == SUPPORTED
    assert joined.evidence[0].startswith("mha (all): slope 1.8")
    assert "over L = 512…65,536" in joined.evidence[0]  # the longest half, at least 4 lengths


def test_noisy_timings_are_not_a_verdict():
    """A time exponent on the wrong side whose 95% interval reaches back across the threshold
    is undecided (not measured), not a contradiction."""
    noisy = scaled(
        points("train", "mamba"),
        "step_s",
        lambda L, v: v * {1024: 1.0, 2048: 3.0, 4096: 2.5}.get(L, 1.0),
    )
    claim = checks.compute_scaling(frame(points("train", "mha") + noisy), "step_s", "x")
    assert claim.verdict == NOT_MEASURED
    assert (
        claim.evidence[-1].startswith("mamba: slope 1.56 [0.59, 2.54]")
        and "(not measured)" in claim.evidence[-1]
    )


def test_attention_memory_depends_on_the_implementation():
    fused, explicit = points("train", "mha"), points("train", "mha", impl="reference")
    claim = checks.attention_memory(frame(fused + explicit))
    assert claim.verdict == SUPPORTED and "mha (reference): slope 1.89" in claim.evidence[0]
    linear = scaled(
        points("train", "mha", impl="reference"), "saved_activations", lambda L, v: 1000 * L
    )
    assert checks.attention_memory(frame(fused + linear)).verdict == CONTRADICTED
    assert checks.attention_memory(frame(fused)).verdict == NOT_MEASURED


def test_lru_parallel_and_constant_state():
    lru = points("decode", "lru")
    assert checks.lru_parallel(frame(lru)).verdict == SUPPORTED
    assert checks.lru_constant_state(frame(lru)).verdict == SUPPORTED
    sequential = scaled(points("decode", "lru"), "prefill_s", lambda L, v: L * 2e-4)
    sequential = scaled(sequential, "prefill_cpu_s", lambda L, v: L * 2e-4)
    assert checks.lru_parallel(frame(sequential)).verdict == CONTRADICTED
    growing = scaled(points("decode", "lru"), "state_bytes", lambda L, v: v + L)
    assert checks.lru_constant_state(frame(growing)).verdict == CONTRADICTED
    narrow = points("decode", "lru", (256, 512))  # spans 2x < min_context_span
    assert checks.lru_constant_state(frame(narrow)).verdict == NOT_MEASURED
    assert checks.lru_parallel(frame(points("decode", "mha"))).verdict == NOT_MEASURED
    noisy = points("decode", "lru")  # one long context slow, the others fast: timing noise
    noisy[-1]["metrics"]["prefill_cpu_s"] = 4096 * noisy[-1]["metrics"]["decode_cpu_s_per_token"]
    claim = checks.lru_parallel(frame(noisy))
    assert claim.verdict == NOT_MEASURED and len(claim.evidence) == 3  # contexts 1024…4096


def test_moe_claims(tmp_path):
    experts = [profile_record("train", "mha-moe", 512, n_experts=e) for e in (4, 8, 16)]
    flat = checks.moe_flat_compute(frame(experts))
    assert flat.verdict == SUPPORTED and "4 experts" in flat.evidence[0]
    growing = [profile_record("train", "mha-moe", 512, n_experts=e) for e in (4, 8, 16)]
    for record, e in zip(growing, (4, 8, 16), strict=True):
        record["metrics"]["flops_per_token"] *= e / 4  # compute growing with the experts
    assert checks.moe_flat_compute(frame(growing)).verdict == CONTRADICTED
    assert checks.moe_flat_compute(frame(experts[:1])).verdict == NOT_MEASURED

    empty = frame([])
    write_runs(tmp_path, [run_record("mha-moe", "mqar", seed=s) for s in (0, 1)])
    best = load(tmp_path).best_ok
    subset = checks.moe_subset(best, empty)
    assert subset.verdict == SUPPORTED and "parameters active (29%)" in subset.evidence[0]
    dense = experts[:1]
    dense[0]["metrics"]["parameters"]["active"] = dense[0]["metrics"]["parameters"]["total"]
    assert checks.moe_subset(best.iloc[0:0], frame(dense)).verdict == CONTRADICTED
    assert checks.moe_subset(best.iloc[0:0], empty).verdict == NOT_MEASURED


@pytest.mark.parametrize(
    ("mha", "gqa", "verdict"),
    [
        ((0.95, 0.96), (0.95, 0.945), SUPPORTED),  # gap 0.0075 <= 0.02
        ((0.95, 0.96), (0.60, 0.61), CONTRADICTED),  # gap 0.35, far beyond the seeds' noise
        ((0.95, 0.99), (0.80, 0.99), NOT_MEASURED),  # gap 0.075 within noise: more seeds needed
        ((0.30, 0.32), (0.20, 0.21), NOT_MEASURED),  # MHA did not learn the task
        ((0.95,), (0.80,), NOT_MEASURED),  # one seed: no noise estimate for a large gap
    ],
)
def test_gqa_quality(tmp_path, mha, gqa, verdict):
    records = [run_record("mha", "mqar", seed=s, accuracy=a) for s, a in enumerate(mha)]
    records += [run_record("gqa", "mqar", seed=s, accuracy=a) for s, a in enumerate(gqa)]
    records += [run_record("gqa", "selective_copy", seed=0)]  # not a recall task: ignored
    write_runs(tmp_path, records)
    claim = checks.gqa_quality(load(tmp_path).best_ok)
    assert claim.verdict == verdict, claim.evidence
    assert len(claim.evidence) == 1 and "mqar, L=64, d=64: mha" in claim.evidence[0]


def test_thresholds_are_the_documented_numbers():
    assert (THRESHOLDS.quadratic_min_slope, THRESHOLDS.linear_max_slope) == (1.5, 1.2)
    assert (THRESHOLDS.kv_ratio_tolerance, THRESHOLDS.flat_max_ratio) == (0.05, 1.10)
    assert (THRESHOLDS.quality_max_gap, THRESHOLDS.learned_min) == (0.02, 0.5)
    assert (THRESHOLDS.constant_max_ratio, THRESHOLDS.parallel_min_speedup) == (1.01, 4.0)


def test_cpu_time_is_preferred_where_every_point_has_it():
    """On a shared CPU, wall time includes time spent descheduled; CPU time does not."""
    records = points("train", "mha") + points("train", "lru")
    for record in records:  # clean CPU times, wall times wrecked by another job
        metrics = record["metrics"]
        metrics["step_s"] *= 1 + 5 * (record["spec"]["seq_len"] == 2048)
    claim = checks.time_scaling(frame(records))
    assert "CPU time" in claim.statement and claim.verdict == SUPPORTED
    wall = checks.compute_scaling(frame(records), "step_s", "wall time")
    assert wall.verdict == NOT_MEASURED  # what the wrecked wall times alone would say
    del records[0]["metrics"]["step_cpu_s"]  # one point without: wall time for all
    assert "wall time" in checks.time_scaling(frame(records)).statement

    lru = points("decode", "lru")
    for record in lru:  # CPU times say parallel, wall times (another job) say not
        record["metrics"]["prefill_s"] *= 100
    claim = checks.lru_parallel(frame(lru))
    assert claim.verdict == SUPPORTED and "(CPU time)" in claim.evidence[0]
    for record in lru:
        del record["metrics"]["prefill_cpu_s"]
    assert checks.lru_parallel(frame(lru)).verdict == CONTRADICTED


def test_time_below_quadratic_proves_nothing_where_flops_are_not_quadratic_yet():
    """At short lengths attention's linear projections outweigh its L² products, so even its
    counted FLOPs grow slower than L^1.5: a linear-looking time there is not a contradiction.
    Where the FLOPs do grow quadratically, a linear time is one."""
    lru = points("train", "lru")

    def linear_time(lengths):
        return scaled(points("train", "mha", lengths), "step_cpu_s", lambda L, v: 1e-5 * L)

    short = checks.time_scaling(frame(linear_time((128, 256, 512, 1024)) + lru))
    assert short.verdict == NOT_MEASURED
    assert "the FLOPs exponent over these lengths is 1.3" in short.evidence[0]
    long = checks.time_scaling(frame(linear_time((4096, 8192, 16384, 32768)) + lru))
    assert long.verdict == CONTRADICTED and long.evidence[0].endswith("(contradicted)")
