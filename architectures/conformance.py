"""The conformance gate: behavioural checks every mixer must pass before it is benchmarked.

The same checks back the pytest module over every registered mixer and `seqbench check-arch`.
Each check runs isolated: an exception fails that check with its message and the others still
run, so a report names every broken promise at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn

from seqbench.architectures.contract import prefill, state_bytes
from seqbench.architectures.model import LanguageModel
from seqbench.architectures.presets import Preset, build_config
from seqbench.architectures.registry import CHANNEL_MIXERS, MIXERS, PRESETS
from seqbench.errors import UserError
from seqbench.registry import import_dotted, is_dotted_path

STATE_PROBE_TOKENS = (64, 256)


@dataclass
class GateConfig:
    """Sizes of the probe inputs. Small so the gate costs seconds, big enough to mean it."""

    d_model: int = 64
    batch: int = 2
    seq_len: int = 32
    seed: int = 0
    atol: float = 1e-4  # step vs forward, relative to the output scale
    causal_atol: float = 1e-5  # leakage from the future, relative to the output scale
    device: str = "cpu"  # where modules and probes live ("cuda": the gate on a GPU)


@dataclass
class CheckResult:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class ConformanceReport:
    name: str
    kind: str
    parameters: int = 0
    checks: list[CheckResult] = field(default_factory=list)
    max_step_error: float | None = None
    state_bytes: dict[int, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    def refusal(self) -> str:
        """The failures as one line: each check's first line, and a detail shared by several
        checks (a constructor that raises fails them all) said once, naming them."""
        by_detail: dict[str, list[str]] = {}
        for check in self.failures():
            detail = (check.detail.strip().splitlines() or [""])[0]
            by_detail.setdefault(detail, []).append(check.name)
        return "; ".join(f"{', '.join(names)}: {detail}" for detail, names in by_detail.items())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        data["state_bytes"] = {str(k): v for k, v in self.state_bytes.items()}
        return data

    def format(self) -> str:
        lines = [f"{self.name} ({self.kind}): {self.parameters:,} parameters"]
        for c in self.checks:
            verdict = "ok  " if c.passed else "FAIL"
            lines.append(f"  {verdict} {c.name}" + (f": {c.detail}" if c.detail else ""))
        if self.max_step_error is not None:
            lines.append(f"  max |step - forward| = {self.max_step_error:.3g}")
        for tokens, n in self.state_bytes.items():
            lines.append(f"  decode state after {tokens} tokens: {n:,} bytes")
        lines.append("PASSED" if self.passed else f"FAILED ({len(self.failures())} checks)")
        return "\n".join(lines)


class Checker:
    """Runs named checks, turning exceptions into failed checks with their message."""

    def __init__(self, report: ConformanceReport, prefix: str = "") -> None:
        self.report = report
        self.prefix = prefix

    def run(self, name: str, fn: Callable[[], str | None]) -> bool:
        try:
            problem = fn()
        except Exception as exc:  # a broken plugin is a failed check, not a crash
            problem = f"raised {type(exc).__name__}: {exc}"
        self.report.checks.append(CheckResult(self.prefix + name, problem is None, problem or ""))
        return problem is None


def _scale(y: Tensor) -> float:
    return max(1.0, float(y.detach().abs().max()))


def _probe(cfg: GateConfig, length: int | None = None, batch: int | None = None) -> Tensor:
    gen = torch.Generator().manual_seed(cfg.seed + 1)  # drawn on the CPU: equal on any device
    x = torch.randn(batch or cfg.batch, length or cfg.seq_len, cfg.d_model, generator=gen)
    return x.to(cfg.device)


def _seeded(factory: Callable[[], nn.Module], seed: int, device: str = "cpu") -> nn.Module:
    torch.manual_seed(seed)
    return factory().to(device)


# -- the individual checks ------------------------------------------------------------------------
def check_shape(module: nn.Module, x: Tensor) -> str | None:
    y = module(x)
    if not isinstance(y, Tensor):
        return f"forward returned {type(y).__name__}, not a tensor"
    if y.shape != x.shape:
        return f"output shape {tuple(y.shape)} != input shape {tuple(x.shape)}"
    if not torch.isfinite(y).all():
        return "output has non-finite values"
    return None


def check_no_mutation(module: nn.Module, x: Tensor) -> str | None:
    before = x.clone()
    module(x)
    if not torch.equal(before, x):
        return "forward modified its input in place"
    return None


def check_causality(module: nn.Module, x: Tensor, atol: float) -> str | None:
    """Changing x[:, t+1:] must leave y[:, :t+1] unchanged, for several t."""
    with torch.no_grad():
        return _causality_leak(module, x, atol)


def _causality_leak(module: nn.Module, x: Tensor, atol: float) -> str | None:
    y = module(x.clone())
    gen = torch.Generator().manual_seed(1234)
    L = x.shape[1]
    for t in sorted({0, L // 3, L // 2, L - 2}):
        x2 = x.clone()
        x2[:, t + 1 :] = torch.randn(x2[:, t + 1 :].shape, generator=gen).to(x.device)
        y2 = module(x2)
        leak = float((y2[:, : t + 1] - y[:, : t + 1]).abs().max())
        if leak > atol * _scale(y):
            return f"output at position {t} changed by {leak:.3g} when only later inputs changed"
    return None


def check_gradients(module: nn.Module, x: Tensor) -> str | None:
    module.zero_grad(set_to_none=True)
    y = module(x.clone().requires_grad_(True))
    weights = torch.randn(y.shape, generator=torch.Generator().manual_seed(7)).to(y.device)
    (y * weights).sum().backward()
    missing = [n for n, p in module.named_parameters() if p.requires_grad and p.grad is None]
    if missing:
        return f"no gradient reaches {', '.join(missing[:4])}" + (
            " ..." if len(missing) > 4 else ""
        )
    bad = [
        n
        for n, p in module.named_parameters()
        if p.grad is not None and not torch.isfinite(p.grad).all()
    ]
    if bad:
        return f"non-finite gradient in {', '.join(bad[:4])}"
    zero = [n for n, p in module.named_parameters() if p.grad is not None and not p.grad.any()]
    if zero:
        return f"gradient is exactly zero for {', '.join(zero[:4])}"
    return None


def check_determinism(factory: Callable[[], nn.Module], x: Tensor, seed: int) -> str | None:
    a, b = _seeded(factory, seed, x.device.type), _seeded(factory, seed, x.device.type)
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        if not torch.equal(pa, pb):
            return f"parameter {name} differs between two builds under the same seed"
    ya, yb, ya2 = a(x.clone()), b(x.clone()), a(x.clone())
    if not (torch.equal(ya, yb) and torch.equal(ya, ya2)):
        return "outputs differ between runs under the same seed"
    return None


def step_error(module: nn.Module, x: Tensor) -> float:
    """max |step-by-step decode - forward| over a sequence."""
    y = module(x.clone())
    state = module.init_state(x.shape[0], device=x.device, dtype=x.dtype)
    err = 0.0
    for t in range(x.shape[1]):
        x_t = x[:, t].clone()
        y_t, state = module.step(x_t, state)  # (B, D)
        if y_t.shape != y[:, t].shape:
            raise ValueError(
                f"step returned shape {tuple(y_t.shape)}, expected {tuple(y[:, t].shape)}"
            )
        if not torch.equal(x_t, x[:, t]):
            raise ValueError("step modified its input in place")
        err = max(err, float((y_t - y[:, t]).abs().max()))
    return err


def channel_step_error(module: nn.Module, x: Tensor) -> float:
    """A channel mixer is per token: each token alone must give its slice of the full output."""
    y = module(x.clone())
    return max(
        float((module(x[:, t : t + 1].clone())[:, 0] - y[:, t]).abs().max())
        for t in range(x.shape[1])
    )


# -- whole reports --------------------------------------------------------------------------------
def check_sequence_mixer(
    factory: Callable[[], nn.Module],
    name: str,
    cfg: GateConfig | None = None,
    report: ConformanceReport | None = None,
    prefix: str = "",
) -> ConformanceReport:
    """All checks for a token mixer built by `factory()` at width cfg.d_model."""
    cfg = cfg or GateConfig()
    report = report or ConformanceReport(name, "sequence mixer")
    checker = Checker(report, prefix)
    holder: dict[str, nn.Module] = {}

    def build() -> str | None:
        holder["m"] = _seeded(factory, cfg.seed, cfg.device)
        missing = [
            m
            for m in ("forward", "init_state", "step")
            if not callable(getattr(holder["m"], m, None))
        ]
        return f"missing contract methods: {', '.join(missing)}" if missing else None

    if not checker.run("contract", build):
        return report
    module, x = holder["m"], _probe(cfg)
    report.parameters += sum(p.numel() for p in module.parameters())
    checker.run("output shape", lambda: check_shape(module, x))
    checker.run("input not mutated", lambda: check_no_mutation(module, x))
    checker.run("causality", lambda: check_causality(module, x, cfg.causal_atol))

    def step_check() -> str | None:
        with torch.no_grad():
            err = step_error(module, x)
        report.max_step_error = max(report.max_step_error or 0.0, err)
        y_scale = _scale(module(x.clone()))
        return (
            None
            if err <= cfg.atol * y_scale
            else f"max |step - forward| = {err:.3g} > {cfg.atol * y_scale:.3g}"
        )

    checker.run("step equals forward", step_check)
    checker.run("gradients reach every parameter", lambda: check_gradients(module, x))
    checker.run("deterministic under a seed", lambda: check_determinism(factory, x, cfg.seed))

    def state_check() -> str | None:
        with torch.no_grad():
            for tokens in STATE_PROBE_TOKENS:
                _, state = prefill(module, _probe(cfg, tokens, batch=1))
                report.state_bytes[tokens] = report.state_bytes.get(tokens, 0) + state_bytes(state)
        return None

    checker.run("decode state measurable", state_check)
    return report


def check_channel_mixer(
    factory: Callable[[], nn.Module],
    name: str,
    cfg: GateConfig | None = None,
    report: ConformanceReport | None = None,
    prefix: str = "",
) -> ConformanceReport:
    """All checks that apply to a per-token mixer."""
    cfg = cfg or GateConfig()
    report = report or ConformanceReport(name, "channel mixer")
    checker = Checker(report, prefix)
    holder: dict[str, nn.Module] = {}

    def build() -> str | None:
        holder["m"] = _seeded(factory, cfg.seed, cfg.device)
        return None

    if not checker.run("contract", build):
        return report
    module, x = holder["m"], _probe(cfg)
    report.parameters += sum(p.numel() for p in module.parameters())
    checker.run("output shape", lambda: check_shape(module, x))
    checker.run("input not mutated", lambda: check_no_mutation(module, x))
    checker.run("causality", lambda: check_causality(module, x, cfg.causal_atol))

    def per_token() -> str | None:
        with torch.no_grad():
            err = channel_step_error(module, x)
        return (
            None
            if err <= cfg.atol * _scale(module(x))
            else f"per-token output differs by {err:.3g}"
        )

    checker.run("per-token (step equals forward)", per_token)
    checker.run("gradients reach every parameter", lambda: check_gradients(module, x))
    checker.run("deterministic under a seed", lambda: check_determinism(factory, x, cfg.seed))
    return report


def check_preset(preset: Preset, cfg: GateConfig | None = None) -> ConformanceReport:
    """Every distinct mixer of a preset at its own width, then the whole model's decoding."""
    config = build_config(preset.name, vocab_size=64)
    cfg = replace(cfg or GateConfig(), d_model=config.d_model)
    report = ConformanceReport(preset.name, f"architecture ({preset.family})")
    for mixer_name in dict.fromkeys(config.layer_pattern):
        cls, kwargs = MIXERS.get(mixer_name), config.mixer_kwargs.get(mixer_name, {})
        check_sequence_mixer(
            lambda c=cls, k=kwargs: c(config.d_model, layer_idx=0, **k),
            mixer_name,
            cfg,
            report,
            prefix=f"{mixer_name}: ",
        )
    if config.ffn != "none":
        cls = CHANNEL_MIXERS.get(config.ffn)
        check_channel_mixer(
            lambda: cls(config.d_model, layer_idx=0, **config.ffn_kwargs),
            config.ffn,
            cfg,
            report,
            prefix=f"{config.ffn}: ",
        )
    _check_model(config, cfg, report)
    return report


