"""Result records: one JSON file per run, written atomically, read back defensively.

Layout: DIR/runs/<run_id>.json. Every record is a JSON object with at least

    schema_version  int (RECORD_SCHEMA_VERSION)
    kind            "run" (train/eval) or "profile"
    run_id          hash of the canonical spec (also the file name)
    spec            the full spec that produced it (canonical JSON)
    definition      run records: what defines the run beyond its spec (resolved model config,
                    mixer families, task version and tags); part of the run_id
    status          "ok" | "failed" | "oom" | "diverged" | "skipped" (a profile point not run)
    reason          null or a one-line message
    metrics         kind-specific measurements (plain JSON)
    timings         seconds and rates
    environment     versions, device, CPU/GPU model, threads (see `environment()`)
    git_commit      the seqbench checkout's commit, or null
    created         ISO-8601 UTC time of writing

Why atomic: a sweep can be killed at any moment (SIGKILL, OOM killer); a record is written to
a temporary file in the same folder, fsync'ed and renamed, so a reader sees either no file or
a complete one.

Why a schema (`seqbench.harness.schema`): a record is a file anyone can edit or craft, and the
readers index deep into it. Every record is validated when written and when read; a file that
fails is skipped with a one-line reason (`scan_records`), never trusted.

Why strict JSON: records must be readable by any tool, forever, and JSON has no NaN or
infinity. A non-finite number (a diverged loss) is written as the string "NaN", "Infinity" or
"-Infinity" and read back as the float (docs/records.md). Never pickle.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import platform
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from seqbench.harness.atomic import atomic_write_text
from seqbench.harness.schema import NONFINITE, SCHEMA_VERSION, STATUSES, SchemaError, validate

RECORD_SCHEMA_VERSION = SCHEMA_VERSION
MAX_RECORD_BYTES = 64 * 2**20  # a record is kilobytes; a bigger file is not one of ours


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
    """Write strict JSON (non-finite numbers in their string form) so that `path` is either
    absent, the old file, or the complete new one."""
    text = json.dumps(encode_nonfinite(data), indent=1, sort_keys=True, allow_nan=False) + "\n"
    atomic_write_text(path, text)


_NONFINITE_TEXT = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def encode_nonfinite(data: Any) -> Any:
    """`data` with every NaN/±inf float replaced by "NaN"/"Infinity"/"-Infinity"."""
    if isinstance(data, float) and not math.isfinite(data):
        return _NONFINITE_TEXT[repr(data)]
    if isinstance(data, dict):
        return {key: encode_nonfinite(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [encode_nonfinite(value) for value in data]
    return data


def decode_nonfinite(data: Any) -> Any:
    """The inverse of `encode_nonfinite` (applied to `metrics` and `timings` only, where a
    string "NaN" can only be a number: spec strings and reasons stay as written)."""
    if isinstance(data, str) and data in NONFINITE:
        return NONFINITE[data]
    if isinstance(data, dict):
        return {key: decode_nonfinite(value) for key, value in data.items()}
    if isinstance(data, list):
        return [decode_nonfinite(value) for value in data]
    return data


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
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds"),
    }


def write_record(out_dir: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Validate and write `record`. A record that breaks its schema (a plugin reporting a
    metric of the wrong type, say) is written as a failed record saying why, so that a sweep
    goes on and the file is still valid; a spec that breaks it is a bug and raises."""
    try:
        validate(encode_nonfinite(record))
    except SchemaError as exc:
        record = {
            **record,
            "status": "failed",
            "reason": f"the run's record broke the record schema: {exc}",
            "metrics": {},
            "timings": {},
        }
        validate(encode_nonfinite(record))  # still invalid: the spec itself is broken
    path = record_path(out_dir, record["run_id"])
    atomic_write_json(path, record)
    return path


def check_record(path: str | os.PathLike) -> tuple[dict[str, Any] | None, str | None]:
    """(record, None) for a valid record at `path`, else (None, one-line reason)."""
    try:
        if os.path.getsize(path) > MAX_RECORD_BYTES:
            return None, f"larger than {MAX_RECORD_BYTES // 2**20} MiB"
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)  # bare NaN (records of seqbench < 0.2) still reads
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}"
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except ValueError as exc:
        return None, f"not JSON: {str(exc).splitlines()[0]}"
    except RecursionError:
        return None, "not JSON: nested too deeply"
    try:
        validate(data)
    except SchemaError as exc:
        return None, str(exc)
    if data["run_id"] != Path(path).stem:
        return None, f"run_id {data['run_id']!r} does not match the file name"
    for key in ("metrics", "timings"):
        if key in data:
            data[key] = decode_nonfinite(data[key])
    return data, None


def read_record(path: str | os.PathLike) -> dict[str, Any] | None:
    """The record at `path`, or None when it is missing, partial, corrupt or not a record."""
    return check_record(path)[0]


@dataclass
class Scan:
    """What reading a folder found: the valid records and (path, reason) per skipped file."""

    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def scan_records(out_dir: str | os.PathLike, kind: str | None = None) -> Scan:
    """Every record under DIR/runs/*.json, valid ones kept, the others listed with a reason
    (temporary files of writers in flight are not records and are not listed)."""
    scan = Scan()
    folder = runs_dir(out_dir)
    if not folder.is_dir():
        return scan
    for path in sorted(folder.glob("*.json")):
        record, reason = check_record(path)
        if record is None:
            scan.skipped.append((path, reason or "invalid"))
        elif kind is None or record["kind"] == kind:
            scan.records.append(record)
    return scan


def iter_records(out_dir: str | os.PathLike, kind: str | None = None) -> Iterator[dict[str, Any]]:
    """Every valid record under DIR/runs (temporary files and broken files skipped)."""
    yield from scan_records(out_dir, kind).records


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
        "mkl_cbwr": os.environ.get("MKL_CBWR"),  # seqbench.reproducible
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
