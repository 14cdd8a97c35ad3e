"""MoE: the sparse dispatch equals a dense all-experts reference; losses; capacity; counts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from seqbench.architectures.moe import MoE, default_expert_width
from seqbench.errors import UserError


def moe_reference(moe: MoE, x: torch.Tensor) -> torch.Tensor:
    """Every expert on every token, combined with the top-k weights: renormalised for k ≥ 2,
    the raw probability for k = 1 (Switch)."""
    flat = x.reshape(-1, x.shape[-1])  # (N, D)
    probs = moe.router(flat).float().softmax(-1)  # (N, E)
    top_p, top_e = probs.topk(moe.top_k, dim=-1)
    if moe.top_k > 1:
        top_p = top_p / top_p.sum(-1, keepdim=True)
    weights = torch.zeros_like(probs).scatter(1, top_e, top_p)
    out = torch.zeros_like(flat)
    for e in range(moe.n_experts):
        gate, up = (flat @ moe.w_in[e]).chunk(2, dim=-1)
        out = out + weights[:, e : e + 1] * ((F.silu(gate) * up) @ moe.w_out[e])
    if moe.shared is not None:
        out = out + moe.shared(flat)
    return out.reshape(x.shape)


@pytest.mark.parametrize(
    ("n_experts", "top_k", "shared"), [(8, 2, False), (4, 1, True), (6, 3, False)]
)
def test_sparse_dispatch_equals_dense_reference(n_experts: int, top_k: int, shared: bool) -> None:
    torch.manual_seed(0)
    moe = MoE(32, n_experts=n_experts, top_k=top_k, shared_expert=shared)
    x = torch.randn(3, 10, 32)
    torch.testing.assert_close(moe(x), moe_reference(moe, x), atol=1e-5, rtol=1e-4)


def test_balance_loss_is_switch_formula() -> None:
    torch.manual_seed(0)
    moe = MoE(16, n_experts=4, top_k=2, balance_coef=1.0, z_loss_coef=0.0)
    x = torch.randn(2, 50, 16)
    moe(x)
    flat = x.reshape(-1, 16)
    probs = moe.router(flat).softmax(-1)
    chosen = probs.topk(2, dim=-1).indices.reshape(-1)
    f = torch.bincount(chosen, minlength=4).float() / chosen.numel()
    expected = 4 * (f * probs.mean(0)).sum()
    torch.testing.assert_close(moe.aux_loss(), expected)
    assert moe.stats()["load"] == pytest.approx(f.tolist())


def test_balanced_router_gives_loss_one() -> None:
    moe = MoE(8, n_experts=4, top_k=1, balance_coef=1.0)
    with torch.no_grad():
        moe.router.weight.zero_()  # uniform probabilities; topk picks ties deterministically
    moe(torch.randn(1, 40, 8))
    # P_i = 1/4 for every expert, so E * sum f_i P_i = sum f_i = 1 whatever the load.
    assert moe.aux_loss().item() == pytest.approx(1.0)


def test_z_loss_added_with_its_coefficient() -> None:
    torch.manual_seed(0)
    moe = MoE(16, n_experts=4, top_k=2, balance_coef=0.0, z_loss_coef=0.5)
    x = torch.randn(2, 7, 16)
    moe(x)
    logits = moe.router(x.reshape(-1, 16))
    expected = 0.5 * torch.logsumexp(logits, -1).pow(2).mean()
    torch.testing.assert_close(moe.aux_loss(), expected)


def test_capacity_drops_and_counts_tokens() -> None:
    torch.manual_seed(0)
    moe = MoE(16, n_experts=4, top_k=1, capacity_factor=1.0)
    with torch.no_grad():  # route every token to expert 0
        moe.router.weight.zero_()
        moe.router.weight[0] = 1.0
    x = torch.rand(1, 40, 16) + 0.1  # positive inputs so expert 0 always wins
    y = moe(x)
    capacity = 10  # ceil(1.0 * 40 * 1 / 4)
    assert moe.stats()["dropped_fraction"] == pytest.approx(30 / 40)
    assert (y[0, capacity:] == 0).all()  # dropped tokens get no expert output
    assert (y[0, :capacity] != 0).any()


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_the_router_learns_from_the_task_at_every_k(top_k: int) -> None:
    """With the balance and z losses off, the router's gradient comes from the task alone."""
    torch.manual_seed(0)
    moe = MoE(16, n_experts=4, top_k=top_k, balance_coef=0.0, z_loss_coef=0.0)
    x = torch.randn(2, 9, 16)
    (moe(x) * torch.randn(2, 9, 16)).sum().backward()
    grad = moe.router.weight.grad
    assert grad is not None and grad.abs().max() > 1e-4


