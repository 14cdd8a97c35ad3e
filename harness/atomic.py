"""Atomic file writes: a reader sees no file, the old one, or the whole new one — never half.

Write to a temporary file in the same folder, fsync, rename over the target, fsync the folder
(so the rename itself survives a crash). Records and reports share this one writer.

Temporary names carry the writer's host and pid (`.NAME~HOST~PID~RANDOM.tmp`), so that a
writer can tell an abandoned temporary file from another live writer's
(`seqbench.harness.lock`).

Why the chmod: `tempfile.mkstemp` creates files readable by their owner only (0600), and the
rename keeps that mode, so results on a shared filesystem would be unreadable by colleagues.
Files get the mode a plain `open(path, "w")` would give: 0666 minus the umask.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from seqbench.harness.lock import TEMP_SUFFIX, temp_prefix


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it: set, then restore at once
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically; creates the parent folder; returns the path."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=temp_prefix(path.name), suffix=TEMP_SUFFIX, dir=path.parent
        )
    except OSError as exc:  # name the file being written, not its temporary twin
        raise naming(exc, path) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise naming(exc, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def naming(exc: OSError, path: str | os.PathLike) -> OSError:
    """`exc` about `path` (the file the user knows) instead of a temporary name; an error
    without an errno is returned as it is."""
    if exc.errno is None:
        return exc
    return type(exc)(exc.errno, exc.strerror, str(path))


def _fsync_dir(folder: Path) -> None:
    """Persist a rename in `folder` (best effort: some filesystems refuse to fsync folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
