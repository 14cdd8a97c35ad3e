"""Run the `seqbench` CLI in-process or as a real subprocess, for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from seqbench.harness.cli import main; main()"]


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 300, env: dict[str, str] | None = None
) -> Result:
    """`seqbench ARGS` as a fresh process, the way a user runs it (exit code and streams);
    `env`: extra environment variables."""
    proc = subprocess.run(
        [*CLI, *args],
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(env),
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def spawn_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`seqbench ARGS` started in the background (to interrupt it, or to run beside a test);
    its streams are pipes, read with `communicate()`. Ctrl-C (SIGINT) reaches it even when
    the tests themselves run with SIGINT ignored, as a shell without job control starts
    anything sent to the background with `&`: Python installs its KeyboardInterrupt handler
    only where SIGINT is not ignored at start-up."""
    return subprocess.Popen(
        [*CLI, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(env),
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment, this checkout first on the path, plus `env`."""
    return {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}


def assert_one_line_error(result: Result, fragment: str) -> None:
    """User errors: exit code 2, one line on stderr, no traceback."""
    assert result.code == 2, (result.code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr
