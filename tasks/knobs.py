"""Task knobs from command-line words: `--num-pairs 8`, `--num_pairs=8`, `--alpha 0.1`.

Shared by every command that takes a task's knobs after its name (`seqbench sample`, and any
other that wants them): the options come from the task's dataclass fields, so a new knob is
on the command line the moment it is a field. Errors are one line with a did-you-mean.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any

from seqbench.errors import UserError
from seqbench.tasks.base import Task

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def option_name(knob: str) -> str:
    return "--" + knob.replace("_", "-")


def knob_fields(cls: type[Task]) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def parse_knob_args(task_name: str, cls: type[Task], words: list[str]) -> dict[str, Any]:
    """`["--num-pairs", "8", "--alpha=0.1"]` -> `{"num_pairs": 8, "alpha": 0.1}`, typed."""
    fields = knob_fields(cls)
    knobs: dict[str, Any] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("--") or len(word) == 2:
            raise UserError(f"unexpected argument {word!r} (knobs are given as --name value)")
        name, has_value, value = word[2:].partition("=")
        key = name.replace("-", "_")
        if key not in fields:
            raise UserError(unknown_knob_message(task_name, name, list(fields)))
        if not has_value:
            if i + 1 >= len(words):
                raise UserError(f"{option_name(key)} needs a value")
            i += 1
            value = words[i]
        knobs[key] = coerce(fields[key], value)
        i += 1
    return knobs


def unknown_knob_message(task_name: str, given: str, knobs: list[str]) -> str:
    """One line naming the closest options; matched on bare names so `--` counts for nothing."""
    bare = [k.replace("_", "-") for k in knobs]
    close = difflib.get_close_matches(given.replace("_", "-"), bare, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr('--' + c) for c in close)}?" if close else ""
    options = ", ".join("--" + b for b in bare)
    return f"task {task_name!r} has no knob {'--' + given!r}{hint} (knobs: {options})"


def coerce(field: dataclasses.Field, text: str) -> Any:
    """The string `text` as the knob's declared type (int, float, bool or str)."""
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
    option = option_name(field.name)
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            value = float(text)
    except ValueError:
        what = "an integer" if kind == "int" else "a number"
        raise UserError(f"{option} expects {what}, got {text!r}") from None
    if kind == "float":
        if not math.isfinite(value):
            raise UserError(f"{option} expects a finite number, got {text!r}")
        return value
    if kind == "bool":
        if text.lower() in TRUE:
            return True
        if text.lower() in FALSE:
            return False
        raise UserError(f"{option} expects true or false, got {text!r}")
    return text


def describe_knobs(cls: type[Task]) -> dict[str, Any]:
    """Knob name -> default, in declaration order."""
    return {f.name: f.default for f in dataclasses.fields(cls)}
