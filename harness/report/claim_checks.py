"""The individual claim checks (rules and thresholds: seqbench.harness.report.claims).

Each check takes the report's frames and returns one Claim; "not measured" says which records
would be needed. Profile frames have one row per point (seqbench.harness.report.data.profile_frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product

import pandas as pd

from seqbench.harness.common.scaling import LogLogFit, fit_loglog
from seqbench.harness.report import fmt
from seqbench.harness.report.claims import (
    CONTRADICTED,
    NOT_MEASURED,
    SUPPORTED,
    THRESHOLDS,
    Claim,
    judge,
)
from seqbench.harness.report.data import ReportData
from seqbench.harness.report.stats import MeanCI, long_fit, mean_ci, slope_text
from seqbench.harness.store import group_columns, has_tag

T = THRESHOLDS
LINEAR_FAMILIES = ("ssm", "linear-recurrence")


def all_claims(data: ReportData) -> list[Claim]:
    prof = data.profile[data.profile["status"] == "ok"]
    return [
        kv_cache(prof),
        compute_scaling(prof, "flops_per_step", "FLOPs of a training step (counted)"),
        time_scaling(prof),
        attention_memory(prof),
        lru_parallel(prof),
        lru_constant_state(prof),
        moe_subset(data.best_ok, prof),
        moe_flat_compute(prof),
        gqa_quality(data.best_ok),
    ]


# -- helpers -----------------------------------------------------------------------------------
@dataclass
class Exponent:
    """A series' fitted exponent and the evidence line that shows it."""

    fit: LogLogFit
    line: str
    points: pd.DataFrame  # the rows the exponent was fitted on (and their other columns)
    undecided: str | None = None  # why a miss of the threshold would prove nothing, if so

    def side(self, threshold: float, above: bool) -> str:
        """SUPPORTED when the exponent is on the claimed side of `threshold`; CONTRADICTED when
        its whole 95% interval is on the other side (unless `undecided` says why missing the
        threshold proves nothing here); NOT_MEASURED (too noisy) in between."""
        fit = self.fit
        if (fit.slope >= threshold) if above else (fit.slope <= threshold):
            return SUPPORTED
        if self.undecided:
            return NOT_MEASURED
        far = fit.ci_high if above else fit.ci_low
        if far is not None and ((far < threshold) if above else (far > threshold)):
            return CONTRADICTED
        return NOT_MEASURED


def slopes(frame: pd.DataFrame, y: str, *, join_methods: bool = False) -> list[Exponent]:
    """The long-range exponent of `y` per series with ≥ min_slope_points lengths. With
    `join_methods`, measured and counted points of one model form one series: right for exact
    tensor-level counts (FLOPs, saved bytes), which the meta device counts the same way."""
    keys = ["series"] if join_methods else ["series", "method"]
    found = []
    for key, points in frame.dropna(subset=[y]).groupby(keys):
        if points["length"].nunique() < T.min_slope_points:
            continue
        fit = long_fit(points["length"], points[y])
        if fit is None:
            continue
        points = points[points["length"].between(fit.x_min * 0.999, fit.x_max * 1.001)]
        methods = set(points["method"])
        tag = "" if methods == {"measured"} else " (counted)" if len(methods) == 1 else " (all)"
        line = (
            f"{key[0]}{tag}: {slope_text(fit)} over L = {fmt.num(fit.x_min)}…{fmt.num(fit.x_max)}"
        )
        found.append(Exponent(fit, line, points))
    return found


