"""summary.md of benchmarks/gpu_check.py: its steps' results as Markdown tables.

Built from OUT/gpu_check/*.json alone, so it can be rebuilt (`python benchmarks/gpu_summary.py
OUT`) and pasted into docs/gpu.md as measured.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def markdown(summary: dict[str, Any]) -> str:
    steps = summary["steps"]
    env = next((s.get("environment") for s in steps.values() if s.get("environment")), {}) or {}
    lines = [
        "# gpu_check summary",
        "",
        f"Device {env.get('device')} ({env.get('gpu') or env.get('cpu')}), torch "
        f"{env.get('torch')}, CUDA {env.get('cuda')}, mamba-ssm {env.get('mamba_ssm')}; "
        f"all steps {summary['wall_s']} s.",
        "",
        "| step | status | seconds | reason |",
        "|---|---|---:|---|",
    ]
    lines += [
        f"| {name} | {s['status']} | {s.get('seconds')} | {s.get('reason') or ''} |"
        for name, s in steps.items()
    ]
    for name, render in RENDER.items():
        step = steps.get(name) or {}
        if step.get("result"):
            lines += ["", *render(step["result"])]
            if step.get("partial"):
                lines += ["", f"Partial: `{name}` was stopped ({step['reason']}); above is what it "
                          "had finished."]  # fmt: skip
    return "\n".join(lines) + "\n"


def of(r: dict[str, Any], done: int, what: str) -> str:
    """ "12 runs" or, for a step stopped part-way, "12 of 18 runs"."""
    total = r.get("of")
    return f"{done} of {total} {what}" if total not in (None, done) else f"{done} {what}"


def conformance(r: dict[str, Any]) -> list[str]:
    out = [
        f"## Conformance ({r['device']}, {r['dtype']}): {r['passed']} pass of "
        f"{of(r, r['total'], 'mixers')} checked",
        "",
        "| mixer | passed | max step error | failures |",
        "|---|---|---:|---|",
    ]
    for name, m in r["mixers"].items():
        err = m.get("max_step_error")
        out.append(f"| {name} | {m['passed']} | {fmt(err)} | {'; '.join(m['failures'])} |")
    return out


def bf16(r: dict[str, Any]) -> list[str]:
    out = [
        f"## Training per preset ({of(r, len(r['presets']), 'presets')}), kernels engaged "
        f"(mamba-ssm here: {r['mamba_ssm']})",
        "",
        "| preset | status | dtype | kernel paths | tokens/s |",
        "|---|---|---|---|---:|",
    ]
    for arch, p in r["presets"].items():
        paths = ", ".join(f"{k}: {v}" for k, v in p["kernel_paths"].items()) or "(none recorded)"
        out.append(
            f"| {arch} | {p['status']} {p['reason'] or ''} | {p['dtype']} | {paths} | "
            f"{fmt(p['tokens_per_s'])} |"
        )
    return out


def agreement(r: dict[str, Any]) -> list[str]:
    tol = r["tolerance"]
    out = [
        "## Kernel agreement (float32; max |kernel - torch| / max |torch|)",
        "",
        f"Tolerances: output {tol['output']}, state {tol['state']}, gradients {tol['grad']}.",
        "",
        "| mixer | kernel path | output | state | gradients | within |",
        "|---|---|---:|---:|---:|---|",
    ]
    for name in ("mamba", "mamba2"):
        m = r.get(name) or {}
        if "error" in m:
            out.append(f"| {name} | error: {m['error']} | | | | |")
            continue
        e = m["relative_error"]
        path = m["kernel_path"] + (
            "" if m.get("kernel_engaged") else " (no kernel: torch vs torch)"
        )
        out.append(
            f"| {name} | {path} | {fmt(e['output'])} | {fmt(e['state'])} | "
            f"{fmt(e['grad'])} | {m['within_tolerance']} |"
        )
    pytest = r.get("pytest") or {}
    out += [
        "",
        f"pytest of the kernel test: exit code {pytest.get('exit_code')}",
        "",
        "```",
        *pytest.get("tail", []),
        "```",
    ]
    return out


def quick(r: dict[str, Any]) -> list[str]:
    out = [
        f"## The {r['suite']} suite: {of(r, r['runs'], 'runs')} in {r['wall_s']} s, "
        f"{r['statuses']}",
        "",
        f"Test accuracy at the training length, mean over seeds (CPU: {r['cpu_dir']}).",
        "",
        "| arch/task | GPU | CPU |",
        "|---|---:|---:|",
    ]
    out += [f"| {k} | {fmt(v['gpu'])} | {fmt(v['cpu'])} |" for k, v in r["accuracy"].items()]
    return out


def profile(r: dict[str, Any]) -> list[str]:
    out = [
        "## Profile",
        "",
        "| arch | mode | length | status | step s / decode s per token | "
        "CUDA peak bytes / state bytes |",
        "|---|---|---:|---|---:|---:|",
    ]
    for p in sorted(r["points"], key=lambda p: (p["arch"], p["mode"], p["length"] or 0)):
        a = p.get("step_s", p.get("decode_s_per_token"))
        b = p.get("cuda_peak_bytes", p.get("state_bytes"))
        status = p["status"] + (f" ({p['reason']})" if p.get("reason") else "")
        out.append(
            f"| {p['arch']} | {p['mode']} | {p['length']} | {status} | {fmt(a)} | {fmt(b)} |"
        )
    out += [
        "",
        "Fitted exponents (slope [95% interval]; `long`: the longer half of the lengths):",
        "",
        "| arch | of | quantity | all | long |",
        "|---|---|---|---|---|",
    ]
    for f in r["fits"]:
        quantities = sorted({k.split(":")[0] for k in f if ":" in k})
        for q in quantities:
            out.append(
                f"| {f['arch']} | {f['of_mode']} | {q} | {slope(f.get(q + ':all'))} | "
                f"{slope(f.get(q + ':long'))} |"
            )
    return out


def mfu(r: dict[str, Any]) -> list[str]:
    m = r["model"]
    out = [
        f"## MFU: d_model {m['d_model']}, {m['n_layers']} layers, {m['batch']} x "
        f"{m['seq_len']} tokens",
        "",
        f"Measured matmul peak {fmt(r['matmul_peak_flops'])} FLOP/s; datasheet "
        f"{fmt(r['datasheet_peak_flops'])}.",
        "",
        "| arch | tokens/s | achieved FLOP/s | MFU (datasheet) | MFU (measured peak) |",
        "|---|---:|---:|---:|---:|",
    ]
    for arch, a in r["archs"].items():
        if a["status"] != "ok":
            out.append(f"| {arch} | {a['status']}: {a['reason']} | | | |")
            continue
        out.append(
            f"| {arch} | {fmt(a['tokens_per_s'])} | {fmt(a['achieved_flops'])} | "
            f"{fmt(a['mfu_datasheet'])} | {fmt(a['mfu_measured_peak'])} |"
        )
    return out


RENDER = {
    "conformance": conformance,
    "agreement": agreement,
    "bf16": bf16,
    "mfu": mfu,
    "profile": profile,
    "quick": quick,
}


def fmt(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.3g}"
    return str(x)


def slope(fit: list[float | None] | None) -> str:
    if not fit:
        return "–"
    s, lo, hi = fit
    return f"{s:.2f}" + (f" [{lo:.2f}, {hi:.2f}]" if lo is not None and hi is not None else "")


if __name__ == "__main__":
    folder = Path(sys.argv[1]) / "gpu_check"
    print(markdown(json.loads((folder / "summary.json").read_text())), end="")
