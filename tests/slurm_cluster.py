"""Whether a Slurm cluster answers here, for the tests marked `slurm` (tests/conftest.py).

CI starts one (.ci/slurm.sh, through .ci/run) and sets SEQBENCH_REQUIRE_SLURM=1, so that a
test that would skip there fails instead: a cluster that did not come up must not pass as
"skipped". Anywhere else the tests skip with the reason and how to get a cluster.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache

START_HINT = 'eval "$(.ci/slurm.sh start)" as root starts a one-node cluster'


@lru_cache(maxsize=1)
def unreachable() -> str | None:
    """None when `sinfo` answers (with the environment's SLURM_CONF), else why not."""
    if shutil.which("sinfo") is None:
        return f"no Slurm here: sinfo is not on PATH ({START_HINT})"
    try:
        proc = subprocess.run(
            ["sinfo", "-h", "-o", "%P %a"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"no Slurm cluster answers: sinfo: {exc} ({START_HINT})"
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or ["no output"]
        return f"no Slurm cluster answers: {lines[-1]} ({START_HINT})"
    if " up" not in proc.stdout:
        return f"no Slurm partition is up: {proc.stdout.strip()!r}"
    return None


def required() -> bool:
    return os.environ.get("SEQBENCH_REQUIRE_SLURM", "") not in ("", "0")
