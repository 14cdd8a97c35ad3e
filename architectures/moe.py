"""Mixture-of-Experts channel mixer: top-k routing over SwiGLU experts.

Routing: softmax over experts, keep the top k. With k ≥ 2 the k kept weights are renormalised
to sum to 1 (Mixtral-style). With k = 1 the expert's output is scaled by its unnormalised
probability (Switch, Llama-4 style): renormalising a single weight would make the gate
identically 1, and the router would then learn only from the balance loss, never from the task.
Only the tokens routed to an expert are computed by it: assignments are sorted by expert,
gathered, pushed through each expert's matmuls and scattered back, so the cost grows with k,
not with the number of experts E.

Losses: Switch-style load balancing E * sum_i f_i * P_i (f_i: fraction of assignments sent to
expert i, P_i: mean router probability of expert i; equals 1 when perfectly balanced) and the
optional router z-loss mean(logsumexp(logits)^2) (ST-MoE), both weighted here so the model can
just add `aux_loss()` to its task loss.

Capacity: with `capacity_factor` c, an expert takes at most ceil(c * N * k / E) assignments
per forward; the rest are dropped (their residual passes unchanged) and counted. Slots are
filled by choice rank first, as in GShard: every token's first choice before any token's
second choice, and among one rank earlier tokens of the flattened batch first (Switch).
Note that dropping makes a token's output depend on other tokens, later ones included:
capacity limits are not causal, which the conformance gate would (rightly) flag; the default
is no capacity limit.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqbench.architectures.mlp import SwiGLU, positive, swiglu_hidden
from seqbench.architectures.precision import no_autocast
from seqbench.architectures.registry import CHANNEL_MIXERS
from seqbench.errors import UserError


def default_expert_width(d_model: int, top_k: int) -> int:
    """Expert width so the k active experts together match a dense SwiGLU's hidden width."""
    return max(8, -(-swiglu_hidden(d_model) // (8 * top_k)) * 8)


@CHANNEL_MIXERS.register("moe", family="moe")
class MoE(nn.Module):
    """E SwiGLU experts, top-k routed, with balance/z losses, capacity and a shared expert."""

    def __init__(
        self,
        d_model: int,
        *,
        layer_idx: int = 0,
        n_experts: int = 8,
        top_k: int = 2,
        d_expert: int | None = None,
        capacity_factor: float | None = None,
        shared_expert: bool = False,
        balance_coef: float = 0.01,
        z_loss_coef: float = 0.0,
    ) -> None:
        super().__init__()
        positive("n_experts", n_experts)
        if not 1 <= top_k <= n_experts:
            raise UserError(f"top_k must be in 1..n_experts={n_experts}, got {top_k}")
        if capacity_factor is not None and capacity_factor <= 0:
            raise UserError(f"capacity_factor must be positive, got {capacity_factor}")
        self.n_experts = n_experts
        self.top_k = top_k
        self.d_expert = positive("d_expert", d_expert or default_expert_width(d_model, top_k))
        self.capacity_factor = capacity_factor
        self.balance_coef = balance_coef
        self.z_loss_coef = z_loss_coef
        self.router = nn.Linear(d_model, n_experts, bias=False)
        # Stacked expert weights (E, in, out): one parameter per matrix, indexed per expert.
        self.w_in = nn.Parameter(linear_init(n_experts, d_model, 2 * self.d_expert))
        self.w_out = nn.Parameter(linear_init(n_experts, self.d_expert, d_model))
        # An always-on expert every token passes through (DeepSeek-MoE style).
        self.shared = SwiGLU(d_model, d_hidden=self.d_expert) if shared_expert else None
        self._aux = torch.zeros(())
        self._stats: dict[str, Tensor] = {}

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])  # (N, D)
        # The router in float32 even under bf16 autocast ("selective precision", Switch
        # Transformer, Fedus et al. 2022, sec. 2.4): bf16 logits swap near-tied experts. On
        # the same float32 input (CPU autocast, d_model 64, 1024 tokens) the layer's largest
        # error against float32 fell from 40% of its output's scale to 0.8%.
        with no_autocast(flat.device.type):
            work = torch.promote_types(flat.dtype, torch.float32)
            logits = F.linear(flat.to(work), self.router.weight.to(work)).float()  # (N, E)
        probs = logits.softmax(dim=-1)
        top_p, top_e = probs.topk(self.top_k, dim=-1)  # (N, k)
        if self.top_k > 1:
            top_p = top_p / top_p.sum(dim=-1, keepdim=True)

        expert_of = top_e.reshape(-1)  # (N*k,) assignment -> expert
        order = self._priority_order(expert_of)
        token_sorted = order // self.top_k  # (N*k,) assignment -> token
        gate_sorted = top_p.reshape(-1)[order]
        if flat.device.type == "meta":
            counts, kept, sizes = self._paper_routing(expert_of.numel(), flat.device)
        else:
            counts = torch.bincount(expert_of, minlength=self.n_experts)  # (E,)
            kept = self._capacity_mask(counts, expert_of[order])  # (N*k,) bool or None
            kept_counts = counts
            if kept is not None:
                token_sorted, gate_sorted = token_sorted[kept], gate_sorted[kept]
                kept_counts = torch.bincount(expert_of[order][kept], minlength=self.n_experts)
            sizes = kept_counts.tolist()
        y = self._run_experts(flat.index_select(0, token_sorted), sizes)  # (M, D)
        y = y * gate_sorted[:, None].to(y.dtype)
        # Summed in the input's dtype: under bf16 autocast the experts' matmuls return bf16
        # while x (and the accumulator) is float32, and index_add takes no mixed dtypes.
        out = torch.zeros_like(flat).index_add(0, token_sorted, y.to(flat.dtype))  # (N, D)
        if self.shared is not None:
            out = out + self.shared(flat)

        self._record(logits, probs, counts, kept)
        return out.reshape(shape)

    def _priority_order(self, expert_of: Tensor) -> Tensor:
        """Assignments grouped by expert; within an expert by choice rank, then by token.

        Assignment a = token * k + rank. Capacity keeps the head of each expert's group, so
        this order is what makes first choices win over second choices."""
        n = expert_of.numel() // self.top_k
        assignment = torch.arange(expert_of.numel(), device=expert_of.device)
        rank, token = assignment % self.top_k, assignment // self.top_k
        key = (expert_of * self.top_k + rank) * n + token  # (N*k,) unique per assignment
        return key.argsort()

    def _paper_routing(
        self, assignments: int, device: torch.device
    ) -> tuple[Tensor, None, list[int]]:
        """Routing on the meta device, where no values exist: assume perfect balance.

        Used when FLOPs and bytes are counted on paper. Expert compute depends only on the
        total number of assignments (N * k), so the count is exact whatever the real routing;
        capacity drops are not modelled (none occur under perfect balance at factor >= 1).
        """
        base, extra = divmod(assignments, self.n_experts)
        sizes = [base + (e < extra) for e in range(self.n_experts)]
        return torch.empty(self.n_experts, dtype=torch.long, device=device), None, sizes

    def _capacity_mask(self, counts: Tensor, expert_sorted: Tensor) -> Tensor | None:
        """Which sorted assignments fit their expert's capacity (None: no limit)."""
        if self.capacity_factor is None:
            return None
        capacity = math.ceil(self.capacity_factor * expert_sorted.numel() / self.n_experts)
        starts = torch.cumsum(counts, 0) - counts  # (E,) first sorted index per expert
        rank = torch.arange(expert_sorted.numel(), device=counts.device) - starts[expert_sorted]
        return rank < capacity

    def _run_experts(self, x_sorted: Tensor, sizes: list[int]) -> Tensor:
        """Each expert's SwiGLU on its contiguous slice of the sorted tokens (M, D)."""
        # unbind once: indexing w_in[e] per expert would make backward build E full-size
        # zero gradients (cost growing with E^2); unbind's backward stacks them once.
        w_in, w_out = self.w_in.unbind(0), self.w_out.unbind(0)
        outputs = []
        for e, chunk in enumerate(x_sorted.split(sizes, dim=0)):
            if chunk.shape[0] == 0:
                continue
            gate, up = (chunk @ w_in[e]).chunk(2, dim=-1)  # (n_e, H) each
            outputs.append((serial_blocks(F.silu, gate) * up) @ w_out[e])  # (n_e, D)
        if not outputs:
            return x_sorted.new_zeros(0, self.w_out.shape[-1])
        return torch.cat(outputs, dim=0)

    def _record(self, logits: Tensor, probs: Tensor, counts: Tensor, kept: Tensor | None) -> None:
        assignments = counts.sum().clamp(min=1)
        load = counts.float() / assignments  # f_i
        balance = self.n_experts * (load * probs.mean(dim=0)).sum()
        z_loss = torch.logsumexp(logits, dim=-1).pow(2).mean()
        self._aux = self.balance_coef * balance + self.z_loss_coef * z_loss
        dropped = torch.zeros(()) if kept is None else (~kept).sum().float() / assignments
        self._stats = {
            "load": load.detach(),
            "dropped_fraction": dropped.detach(),
            "balance_loss": balance.detach(),
            "z_loss": z_loss.detach(),
        }

    # -- AuxLossProvider -------------------------------------------------------------------------
    def aux_loss(self) -> Tensor:
        return self._aux

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n_experts": self.n_experts, "top_k": self.top_k}
        if self._aux.device.type == "meta":  # counted on paper: no values to report
            return out
        for key, value in self._stats.items():
            out[key] = value.tolist() if value.ndim else float(value)
        return out

    def active_parameters(self) -> int:
        """Parameters one token uses: the router, k experts and the shared expert."""
        per_expert = (self.w_in.numel() + self.w_out.numel()) // self.n_experts
        shared = sum(p.numel() for p in self.shared.parameters()) if self.shared else 0
        return self.router.weight.numel() + self.top_k * per_expert + shared


