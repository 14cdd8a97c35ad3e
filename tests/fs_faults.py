"""Filesystem faults at the OS boundary, for tests: every write under one folder fails with
a chosen errno (EROFS read-only, ENOSPC disk full, EACCES permission denied).

Patching `os`/`io` functions instead of mounting a read-only or full filesystem keeps the
tests runnable without root; reads (and the lock, which opens the folder read-only) still work.
"""

from __future__ import annotations

import builtins
import io
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


@contextmanager
def failing_writes(
    root: Path, err: int, when: Callable[[str], bool] = lambda path: True
) -> Iterator[list[str]]:
    """Within the block, writing, creating, renaming or removing anything under `root` whose
    path satisfies `when` raises OSError(err). Yields the list of refused paths."""
    base = str(Path(root).resolve())
    refused: list[str] = []

    def hit(path: object) -> bool:
        if not isinstance(path, (str, bytes, os.PathLike)):
            return False  # a file descriptor
        full = os.path.abspath(os.fsdecode(path))
        return (full == base or full.startswith(base + os.sep)) and when(full)

    def fail(path: object) -> None:
        refused.append(os.fsdecode(path))  # type: ignore[arg-type]
        raise OSError(err, os.strerror(err), os.fsdecode(path))  # type: ignore[arg-type]

    real_os_open, real_io_open, real_mkdir = os.open, io.open, os.mkdir

    def fake_os_open(path, flags, *args, **kwargs):
        if flags & WRITE_FLAGS and hit(path):
            fail(path)
        return real_os_open(path, flags, *args, **kwargs)

    def fake_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and hit(file):
            fail(file)
        return real_io_open(file, mode, *args, **kwargs)

    def fake_mkdir(path, *args, **kwargs):
        if hit(path):
            if os.path.exists(path):  # the kernel reports EEXIST first
                raise FileExistsError(17, "File exists", os.fsdecode(path))
            fail(path)
        return real_mkdir(path, *args, **kwargs)

    def guarded(real: Callable) -> Callable:
        def fake(path, *args, **kwargs):
            others = [a for a in args[:1] if isinstance(a, (str, bytes, os.PathLike))]
            if hit(path) or any(hit(a) for a in others):
                fail(path)
            return real(path, *args, **kwargs)

        return fake

    patches = [
        mock.patch.object(os, "open", fake_os_open),
        mock.patch.object(io, "open", fake_open),
        mock.patch.object(builtins, "open", fake_open),
        mock.patch.object(os, "mkdir", fake_mkdir),
    ]
    for name in ("replace", "rename", "unlink", "remove", "rmdir", "chmod"):
        patches.append(mock.patch.object(os, name, guarded(getattr(os, name))))
    for p in patches:
        p.start()
    try:
        yield refused
    finally:
        for p in reversed(patches):
            p.stop()
