"""The language model every architecture shares: embedding -> N blocks -> norm -> head.

A block is `x = x + mixer(norm(x))`, then `x = x + ffn(norm(x))` (skipped for ffn "none").
Which sequence mixer a layer uses comes from `layer_pattern`, repeated over the layers, so
hybrids are one config line: ("mamba", "mamba", "attention").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from seqbench.architectures.contract import AuxLossProvider, State, prefill
from seqbench.architectures.norm import RMSNorm
from seqbench.architectures.registry import CHANNEL_MIXERS, MIXERS


@dataclass
class ModelConfig:
    """Everything needed to build a model; plain data so it serialises into run records."""

    vocab_size: int = 64
    d_model: int = 128
    n_layers: int = 2
    # Sequence mixer per layer, repeated cyclically: ("mamba", "mamba", "attention") = hybrid.
    layer_pattern: tuple[str, ...] = ("attention",)
    # Hyper-parameters per sequence-mixer name, e.g. {"attention": {"n_heads": 8}}.
    mixer_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    ffn: str = "swiglu"
    ffn_kwargs: dict[str, Any] = field(default_factory=dict)
    tie_embeddings: bool = False
    # Frozen random embeddings (and, tied, output head): the embedding table cannot be learnt
    # to hold a task's facts, so memorisation has to live in the layers' weights.
    freeze_embeddings: bool = False
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        self.layer_pattern = tuple(self.layer_pattern)

    def mixer_for_layer(self, layer_idx: int) -> str:
        return self.layer_pattern[layer_idx % len(self.layer_pattern)]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["layer_pattern"] = list(self.layer_pattern)
        return data

    def identity(self) -> dict[str, Any]:
        """What a run's identity hashes: every field, except later ones at their default (so
        a model that does not use them keeps the run_id it always had)."""
        data = self.to_dict()
        return {k: v for k, v in data.items() if k not in LATER_FIELDS or v != LATER_FIELDS[k]}


LATER_FIELDS = {"freeze_embeddings": False}


class Block(nn.Module):
    """Pre-norm residual block: sequence mixer then channel mixer."""

    def __init__(self, config: ModelConfig, layer_idx: int) -> None:
        super().__init__()
        name = config.mixer_for_layer(layer_idx)
        mixer_cls = MIXERS.get(name)
        self.mixer_name = name
        self.norm1 = RMSNorm(config.d_model, config.norm_eps)
        self.mixer = mixer_cls(
            config.d_model, layer_idx=layer_idx, **config.mixer_kwargs.get(name, {})
        )
        self.norm2: nn.Module | None = None
        self.ffn: nn.Module | None = None
        if config.ffn != "none":
            ffn_cls = CHANNEL_MIXERS.get(config.ffn)
            self.norm2 = RMSNorm(config.d_model, config.norm_eps)
            self.ffn = ffn_cls(config.d_model, layer_idx=layer_idx, **config.ffn_kwargs)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.mixer(self.norm1(x))  # (B, L, D)
        if self.ffn is not None:
            x = x + self.ffn(self.norm2(x))
        return x

    def step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        y_t, state = self.mixer.step(self.norm1(x_t), state)  # (B, D)
        x_t = x_t + y_t
        if self.ffn is not None:
            x_t = x_t + self.ffn(self.norm2(x_t)[:, None, :])[:, 0]
        return x_t, state

    def prefill(self, x: Tensor) -> tuple[Tensor, State]:
        y, state = prefill(self.mixer, self.norm1(x))  # (B, L, D)
        x = x + y
        if self.ffn is not None:
            x = x + self.ffn(self.norm2(x))
        return x, state


class LanguageModel(nn.Module):
    """Token model over a vocabulary; the head can run on scored positions only."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layers))
        self.norm = RMSNorm(config.d_model, config.norm_eps)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.head.weight = self.embedding.weight
        if config.freeze_embeddings:
            # unit-variance rows: fixed random codes the layers must map between (at 0.02 a
            # frozen tied head would give logits too small to train against)
            nn.init.normal_(self.embedding.weight, std=1.0)
            self.embedding.weight.requires_grad_(False)
        else:
            nn.init.normal_(self.embedding.weight, std=0.02)

    def hidden(self, inputs: Tensor) -> Tensor:
        """Final normalised hidden states (B, L, D) for token ids (B, L)."""
        x = self.embedding(inputs)  # (B, L, D)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward(self, inputs: Tensor, positions: Tensor | None = None) -> Tensor:
        """Logits (B, L, V); with a boolean mask `positions` (B, L), only there: (N, V).

        Why the mask: on recall tasks most positions carry no target, and a full-vocabulary
        head at every position is what makes CPU training slow.
        """
        h = self.hidden(inputs)  # (B, L, D)
        if positions is not None:
            h = h[positions]  # (N, D)
        return self.head(h)

    # -- auxiliary losses and statistics (MoE) -------------------------------------------------
    def aux_layers(self) -> list[tuple[int, AuxLossProvider]]:
        return [
            (i, block.ffn)
            for i, block in enumerate(self.blocks)
            if isinstance(block.ffn, AuxLossProvider)
        ]

    def aux_loss(self) -> Tensor:
        """Sum of the auxiliary losses of the last forward (0 when there are none)."""
        losses = [layer.aux_loss() for _, layer in self.aux_layers()]
        if not losses:
            return torch.zeros((), device=self.head.weight.device)
        return torch.stack(losses).sum()

    def aux_stats(self) -> dict[str, Any]:
        return {f"layer{i}": layer.stats() for i, layer in self.aux_layers()}

    # -- parameter counts -----------------------------------------------------------------------
    def parameter_counts(self) -> dict[str, int]:
        """Total parameters and those active for one token (MoE computes only k experts)."""
        total = sum(p.numel() for p in self.parameters())
        inactive = sum(
            count_parameters(layer) - layer.active_parameters()
            for _, layer in self.aux_layers()
            if hasattr(layer, "active_parameters")
        )
        return {"total": total, "active": total - inactive}

    # -- decoding -------------------------------------------------------------------------------
    def init_state(
        self, batch_size: int, *, device: torch.device | str, dtype: torch.dtype
    ) -> list[State]:
        return [
            block.mixer.init_state(batch_size, device=device, dtype=dtype) for block in self.blocks
        ]

    def step(self, tokens: Tensor, state: list[State]) -> tuple[Tensor, list[State]]:
        """One token per sequence (B,) -> logits (B, V) and the new state."""
        x = self.embedding(tokens)  # (B, D)
        new_state = []
        for block, layer_state in zip(self.blocks, state, strict=True):
            x, layer_state = block.step(x, layer_state)
            new_state.append(layer_state)
        return self.head(self.norm(x)), new_state

    def prefill(self, inputs: Tensor) -> tuple[Tensor, list[State]]:
        """Logits (B, L, V) for a prompt and the decode state after it."""
        x = self.embedding(inputs)  # (B, L, D)
        states = []
        for block in self.blocks:
            x, layer_state = block.prefill(x)
            states.append(layer_state)
        return self.head(self.norm(x)), states


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
