"""Three named ways to measure the peak memory of a training step.

Each number in a profile record names its method, because they measure different things:

- ``cuda_peak_allocated`` (GPU only): ``torch.cuda.max_memory_allocated`` during the step minus
  the bytes allocated when its peak counter was reset. Exact for the caching allocator; excludes
  cached-but-free blocks and the CUDA context.
- ``cpu_rss_delta`` (CPU): peak resident set size of a *fresh* worker process during the step
  minus its resident size just before it. The peak counter (VmHWM) is reset through
  /proc/self/clear_refs, so the import and set-up peaks do not mask the step's. It sees what the
  operating system sees: activations, gradients' transients, kernel workspaces and allocator
  slack, so it is an upper bound on the tensor-level number below.
- ``saved_activations`` (any device, meta included): bytes of the distinct storages autograd
  saves for backward, seen through ``torch.autograd.graph.saved_tensors_hooks``; parameters
  (also saved by linear layers) are left out, and views of one storage count once. It is the
  textbook "activation memory", with no allocator or workspace in it.
"""

from __future__ import annotations

import contextlib
import resource
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn


# -- saved activations ---------------------------------------------------------------------------
def storage_key(t: Tensor) -> int:
    """Identity of a tensor's storage, valid on every device including meta.

    Why not data_ptr(): it is 0 for every meta tensor. `_cdata` is the address of the
    StorageImpl, which views share and which stays unique while the storage is alive.
    """
    return t.untyped_storage()._cdata


@dataclass
class SavedTensorBytes:
    """Counts distinct non-parameter storages saved for backward while active and still held
    by the graph when tracking ends.

    Why "still held": a branch of the forward whose output is dropped (a scan's final state
    during training) frees its nodes, and with them the tensors they saved, before backward
    runs; those bytes are not activation memory. Worse, the freed storage's address can be
    reused by a later one, which a key seen before would then hide. So each saved tensor is
    followed by a weak reference (holding no reference to any tensor, which would change the
    very memory being measured), a storage counts when one of its saved tensors is alive at
    the end, and a key whose tensors all died starts afresh.
    """

    exclude: set[int] = field(default_factory=set)
    sizes: dict[int, int] = field(default_factory=dict)  # storage -> bytes, set by track()
    n_saved: int = 0
    _held: dict[int, tuple[int, list[weakref.ref]]] = field(default_factory=dict)

    @classmethod
    def for_model(cls, model: nn.Module) -> SavedTensorBytes:
        return cls(exclude={storage_key(p) for p in model.parameters()})

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes.values())

    def _pack(self, t: Tensor) -> Tensor:
        self.n_saved += 1
        key = storage_key(t)
        if key not in self.exclude:
            _, refs = self._held.get(key, (0, []))
            alive = [ref for ref in refs if ref() is not None]  # none: another storage here
            self._held[key] = (t.untyped_storage().nbytes(), [*alive, weakref.ref(t)])
        return t

    @contextlib.contextmanager
    def track(self) -> Iterator[SavedTensorBytes]:
        with torch.autograd.graph.saved_tensors_hooks(self._pack, _unpack):
            yield self
        self.sizes = {
            key: nbytes
            for key, (nbytes, refs) in self._held.items()
            if any(ref() is not None for ref in refs)
        }


def _unpack(t: Tensor) -> Tensor:
    return t


# -- resident set size ---------------------------------------------------------------------------
def read_status_kib(field_name: str) -> int | None:
    """A field of /proc/self/status in KiB (VmRSS, VmHWM, VmSize), None off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


@dataclass
class RssWindow:
    """Peak RSS growth over a block of code, in bytes (None when the OS cannot tell)."""

    baseline_kib: int | None = None
    peak_kib: int | None = None

    @property
    def delta_bytes(self) -> int | None:
        if self.baseline_kib is None or self.peak_kib is None:
            return None
        return max(0, self.peak_kib - self.baseline_kib) * 1024

    @contextlib.contextmanager
    def measure(self) -> Iterator[RssWindow]:
        ok = reset_peak_rss()
        self.baseline_kib = read_status_kib("VmRSS") if ok else None
        yield self
        self.peak_kib = read_status_kib("VmHWM") if ok else None


# -- CUDA ----------------------------------------------------------------------------------------
@dataclass
class CudaPeakWindow:
    device: torch.device
    baseline: int = 0
    peak: int = 0

    @property
    def delta_bytes(self) -> int:
        return self.peak - self.baseline

    @contextlib.contextmanager
    def measure(self) -> Iterator[CudaPeakWindow]:
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        self.baseline = torch.cuda.memory_allocated(self.device)
        yield self
        torch.cuda.synchronize(self.device)
        self.peak = torch.cuda.max_memory_allocated(self.device)


# -- out-of-memory -------------------------------------------------------------------------------
def limit_address_space(extra_bytes: int) -> bool:
    """Cap this process's address space at its current size plus `extra_bytes`.

    Why: an over-long point on a shared CPU machine should fail with an allocation error in
    its own worker (recorded as "oom"), not wake the kernel's OOM killer, which may pick some
    other process. Only the soft limit moves, so a later job in the same worker can raise it.
    """
    size_kib = read_status_kib("VmSize")
    if size_kib is None:
        return False
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = size_kib * 1024 + extra_bytes
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    return True


def lift_address_space_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (None off Linux)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
