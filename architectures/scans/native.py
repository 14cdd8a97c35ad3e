"""The fused C kernels: built at first use, loaded through ctypes.

`native_kernels.c` holds the scans (Mamba-1, Mamba-2, LRU, Mamba's conv + SiLU),
`attention_kernels.c` causal attention for small heads (`attention_native.py`),
`norm_kernels.c` RMSNorm (`norm_native.py`), `gate_kernels.c` Mamba-1's output tail
(`gate_native.py`).

Why C through ctypes and not a PyTorch C++ extension: the kernels only need float pointers,
so the source includes no PyTorch header and compiles in about a second with any C compiler
(a torch extension takes a minute and needs ninja and matching headers). Nothing is installed:
the shared library is built once per source, compiler flags and CPU into a cache folder and
reused by every later process.

Where there is no compiler (a bare Windows machine, a slim container), the build fails
quietly, `library()` returns None and every mixer runs its PyTorch scan instead: the same
math, slower (docs/performance.md). Set SEQBENCH_NATIVE=0 to force that fallback;
SEQBENCH_KERNEL_CACHE picks the cache folder (default ~/.cache/seqbench/kernels); CC picks
the compiler (default: cc, gcc or clang, the first found).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import itertools
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

HERE = Path(__file__).parent
# Compiled together into one library; the header is part of the cache key too.
SOURCES = tuple(
    HERE / f
    for f in ("native_kernels.c", "attention_kernels.c", "norm_kernels.c", "gate_kernels.c")
)
HEADERS = (HERE / "native_vec.h",)
BLOCK = 16  # channels per block in the kernels (W in native_kernels.c)
PATH_NATIVE = "c-native"  # the kernel_path a mixer records when these kernels ran
ENV_SWITCH = "SEQBENCH_NATIVE"
ENV_CACHE = "SEQBENCH_KERNEL_CACHE"
# Tried in order: the host's own vector width first, then a portable build.
FLAG_SETS = (["-O3", "-march=native", "-std=c11"], ["-O3", "-std=c11"])
INTS_2 = [ctypes.c_int] * 2
ATTN_SIZES = [ctypes.c_int] * 4 + [ctypes.c_float] + [ctypes.c_int] * 3
SIGNATURES = {
    "selective_fwd": [ctypes.c_void_p] * 7 + [ctypes.c_int] * 5,
    "selective_bwd": [ctypes.c_void_p] * 12 + [ctypes.c_int] * 5,
    "ssd_fwd": [ctypes.c_void_p] * 8 + [ctypes.c_int] * 7,
    "ssd_bwd": [ctypes.c_void_p] * 15 + [ctypes.c_int] * 7,
    "conv_silu_fwd": [ctypes.c_void_p] * 4 + [ctypes.c_int] * 4,
    "conv_silu_bwd": [ctypes.c_void_p] * 8 + [ctypes.c_int] * 4,
    "lru_fwd": [ctypes.c_void_p] * 4 + [ctypes.c_int] * 3,
    "lru_bwd": [ctypes.c_void_p] * 6 + [ctypes.c_int] * 3,
    # attention: pointers, then H, Hkv, L, Lp, the float scale, window, u0, u1
    "attn_fwd": [ctypes.c_void_p] * 5 + ATTN_SIZES,
    "attn_bwd_dq": [ctypes.c_void_p] * 7 + ATTN_SIZES,
    "attn_bwd_dkv": [ctypes.c_void_p] * 8 + ATTN_SIZES,
    # RMSNorm: pointers, then rows, D, (eps,) u0, u1
    "rmsnorm_fwd": [ctypes.c_void_p] * 5 + [ctypes.c_int] * 2 + [ctypes.c_float] + INTS_2,
    "rmsnorm_bwd": [ctypes.c_void_p] * 6 + [ctypes.c_int] * 4,
    "gated_rmsnorm_fwd": [ctypes.c_void_p] * 5 + [ctypes.c_int] * 2 + [ctypes.c_float] + INTS_2,
    "gated_rmsnorm_bwd": [ctypes.c_void_p] * 8 + [ctypes.c_int] * 4,
    # Mamba-1's tail: pointers, then rows, D, the row strides of y, u, z, u0, u1
    "skip_gate_fwd": [ctypes.c_void_p] * 5 + [ctypes.c_int] * 7,
    "skip_gate_bwd": [ctypes.c_void_p] * 9 + [ctypes.c_int] * 7,
}


@dataclass
class BuildInfo:
    """What the last `library()` call found: the path, the seconds the build took, or why not."""

    path: Path | None = None
    build_s: float | None = None  # None when it was loaded from the cache
    reason: str | None = None  # why there is no library (None when there is one)


INFO = BuildInfo()


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


def _compiler() -> str | None:
    for name in [os.environ.get("CC"), "cc", "gcc", "clang"]:
        if name and shutil.which(name):
            return name
    return None


def _cpu_fingerprint() -> str:
    """Part of the cache key: a -march=native build must not load on a different CPU."""
    text = f"{platform.machine()} {platform.processor()}"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith(("flags", "model name", "Features", "CPU part")):
                text += line
    return text


def _cache_dir() -> Path:
    base = os.environ.get(ENV_CACHE)
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "seqbench" / "kernels"


def _suffix() -> str:
    return ".dll" if sys.platform == "win32" else ".so"


def _build(compiler: str, target: Path) -> str | None:
    """Compile SOURCES into target (atomically); None on success, else the reason."""
    target.parent.mkdir(parents=True, exist_ok=True)
    last = "no flag set worked"
    for flags in FLAG_SETS:
        fd, tmp = tempfile.mkstemp(suffix=_suffix(), dir=target.parent)
        os.close(fd)
        sources = [str(path) for path in SOURCES]
        cmd = [compiler, *flags, "-shared", "-fPIC", "-I", str(HERE), "-o", tmp, *sources, "-lm"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as err:
            Path(tmp).unlink(missing_ok=True)
            return f"{compiler} could not run: {err}"
        if done.returncode == 0:
            os.replace(tmp, target)  # atomic: concurrent builders never see half a file
            return None
        Path(tmp).unlink(missing_ok=True)
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
    return f"{compiler} failed: {last}"


@functools.cache
def library() -> ctypes.CDLL | None:
    """The loaded kernels, building them first if needed; None when they cannot be had."""
    if not enabled():
        INFO.reason = f"disabled by {ENV_SWITCH}=0"
        return None
    compiler = _compiler()
    if compiler is None:
        INFO.reason = "no C compiler found (set CC)"
        return None
    key = hashlib.sha256(
        b"".join(path.read_bytes() for path in SOURCES + HEADERS)
        + repr((FLAG_SETS, compiler, _cpu_fingerprint())).encode()
    ).hexdigest()[:16]
    target = _cache_dir() / f"scans-{key}{_suffix()}"
    try:
        if not target.is_file():
            start = time.perf_counter()
            reason = _build(compiler, target)
            if reason is not None:
                INFO.reason = reason
                return None
            INFO.build_s = time.perf_counter() - start
        lib = ctypes.CDLL(str(target))
    except OSError as err:
        INFO.reason = f"could not build or load {target}: {err}"
        return None
    for name, argtypes in SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = argtypes, None
    INFO.path = target
    return lib


def available() -> bool:
    return library() is not None


def usable(*tensors: Tensor) -> bool:
    """True when the kernels can take these tensors: float32 (or complex64) on the CPU."""
    return all(t.device.type == "cpu" for t in tensors) and available()


def pad_last(t: Tensor, block: int) -> Tensor:
    """t made contiguous, its last dimension zero-padded up to a multiple of `block`."""
    extra = -t.shape[-1] % block
    return F.pad(t, (0, extra)).contiguous() if extra else t.contiguous()


def ptr(t: Tensor) -> int:
    """Address of a contiguous tensor's first element, for ctypes."""
    assert t.is_contiguous(), "native kernels need contiguous tensors"
    return t.data_ptr()