SERIAL_NUMEL = 32768  # torch's grain size: a CPU op on fewer elements runs on one thread


def serial_blocks(fn: Any, x: Tensor) -> Tensor:
    """fn(x) for an elementwise fn, on the CPU in blocks of rows small enough for one thread.

    Why: torch splits an elementwise op of 32768 elements or more between its threads at
    element offsets; an offset that is no multiple of the vector width makes a few elements
    go through the scalar code, whose exp differs from the vectorised one in the last bit.
    An expert's row count is whatever the router sent it, so silu's result depended on the
    number of threads (measured: 1321 x 88 elements, 1 vs 2 threads), and so did every MoE
    run. A block computed by one thread is the same whatever the threads (docs/harness.md).
    """
    if x.device.type != "cpu" or x.numel() < SERIAL_NUMEL:
        return fn(x)
    rows = max(1, (SERIAL_NUMEL - 1) // max(1, x[0].numel()))
    return torch.cat([fn(block) for block in x.split(rows)])


def linear_init(n: int, fan_in: int, fan_out: int) -> Tensor:
    """(n, fan_in, fan_out) weights initialised like nn.Linear's default."""
    bound = 1.0 / math.sqrt(fan_in)
    return torch.empty(n, fan_in, fan_out).uniform_(-bound, bound)
