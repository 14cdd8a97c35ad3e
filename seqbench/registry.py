"""Named registries with decorator registration, lazy entries, plugins and "did you mean".

Why lazy entries: heavy optional code (mamba-ssm kernels) must only import when chosen, so an
entry can be the string "module:attr" and is resolved on first use. Plugins from other
packages arrive through entry-point groups (`seqbench.architectures`, `seqbench.tasks`): each
entry point names a module whose import registers its classes with the decorators below.
A `pkg.mod:Class` name is resolved by import, so a user's class runs without registration.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Generic, TypeVar

from seqbench.errors import UserError

T = TypeVar("T")


@dataclass
class Entry(Generic[T]):
    """One registered name: the object itself, or a lazy "module:attr" target, plus metadata."""

    name: str
    obj: T | None = None
    target: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def import_dotted(path: str) -> Any:
    """Import "pkg.mod:Attr" (or "pkg.mod.Attr"); one-line UserError when it cannot."""
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise UserError(f"{path!r} is not of the form 'pkg.module:Name'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"cannot import module {module_name!r} for {path!r}: {exc}") from None
    except Exception as exc:  # a plugin module that fails while importing (syntax, its own code)
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise UserError(
            f"module {module_name!r} for {path!r} failed to import: "
            f"{type(exc).__name__}: {first}".rstrip(": ")
        ) from None
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise UserError(f"module {module_name!r} has no attribute {attr!r}") from None
    return obj


def did_you_mean(name: str, choices: list[str]) -> str:
    """ "; did you mean 'x'?" for the closest choices, or "" when nothing is close."""
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def is_dotted_path(name: str) -> bool:
    """A name that points at code rather than at a registry entry."""
    return ":" in name


class Registry(Generic[T]):
    """Name → object, for one kind of thing (mixers, channel mixers, presets, tasks)."""

    def __init__(
        self,
        kind: str,
        entry_point_group: str | None = None,
        accepts: Callable[[Any], bool] | None = None,
    ) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self.accepts = accepts  # what a "pkg.mod:Attr" must be (None: anything)
        self._entries: dict[str, Entry[T]] = {}
        self._plugins_loaded = False

    # -- registration -------------------------------------------------------------------------
    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator: `@MIXERS.register("attention", family="attention")`."""

        def decorator(obj: T) -> T:
            self.add(name, obj, **meta)
            return obj

        return decorator

    def add(self, name: str, obj: T, **meta: Any) -> None:
        self._check_new(name)
        self._entries[name] = Entry(name=name, obj=obj, meta=meta)

    def add_lazy(self, name: str, target: str, **meta: Any) -> None:
        """Register "module:attr", imported only when the name is first used."""
        self._check_new(name)
        self._entries[name] = Entry(name=name, target=target, meta=meta)

    def _check_new(self, name: str) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")

    # -- lookup -------------------------------------------------------------------------------
    def get(self, name: str) -> T:
        """The object for a registered name or a "pkg.mod:Attr" path."""
        if is_dotted_path(name):
            obj = import_dotted(name)
            if self.accepts is not None and not self.accepts(obj):
                raise UserError(f"{name!r} is not a {self.kind} class")
            return obj
        entry = self._entry(name)
        if entry.obj is None:
            assert entry.target is not None
            entry.obj = import_dotted(entry.target)
        return entry.obj

    def meta(self, name: str) -> dict[str, Any]:
        return dict(self._entry(name).meta)

    def _entry(self, name: str) -> Entry[T]:
        name = self.canonical(name)
        if name not in self._entries:
            raise UserError(self.unknown_message(name))
        return self._entries[name]

    def canonical(self, name: str) -> str:
        """The registered spelling of `name`: itself when registered, else the one entry equal
        to it ignoring case (`MQAR` -> `mqar`); unchanged when none or several match (the
        lookup then fails with a "did you mean")."""
        if is_dotted_path(name) or name in self._entries:
            return name
        self.load_plugins()
        if name in self._entries:
            return name
        folded = [known for known in self._entries if known.casefold() == name.casefold()]
        return folded[0] if len(folded) == 1 else name

    def unknown_message(self, name: str) -> str:
        known = self.names()
        folded = [k for k in known if k.casefold() == name.casefold()]
        hint = did_you_mean(name, folded or known)
        return f"unknown {self.kind} {name!r}{hint} (known: {', '.join(known)})"

    def names(self) -> list[str]:
        self.load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:  # exact names only (see `canonical`)
        self.load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    # -- plugins ------------------------------------------------------------------------------
    def load_plugins(self) -> None:
        """Import every module that other packages declare under our entry-point group."""
        if self._plugins_loaded or self.entry_point_group is None:
            return
        self._plugins_loaded = True
        for ep in metadata.entry_points(group=self.entry_point_group):
            try:
                ep.load()
            except Exception as exc:  # a broken plugin must not hide the others
                print(f"seqbench: plugin {ep.name!r} failed to load: {exc}", file=sys.stderr)
