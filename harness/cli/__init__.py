"""The `seqbench` command line. Each command lives in its own module of this package.

Exit codes (the README lists them):
  0  success
  1  some runs or points were recorded failed, or check-arch found a failing check
  2  bad input: unknown names, bad flags, bad files, a folder without valid records
  3  a filesystem fault: read-only file system, disk full, permission denied (path and cause)
130  interrupted (Ctrl-C)
Every error is one line on stderr, never a traceback; that holds for click's own usage
errors too.
"""

from __future__ import annotations

import errno
import os
import sys

import click

from seqbench import __version__
from seqbench.errors import UserError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="seqbench")
def cli() -> None:
    """Compare sequence architectures on synthetic tasks: quality, memory and scaling."""


def _register_commands() -> None:
    # Imported here so this package stays importable while a command module is being loaded.
    from seqbench.harness.cli import (
        check_arch_cmd,
        compare_cmd,
        list_cmd,
        profile_cmd,
        report_cmd,
        run_cmd,
        sample_cmd,
    )

    commands = (list_cmd, check_arch_cmd, sample_cmd, run_cmd, profile_cmd, report_cmd, compare_cmd)
    for module in commands:
        cli.add_command(module.command)


def find_plugins_in_working_folder() -> None:
    """Let `--arch mymod:MyMixer` find `mymod.py` in the folder the command runs in.

    Done once, here, and appended last: installed packages always win, so a `pandas.py` or
    `submitit.py` lying in the working folder never shadows the real one. Worker processes
    (local launcher) inherit the search path."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)


EXIT_USER = 2
EXIT_FILESYSTEM = 3
CAUSES = {
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device (disk full)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied (operation not permitted)",
}


def filesystem_message(exc: OSError) -> str:
    """One line naming the path and the cause of a filesystem fault."""
    cause = CAUSES.get(exc.errno or 0) or exc.strerror or type(exc).__name__
    path = exc.filename2 or exc.filename
    return f"{path}: {cause}" if path else cause


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the group, turning user errors into one line + exit 2."""
    find_plugins_in_working_folder()
    _register_commands()
    try:
        code = cli.main(args=argv, prog_name="seqbench", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"error: {one_line(exc.format_message())}", err=True)
        sys.exit(EXIT_USER)
    except UserError as exc:
        click.echo(f"error: {one_line(str(exc))}", err=True)
        sys.exit(EXIT_USER)
    except OSError as exc:
        click.echo(f"error: {filesystem_message(exc)}", err=True)
        sys.exit(EXIT_FILESYSTEM)
    sys.exit(code if isinstance(code, int) else 0)


def one_line(text: str) -> str:
    """Messages that quote user input (a file name with a newline) stay one line."""
    return " ".join(text.split())