def _check_model(config: Any, cfg: GateConfig, report: ConformanceReport) -> None:
    """Model-level decode equals forward; state bytes and parameters are the whole model's."""
    model = _seeded(lambda: LanguageModel(config), cfg.seed, cfg.device).eval()
    report.parameters = model.parameter_counts()["total"]
    report.state_bytes = {}
    checker = Checker(report, "model: ")
    tokens = torch.randint(
        0,
        config.vocab_size,
        (cfg.batch, cfg.seq_len),
        generator=torch.Generator().manual_seed(cfg.seed),
    ).to(cfg.device)

    def decode() -> str | None:
        with torch.no_grad():
            logits = model(tokens)
            state = model.init_state(cfg.batch, device=cfg.device, dtype=torch.float32)
            err = 0.0
            for t in range(cfg.seq_len):
                step_logits, state = model.step(tokens[:, t], state)
                err = max(err, float((step_logits - logits[:, t]).abs().max()))
            for n in STATE_PROBE_TOKENS:
                _, state = model.prefill(torch.zeros(1, n, dtype=torch.long, device=cfg.device))
                report.state_bytes[n] = state_bytes(state)
        report.max_step_error = max(report.max_step_error or 0.0, err)
        limit = cfg.atol * _scale(logits)
        return None if err <= limit else f"max |step - forward| on logits = {err:.3g} > {limit:.3g}"

    checker.run("decode equals forward", decode)