def test_capacity_fills_first_choices_before_second_choices() -> None:
    """GShard's priority: token 1's first choice takes the slot, not token 0's second."""
    moe = MoE(4, n_experts=2, top_k=2, capacity_factor=0.5)  # capacity ceil(0.5*2*2/2) = 1
    with torch.no_grad():
        moe.router.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
    # token 0 prefers expert 0 (second choice: expert 1); token 1 prefers expert 1
    x = torch.tensor([[[3.0, 1.0, 0, 0], [1.0, 3.0, 0, 0]]])
    moe(x)
    flat = x.reshape(-1, 4)
    order = moe._priority_order(moe.router(flat).topk(2, dim=-1).indices.reshape(-1))
    # expert 0: token 0 (rank 0) before token 1 (rank 1); expert 1: token 1 (rank 0) first
    assert order.tolist() == [0, 3, 2, 1]
    assert moe.stats()["dropped_fraction"] == pytest.approx(0.5)
    y = moe(x)
    probs = moe.router(flat).softmax(-1)
    # each token keeps exactly its first choice: its output is that expert's, weighted
    for token, expert in ((0, 0), (1, 1)):
        gate, up = (flat[token] @ moe.w_in[expert]).chunk(2)
        weight = probs[token, expert] / probs[token].sum()
        expected = weight * ((F.silu(gate) * up) @ moe.w_out[expert])
        torch.testing.assert_close(y[0, token], expected)


def test_active_parameters_count_k_experts() -> None:
    moe = MoE(32, n_experts=8, top_k=2)
    per_expert = 32 * 2 * moe.d_expert + moe.d_expert * 32
    assert moe.active_parameters() == 32 * 8 + 2 * per_expert
    total = sum(p.numel() for p in moe.parameters())
    assert total == 32 * 8 + 8 * per_expert


def test_default_expert_width_matches_dense_at_k() -> None:
    assert default_expert_width(128, 2) * 2 >= 8 * 128 // 3


def test_compute_grows_with_k_not_with_experts() -> None:
    x = torch.randn(4, 64, 32)

    def flops(n_experts: int, top_k: int) -> int:
        torch.manual_seed(0)
        moe = MoE(32, n_experts=n_experts, top_k=top_k, d_expert=64)
        with FlopCounterMode(display=False) as counter:
            moe(x)
        return counter.get_total_flops()

    # Router flops grow with E (N * D * E), expert flops only with k.
    router = lambda e: 2 * 256 * 32 * e  # noqa: E731
    assert flops(8, 2) - router(8) == flops(32, 2) - router(32)
    assert flops(8, 4) - router(8) == pytest.approx(2 * (flops(8, 2) - router(8)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"top_k": 9}, "top_k"),
        ({"n_experts": 0}, "n_experts"),
        ({"capacity_factor": 0.0}, "capacity"),
    ],
)
def test_bad_knobs_fail_in_one_line(kwargs: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        MoE(16, **kwargs)


def test_meta_device_counts_the_same_flops_as_a_real_run() -> None:
    """On paper (meta tensors) routing is taken as balanced; expert FLOPs depend only on N*k."""
    torch.manual_seed(0)
    real = MoE(32, n_experts=8, top_k=2)
    with FlopCounterMode(display=False) as measured:
        real(torch.randn(2, 24, 32))
    with torch.device("meta"):
        paper = MoE(32, n_experts=8, top_k=2)
        x = torch.randn(2, 24, 32)
    with FlopCounterMode(display=False) as counted:
        y = paper(x)
    assert y.shape == x.shape and y.device.type == "meta"
    assert counted.get_total_flops() == measured.get_total_flops()
