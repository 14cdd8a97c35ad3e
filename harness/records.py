"""Result records: one JSON file per run, written atomically, read back defensively.

Layout: DIR/runs/<run_id>.json. Every record is a JSON object with at least

    schema_version  int (RECORD_SCHEMA_VERSION)
    kind            "run" (train/eval) or "profile"
    run_id          hash of the canonical spec (also the file name)
    spec            the full spec that produced it (canonical JSON)
    definition      run records: what defines the run beyond its spec (resolved model config,
                    mixer families, task version and tags); part of the run_id
    status          "ok" | "failed" | "oom" | "diverged"
    reason          null or a one-line message
    metrics         kind-specific measurements (plain JSON)
    timings         seconds and rates
    environment     versions, device, CPU/GPU model, threads (see `environment()`)
    git_commit      the seqbench checkout's commit, or null
    created         ISO-8601 UTC time of writing

Why atomic: a sweep can be killed at any moment (SIGKILL, OOM killer); a record is written to
a temporary file in the same folder, fsync'ed and renamed, so a reader sees either no file or
a complete one. Readers still skip anything that does not parse or lacks the fields above.
Never pickle: records must be readable by any tool, forever.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from seqbench.harness.atomic import atomic_write_text

RECORD_SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "oom", "diverged")
REQUIRED_FIELDS = ("schema_version", "kind", "run_id", "spec", "status")


def canonical_json(data: Any) -> str:
    """One stable text for a spec: sorted keys, no spaces, so equal specs hash equally."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def spec_hash(kind: str, spec: dict[str, Any], length: int = 16) -> str:
    """run_id: the hash of the record kind and its canonical spec (file-name safe)."""
    digest = hashlib.sha256(f"{kind}\n{canonical_json(spec)}".encode()).hexdigest()
    return digest[:length]


def runs_dir(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / "runs"


def record_path(out_dir: str | os.PathLike, run_id: str) -> Path:
    return runs_dir(out_dir) / f"{run_id}.json"


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    """Write JSON so that `path` is either absent, the old file, or the complete new one."""
    text = json.dumps(data, indent=1, sort_keys=True, allow_nan=True) + "\n"
    atomic_write_text(path, text)


def make_record(
    *,
    kind: str,
    run_id: str,
    spec: dict[str, Any],
    status: str,
    reason: str | None = None,
    metrics: dict[str, Any] | None = None,
    timings: dict[str, Any] | None = None,
    device: str | None = None,
    definition: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A complete record with environment, commit and time filled in."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    return {
        "schema_version": RECORD_SCHEMA_VERSION,
        "kind": kind,
        "run_id": run_id,
        "spec": spec,
        "definition": definition,
        "status": status,
        "reason": reason,
        "metrics": metrics or {},
        "timings": timings or {},
        "environment": environment(device),
        "git_commit": git_commit(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_record(out_dir: str | os.PathLike, record: dict[str, Any]) -> Path:
    path = record_path(out_dir, record["run_id"])
    atomic_write_json(path, record)
    return path


def read_record(path: str | os.PathLike) -> dict[str, Any] | None:
    """The record at `path`, or None when it is missing, partial, corrupt or not a record."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or any(k not in data for k in REQUIRED_FIELDS):
        return None
    if data["status"] not in STATUSES:
        return None
    return data


def iter_records(out_dir: str | os.PathLike, kind: str | None = None) -> Iterator[dict[str, Any]]:
    """Every valid record under DIR/runs (temporary files and broken files skipped)."""
    folder = runs_dir(out_dir)
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.json")):
        record = read_record(path)
        if record is not None and (kind is None or record["kind"] == kind):
            yield record


def is_done(out_dir: str | os.PathLike, run_id: str) -> bool:
    """True when a valid record with status ok exists (reruns skip it)."""
    record = read_record(record_path(out_dir, run_id))
    return record is not None and record["status"] == "ok"


# -- environment -----------------------------------------------------------------------------------
def environment(device: str | None = None) -> dict[str, Any]:
    import numpy
    import torch

    from seqbench import __version__

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": platform.node(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "seqbench": __version__,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device or "cpu",
        "cuda": torch.version.cuda,
        "gpu": None,
        "mamba_ssm": _version_of("mamba_ssm"),
    }
    if device and device.startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return env


def _version_of(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist.replace("_", "-"))
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """Commit of the seqbench source tree in use (None when not a git checkout)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    commit = out.stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=here,
        capture_output=True,
        text=True,
        timeout=5,
    )
    return commit + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")