def at_longest(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per group of `keys`, the rows at its longest length."""
    longest = frame.groupby(keys, dropna=False)["length"].transform("max")
    return frame[frame["length"] == longest]


# -- KV cache ----------------------------------------------------------------------------------
def kv_cache(prof: pd.DataFrame) -> Claim:
    statement = "MQA/GQA shrink the KV cache by heads ÷ kv-heads relative to MHA."
    rule = (
        f"MHA's decode-state bytes ÷ GQA/MQA's at the same context, batch and size lie "
        f"within ±{T.kv_ratio_tolerance:.0%} of n_heads ÷ n_kv_heads."
    )
    rows = prof[prof["mode"].isin(["decode", "counted"]) & (prof["family"] == "attention")]
    rows = rows.dropna(subset=["state_bytes", "n_heads", "n_kv_heads"])
    keys = ["length", "batch", "d_model", "n_layers", "dtype", "n_heads", "method"]
    evidence, ratios_ok = [], []
    for key, group in at_longest(rows, keys[1:]).groupby(keys, dropna=False):
        mha = group[group["n_kv_heads"] == group["n_heads"]]
        if mha.empty:
            continue
        # The plainest MHA as the baseline: dense FFN and the default attention impl first.
        base = mha.assign(_rank=(mha["ffn"] == "moe") * 2 + (mha["impl"] != "sdpa"))
        base = base.sort_values(["_rank", "arch"]).iloc[0]
        for _, other in group[group["n_kv_heads"] < group["n_heads"]].iterrows():
            ratio = base["state_bytes"] / other["state_bytes"]
            expected = other["n_heads"] / other["n_kv_heads"]
            ratios_ok.append(abs(ratio / expected - 1) <= T.kv_ratio_tolerance)
            evidence.append(
                f"{other['series']} ({int(other['n_kv_heads'])} of {int(other['n_heads'])} heads"
                f"{', counted' if key[-1] != 'measured' else ''}) at context "
                f"{fmt.num(key[0])}: {fmt.bytes_(other['state_bytes'])} vs "
                f"{base['arch']} {fmt.bytes_(base['state_bytes'])}: ratio {ratio:.2f}, "
                f"expected {expected:.2f}"
            )
    if not ratios_ok:
        return Claim(
            statement,
            NOT_MEASURED,
            [
                "needs decode-state records of an MHA and a "
                "GQA/MQA model of the same size (seqbench profile --arch mha --arch gqa)"
            ],
            rule,
        )
    return Claim(statement, judge(all(ratios_ok)), evidence, rule)


# -- scaling with length -------------------------------------------------------------------------
def compute_scaling(prof: pd.DataFrame, y: str, what: str) -> Claim:
    statement = (
        f"Full attention's compute is quadratic in length while selective SSMs (and "
        f"the LRU) are linear — {what}."
    )
    rule = (
        f"Exponent over the longest half of ≥ {T.min_slope_points} lengths: every attention "
        f"model ≥ {T.quadratic_min_slope}, every SSM/LRU ≤ {T.linear_max_slope}."
    )
    rows = prof[prof["mode"].isin(["train", "counted"])]
    exact = y.startswith("flops")  # counted alike on the meta device; times are measured
    quadratic = slopes(rows[rows["family"] == "attention"], y, join_methods=exact)
    linear = slopes(rows[rows["family"].isin(LINEAR_FAMILIES)], y, join_methods=exact)
    if not exact:
        for exponent in quadratic:
            exponent.undecided = pre_asymptotic(exponent.points)
    need = f"needs {what} at ≥ {T.min_slope_points} lengths for an attention model and an SSM/LRU"
    return exponent_claim(Claim(statement, NOT_MEASURED, [need], rule), quadratic, linear)


def time_scaling(prof: pd.DataFrame) -> Claim:
    """The compute claim on measured step times: CPU time where every point has it (robust to
    other jobs on a shared CPU: time spent descheduled is not counted), else wall time."""
    train = prof[prof["mode"] == "train"]
    y, clock = ("step_cpu_s", "CPU") if cpu_times(train, "step_cpu_s") else ("step_s", "wall")
    return compute_scaling(prof, y, f"{clock} time of a training step (measured)")


def pre_asymptotic(points: pd.DataFrame) -> str | None:
    """Why a measured attention time exponent cannot test "quadratic", if it cannot: over the
    lengths it was fitted on, the counted FLOPs themselves grow with an exponent below the
    quadratic threshold (the linear projections still outweigh the L² products), so time
    cannot be expected to either."""
    flops = points.dropna(subset=["flops_per_step"])
    fit = fit_loglog(flops["length"], flops["flops_per_step"]) if len(flops) > 1 else None
    if fit is None or fit.slope >= T.quadratic_min_slope:
        return None
    return (
        f"not measured: the FLOPs exponent over these lengths is {fit.slope:.2f}, the L² term "
        "does not dominate yet; profile longer lengths"
    )


def cpu_times(rows: pd.DataFrame, *columns: str) -> bool:
    """True when every row has the CPU-time `columns` (CPU runs of a profiler that records
    them); the checks then use CPU time instead of wall time."""
    return not rows.empty and all(c in rows and rows[c].notna().all() for c in columns)


def attention_memory(prof: pd.DataFrame) -> Claim:
    statement = (
        "Attention's training memory is quadratic in length only where the score "
        "matrix is materialised (explicit softmax), linear through the fused kernel."
    )
    rule = (
        f"Activation bytes saved for backward, exponent over the longest half of the lengths:"
        f" 'reference' attention ≥ {T.quadratic_min_slope}, fused 'sdpa' ≤ "
        f"{T.linear_max_slope}."
    )
    rows = prof[prof["mode"].isin(["train", "counted"]) & (prof["family"] == "attention")]
    reference = slopes(rows[rows["impl"] == "reference"], "saved_activations", join_methods=True)
    fused = slopes(rows[rows["impl"] == "sdpa"], "saved_activations", join_methods=True)
    need = "needs saved-activation bytes of attention with impl 'reference' and 'sdpa'"
    return exponent_claim(Claim(statement, NOT_MEASURED, [need], rule), reference, fused)


def exponent_claim(unmeasured: Claim, quadratic: list[Exponent], linear: list[Exponent]) -> Claim:
    """Supported when every `quadratic` exponent is ≥ the quadratic threshold and every `linear`
    one ≤ the linear threshold; contradicted when one is clearly (its whole 95% interval) on
    the wrong side; otherwise — or when either group is empty — `unmeasured`."""
    if not quadratic or not linear:
        return unmeasured
    sides = [e.side(T.quadratic_min_slope, above=True) for e in quadratic]
    sides += [e.side(T.linear_max_slope, above=False) for e in linear]
    lines = [
        e.line + ("" if side == SUPPORTED else f" ({e.undecided or side})")
        for e, side in zip(quadratic + linear, sides, strict=True)
    ]
    return Claim(unmeasured.statement, combine(sides), lines, unmeasured.rule)


def combine(verdicts: list[str]) -> str:
    """One verdict from several: any contradiction wins, then any undecided one."""
    if CONTRADICTED in verdicts:
        return CONTRADICTED
    return NOT_MEASURED if NOT_MEASURED in verdicts or not verdicts else SUPPORTED


# -- the LRU --------------------------------------------------------------------------------------
def lru_parallel(prof: pd.DataFrame) -> Claim:
    statement = (
        "The LRU trains in parallel: a whole sequence is processed at once, not token by token."
    )
    rule = (
        f"Speedup = context × decode s/token ÷ prefill s (prefill is the parallel forward over "
        f"the sequence): ≥ {T.parallel_min_speedup:g}× at every profiled context ≥ "
        f"{T.parallel_min_context:,} (every context if none is that long) → supported; below at "
        "every one → contradicted; contexts that disagree are timing noise (not measured)."
    )
    rows = prof[(prof["mode"] == "decode") & (prof["family"] == "linear-recurrence")]
    rows = rows.dropna(subset=["prefill_s", "decode_s_per_token"])
    if rows.empty:
        need = "needs decode records of an LRU (seqbench profile --arch lru)"
        return Claim(statement, NOT_MEASURED, [need], rule)
    cpu = cpu_times(rows, "prefill_cpu_s", "decode_cpu_s_per_token")
    prefill, decode = (
        ("prefill_cpu_s", "decode_cpu_s_per_token") if cpu else ("prefill_s", "decode_s_per_token")
    )
    clock = "CPU time" if cpu else "wall time"
    evidence, verdicts = [], []
    for series, points in rows.groupby("series"):
        long = points[points["length"] >= T.parallel_min_context]
        points = (long if not long.empty else points).sort_values("length")
        speedups = points["length"] * points[decode] / points[prefill]
        fast = speedups >= T.parallel_min_speedup
        verdicts.append(
            SUPPORTED if fast.all() else CONTRADICTED if not fast.any() else NOT_MEASURED
        )
        evidence += [
            f"{series} at context {fmt.num(length)} ({clock}): prefill {fmt.seconds(p)} vs "
            f"{fmt.seconds(d)} per decoded token: {x:.1f}× faster per token"
            for length, p, d, x in zip(
                points["length"], points[prefill], points[decode], speedups, strict=True
            )
        ]
    return Claim(statement, combine(verdicts), evidence, rule)


def lru_constant_state(prof: pd.DataFrame) -> Claim:
    statement = "The LRU decodes with constant memory: its state does not grow with the context."
    rule = (
        f"Largest ÷ smallest decode-state bytes ≤ {T.constant_max_ratio} over contexts "
        f"spanning ≥ {T.min_context_span:g}×."
    )
    rows = prof[prof["mode"].isin(["decode", "counted"]) & (prof["family"] == "linear-recurrence")]
    rows = rows.dropna(subset=["state_bytes"]) if "state_bytes" in rows else rows
    evidence, flat = [], []
    for (series, method), points in rows.groupby(["series", "method"]):
        span = points["length"].max() / points["length"].min()
        if span < T.min_context_span:
            continue
        ratio = points["state_bytes"].max() / points["state_bytes"].min()
        flat.append(ratio <= T.constant_max_ratio)
        evidence.append(
            f"{series}{' (counted)' if method != 'measured' else ''}: "
            f"{fmt.bytes_(points['state_bytes'].min())}…{fmt.bytes_(points['state_bytes'].max())}"
            f" over contexts {fmt.num(points['length'].min())}…{fmt.num(points['length'].max())}"
            f" (ratio {ratio:.3f})"
        )
    if not flat:
        return Claim(
            statement,
            NOT_MEASURED,
            [f"needs LRU decode-state bytes at contexts spanning ≥ {T.min_context_span:g}×"],
            rule,
        )
    return Claim(statement, judge(all(flat)), evidence, rule)


# -- Mixture-of-Experts ---------------------------------------------------------------------------
def moe_subset(best_ok: pd.DataFrame, prof: pd.DataFrame) -> Claim:
    statement = "An MoE activates only a subset of its parameters per token."
    rule = "Active parameters per token (router + top-k experts + the rest) < total parameters."
    cols = ["arch", "d_model", "n_layers", "n_experts", "top_k", "params_total", "params_active"]
    frames = [f[cols] for f in (best_ok, prof) if not f.empty and set(cols) <= set(f.columns)]
    moe = (
        pd.concat(frames).dropna(subset=["n_experts", "params_total", "params_active"])
        if frames
        else None
    )
    if moe is None or moe.empty:
        return Claim(
            statement, NOT_MEASURED, ["needs a run or profile record of an MoE model"], rule
        )
    moe = moe.drop_duplicates(subset=cols)
    evidence = [
        f"{r.arch} (top-{int(r.top_k)} of {int(r.n_experts)} experts, d={fmt.num(r.d_model)}): "
        f"{fmt.num(r.params_active)} of {fmt.num(r.params_total)} parameters active "
        f"({r.params_active / r.params_total:.0%})"
        for r in moe.itertuples()
    ]
    return Claim(
        statement, judge(bool((moe["params_active"] < moe["params_total"]).all())), evidence, rule
    )


def moe_flat_compute(prof: pd.DataFrame) -> Claim:
    statement = "An MoE keeps compute per token flat as experts are added (at fixed top-k)."
    rule = (
        f"FLOPs per training token, largest ÷ smallest across expert counts at the same "
        f"top-k, length and size ≤ {T.flat_max_ratio}."
    )
    rows = prof[prof["mode"].isin(["train", "counted"])]
    rows = rows.dropna(subset=["n_experts", "flops_per_token"])
    keys = ["top_k", "length", "batch", "d_model", "n_layers", "method"]
    # Groups that vary the experts, then the longest length of each size.
    rows = rows[rows.groupby(keys)["n_experts"].transform("nunique") > 1]
    rows = at_longest(rows, keys[:1] + keys[2:])
    evidence, flat = [], []
    for key, group in rows.groupby(keys):
        group = group.sort_values("n_experts")
        ratio = group["flops_per_token"].max() / group["flops_per_token"].min()
        flat.append(ratio <= T.flat_max_ratio)
        evidence.append(
            f"top-{int(key[0])}, L={fmt.num(key[1])}: "
            + ", ".join(
                f"{int(e)} experts {fmt.num(f)}"
                for e, f in zip(group["n_experts"], group["flops_per_token"], strict=True)
            )
            + f" FLOPs/token (ratio {ratio:.3f})"
        )
    if not flat:
        return Claim(
            statement,
            NOT_MEASURED,
            [
                "needs FLOPs per token of an MoE profiled at two "
                "or more expert counts (--set ffn.n_experts=…)"
            ],
            rule,
        )
    return Claim(statement, judge(all(flat)), evidence, rule)


# -- quality --------------------------------------------------------------------------------------
def gqa_quality(best_ok: pd.DataFrame) -> Claim:
    statement = "GQA keeps quality close to MHA on recall tasks."
    rule = (
        "On recall tasks (tagged 'recall'), for each MHA and GQA model that differ "
        f"only in kv-heads, trained alike, where MHA reaches ≥ {T.learned_min}: supported when "
        f"every gap (MHA's mean test accuracy minus GQA's) ≤ {T.quality_max_gap}; contradicted "
        f"when a gap exceeds {T.quality_max_gap} by more than its 95% half-width "
        "√(h_MHA² + h_GQA²); a larger gap within the seeds' noise needs more seeds."
    )
    rows = best_ok[has_tag(best_ok, "recall") & (best_ok["family"] == "attention")]
    keys = [c for c in group_columns(rows) if c != "arch"] + ["model_key"]
    evidence, verdicts = [], []
    for key, group in rows.groupby(keys, dropna=False) if not rows.empty else []:
        where = ", ".join(
            f"{name}={fmt.num(key[keys.index(col)])}" if name else str(key[keys.index(col)])
            for col, name in (("task", ""), ("seq_len", "L"), ("d_model", "d"))
            if col in keys
        )
        kv, heads = (pd.to_numeric(group[c], errors="coerce") for c in ("n_kv_heads", "n_heads"))
        mha = group[kv == heads]  # a record missing either is in neither (NaN compares false)
        gqa = group[(kv > 1) & (kv < heads)]
        for (mha_arch, base_rows), (arch, other) in product(
            mha.groupby("arch"), gqa.groupby("arch")
        ):
            base, test = mean_ci(base_rows["test_accuracy"]), mean_ci(other["test_accuracy"])
            line = f"{where}: {mha_arch} {base.format()} vs {arch} {test.format()}"
            if base.mean < T.learned_min:
                evidence.append(f"{line}: MHA did not learn the task (no verdict)")
                continue
            verdict, gap_text = quality_gap(base, test)
            verdicts.append(verdict)
            evidence.append(f"{line}: {gap_text}")
    if not verdicts:
        need = "needs ok runs of MHA and GQA models that differ only in kv-heads on a recall task"
        return Claim(statement, NOT_MEASURED, evidence or [need], rule)
    return Claim(statement, combine(verdicts), evidence, rule)


def quality_gap(mha: MeanCI, gqa: MeanCI) -> tuple[str, str]:
    """Verdict of one MHA/GQA pair under the rule of `gqa_quality`, and its evidence text."""
    gap = mha.mean - gqa.mean
    if gap <= T.quality_max_gap:
        return SUPPORTED, f"gap {gap:+.3f}"
    if mha.half_width is None or gqa.half_width is None:
        return NOT_MEASURED, f"gap {gap:+.3f} with a single seed (no noise estimate)"
    noise = math.hypot(mha.half_width, gqa.half_width)
    if gap - T.quality_max_gap > noise:
        return CONTRADICTED, f"gap {gap:+.3f} (± {noise:.3f})"
    return NOT_MEASURED, f"gap {gap:+.3f} within seed noise ± {noise:.3f} (more seeds needed)"