ROW_UNIT = 64  # rows per unit of work of the row kernels (ROW_UNIT in native_vec.h)


def row_units(rows: int) -> int:
    """How many ROW_UNIT-row units cover `rows`: the row kernels' (norm, gate) units of work,
    and the rows of their per-unit weight-gradient parts."""
    return -(-rows // ROW_UNIT)


@functools.cache
def _pool(workers: int, pid: int) -> ThreadPoolExecutor:
    """One pool per size and process: a forked child must not reuse its parent's, whose
    threads it does not have (work submitted there would wait forever)."""
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="seqbench-native")


def split_units(fn, units: int, *args) -> None:
    """Call the kernel fn(*args, u0, u1) over [0, units) in torch.get_num_threads() slices.

    The kernels taking a unit range write disjoint outputs per unit, and ctypes releases the
    GIL during the call, so the slices run in parallel; a multi-threaded run is then not
    slower than PyTorch's own parallel loops."""
    workers = min(torch.get_num_threads(), units)
    if workers <= 1:
        fn(*args, 0, units)
        return
    bounds = [units * w // workers for w in range(workers + 1)]
    pool = _pool(workers, os.getpid())
    calls = [pool.submit(fn, *args, a, b) for a, b in itertools.pairwise(bounds)]
    for call in calls:
        call.result()
