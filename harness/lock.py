"""One lock and one temporary-file policy for every writer of a result folder.

`seqbench run`, `seqbench profile` and `seqbench report` all write into a folder under
`folder_lock(DIR)`: an exclusive `flock` on the folder itself (opened read-only, so taking
the lock needs no write access: a rerun with nothing to do works on a read-only folder). A
second writer stops at once with one line instead of interleaving its files with the first.

Temporary files (`atomic.atomic_write_text`, the report's staging folder) carry their
writer's host and pid in their name: `.NAME~HOST~PID~RANDOM.tmp`. A writer removes a
temporary file only when it can prove it abandoned: written on this host by a pid that no
longer runs. A file from another host, from a live process, or with a name it cannot parse
is left alone — deleting another writer's file in flight is worse than leaving litter.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from seqbench.errors import UserError

TEMP_SUFFIX = ".tmp"
_TAG = re.compile(r"~(?P<host>[A-Za-z0-9._-]+)~(?P<pid>[0-9]+)~[^~/]*\.tmp$")


def host() -> str:
    """This machine's name, reduced to characters that are safe in a file name."""
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "localhost"


def temp_prefix(name: str) -> str:
    """The prefix of a temporary file or folder for `name` written by this process."""
    return f".{name}~{host()}~{os.getpid()}~"


def temp_owner(path: str | os.PathLike) -> tuple[str, int] | None:
    """(host, pid) of the writer of a temporary file, or None when the name has no tag."""
    match = _TAG.search(Path(path).name)
    return (match["host"], int(match["pid"])) if match else None


def pid_alive(pid: int) -> bool:
    """True when a process with this pid runs on this host (or may: a permission error)."""
    if pid <= 0:
        return True  # never "prove" pid 0 or negative abandoned
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def is_abandoned(path: str | os.PathLike) -> bool:
    """Provably abandoned: tagged with this host and a pid that no longer runs."""
    owner = temp_owner(path)
    return owner is not None and owner[0] == host() and not pid_alive(owner[1])


def clear_abandoned(folder: str | os.PathLike) -> list[Path]:
    """Remove the abandoned temporary files and folders directly in `folder` (best effort: a
    read-only folder keeps them, which harms nobody); returns what was removed."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for path in folder.glob(f".*{TEMP_SUFFIX}"):
        if not is_abandoned(path):
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


def check_writable(folder: str | os.PathLike) -> None:
    """Fail now, naming the folder and the cause (read-only, full, denied), rather than after
    an hour of training: create and remove one temporary file there."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=temp_prefix("probe"), suffix=TEMP_SUFFIX, dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        if exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from None


@contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold the writer lock of `folder` (created when missing) and clear abandoned temporary
    files in it and in its runs/ folder. One-line UserError when another writer holds it."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise UserError(f"{folder}: exists and is not a folder")
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UserError(
                    f"another seqbench writer (run, profile or report) is writing to "
                    f"{str(folder)!r}; wait for it to finish or use another folder"
                ) from None
            raise
        for sub in (path, path / "runs"):
            clear_abandoned(sub)
        yield path
    finally:
        os.close(fd)  # closing the last descriptor releases the lock