def check_registered_mixer(name: str, cfg: GateConfig | None = None) -> ConformanceReport:
    """The sequence mixer registered as `name`, at its default hyper-parameters."""
    cfg = cfg or GateConfig()
    cls = MIXERS.get(name)
    return check_sequence_mixer(lambda: cls(cfg.d_model, layer_idx=0), name, cfg)


def check_registered_channel_mixer(name: str, cfg: GateConfig | None = None) -> ConformanceReport:
    """The channel mixer registered as `name`, at its default hyper-parameters."""
    cfg = cfg or GateConfig()
    cls = CHANNEL_MIXERS.get(name)
    return check_channel_mixer(lambda: cls(cfg.d_model, layer_idx=0), name, cfg)


def canonical_architecture(name: str) -> str:
    """The registered spelling of a preset or mixer name given in any case (`MHA` -> `mha`),
    presets first; unchanged when nothing matches unambiguously."""
    for registry in (PRESETS, MIXERS, CHANNEL_MIXERS):
        spelled = registry.canonical(name)
        if spelled in registry:
            return spelled
    return name


def dotted_architecture(name: str) -> Preset | type:
    """What a `pkg.mod:Name` architecture denotes: a Preset or a mixer class. The one import
    and check path of `seqbench check-arch`, `seqbench run --arch` and the sweep's gate, so
    they accept and refuse the same names with the same one-line errors."""
    obj = import_dotted(name)
    if isinstance(obj, (Preset, type)):
        return obj
    raise UserError(f"{name!r} is neither a Preset nor a mixer class")


def check_architecture(name: str, cfg: GateConfig | None = None) -> ConformanceReport:
    """Check a `pkg.mod:Class`, else a preset, else a registered mixer or channel mixer.

    A name that is both a preset and a mixer (`mamba`) means the preset, which covers the
    mixer at the preset's hyper-parameters and the whole model.
    """
    cfg = cfg or GateConfig()
    name = canonical_architecture(name)
    if is_dotted_path(name):
        cls = dotted_architecture(name)
        if isinstance(cls, Preset):
            return check_preset(cls, cfg)
        factory = lambda: cls(cfg.d_model, layer_idx=0)  # noqa: E731
        if callable(getattr(cls, "step", None)):
            return check_sequence_mixer(factory, name, cfg)
        return check_channel_mixer(factory, name, cfg)
    if name in PRESETS:
        return check_preset(PRESETS.get(name), cfg)
    if name in MIXERS:
        return check_registered_mixer(name, cfg)
    if name in CHANNEL_MIXERS:
        return check_registered_channel_mixer(name, cfg)
    PRESETS.get(name)  # raises the "did you mean" error over architecture names
    raise AssertionError("unreachable")
