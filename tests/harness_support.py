"""Tiny tasks and helpers for the harness tests, importable as `tests.harness_support:Name`.

They are given to the harness by dotted path (the way a user's plugin task is), so worker
processes of the local launcher import them too.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

import torch

from seqbench.errors import UserError
from seqbench.tasks import IGNORE_INDEX, Batch, Task


@dataclass
class EchoTask(Task):
    """Predict the current token (targets = inputs at every `every`-th position).

    Learnable by embedding + head alone in a few dozen steps: exercises early stopping.
    """

    name = "echo"
    vocab_size: int = 8
    seq_len: int = 8
    every: int = 1

    def validate(self) -> None:
        super().validate()
        if self.every < 1 or self.every > self.seq_len:
            raise UserError(f"every must be in 1..seq_len={self.seq_len}, got {self.every}")

    def generate(self, n: int, generator: torch.Generator) -> Batch:
        inputs = torch.randint(0, self.vocab_size, (n, self.seq_len), generator=generator)
        targets = torch.full_like(inputs, IGNORE_INDEX)
        targets[:, :: self.every] = inputs[:, :: self.every]
        return Batch(inputs, targets)


@dataclass
class FirstTokenTask(Task):
    """Recall the first token at the last position: needs token mixing, so not learnt in a
    handful of steps (runs go their full budget)."""

    name = "first_token"
    vocab_size: int = 16
    seq_len: int = 16

    def generate(self, n: int, generator: torch.Generator) -> Batch:
        inputs = torch.randint(0, self.vocab_size, (n, self.seq_len), generator=generator)
        targets = torch.full_like(inputs, IGNORE_INDEX)
        targets[:, -1] = inputs[:, 0]
        return Batch(inputs, targets)


@dataclass
class CrashTask(EchoTask):
    """Kills its own process while generating training data when `crash` is set:
    "exit" calls os._exit(3), "kill" sends SIGKILL, "raise" raises RuntimeError."""

    name = "crash"
    crash: str = "none"

    def generate(self, n: int, generator: torch.Generator) -> Batch:
        if self.crash == "exit":
            os._exit(3)
        if self.crash == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.crash == "raise":
            raise RuntimeError("boom from the task")
        return super().generate(n, generator)


@dataclass
class SlowTask(FirstTokenTask):
    """FirstTokenTask whose generation sleeps, so a sweep can be killed mid-run reliably."""

    name = "slow"
    sleep_s: float = 0.02

    def generate(self, n: int, generator: torch.Generator) -> Batch:
        import time

        time.sleep(self.sleep_s)
        return super().generate(n, generator)


def tiny_spec(**fields: object) -> dict:
    """A spec (as a dict) small enough to train in well under a second on a CPU."""
    base = {
        "arch": "mha",
        "task": FIRST,
        "seq_len": 8,
        "d_model": 16,
        "n_layers": 1,
        "steps": 10,
        "warmup": 2,
        "batch_size": 8,
        "eval_every": 5,
        "val_examples": 16,
        "test_examples": 16,
        "device": "cpu",
        "overrides": {"attention.n_heads": 2, "attention.n_kv_heads": 2},
    }
    return {**base, **fields}


ECHO = "tests.harness_support:EchoTask"
FIRST = "tests.harness_support:FirstTokenTask"
CRASH = "tests.harness_support:CrashTask"
SLOW = "tests.harness_support:SlowTask"
