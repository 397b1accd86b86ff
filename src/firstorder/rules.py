"""The update rules of the notes, each written exactly once.

This module is the one place where an equation of the notes lives (E1–E5 and E7 of
CLAIMS.md), and of the rules from beyond the notes that the library also offers (Nesterov
momentum and AdamW, in the notes' convention). Every rule updates θ and its state buffers in
place, in the notes' own symbols:

    θ  theta      parameters              g   gradient ∇R(θ)
    α  lr         learning rate           k   step counter, 1, 2, … (Adam)
    s  s          first moment / velocity r   r  accumulated squared gradients
    ρ  rho        decay (momentum, RMSProp) ρ₁, ρ₂  rho1, rho2 (Adam)
    ε  eps        added *outside* the square root, as the notes write it

Hyperparameters may be Python numbers or tensors that broadcast against θ. The same line of
code therefore updates one network's weights (numbers) or a ``[configs, starts, dim]`` block of
trajectories whose hyperparameters have shape ``[configs, 1, 1]`` (:mod:`firstorder.run`).

Only torch is imported here; everything else in the package calls these functions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

# a leaf module of exception classes (it imports nothing): a hyperparameter outside its domain
# is the user's mistake, which the CLI and the playground report without a traceback
from firstorder.errors import UserTypeError, UserValueError

Hyper = float | Tensor


def gd(theta: Tensor, g: Tensor, *, lr: Hyper) -> None:
    """E1, gradient descent: θ ← θ − α g."""
    theta.sub_(lr * g)


def momentum(theta: Tensor, g: Tensor, s: Tensor, *, lr: Hyper, rho: Hyper) -> None:
    """E2, momentum: s ← ρ s − α g ; θ ← θ + s.

    α sits inside the velocity s (unlike Goodfellow et al. and torch.optim.SGD, which scale the
    velocity by α afterwards); with a constant α the two trajectories are identical.
    """
    s.mul_(rho).sub_(lr * g)
    theta.add_(s)


def nesterov(theta: Tensor, g: Tensor, s: Tensor, *, lr: Hyper, rho: Hyper) -> None:
    """Nesterov momentum (Sutskever, Martens, Dahl & Hinton 2013), beyond the notes, written in
    their convention of E2 (α inside the velocity s):

        s ← ρ s − α g ;  θ ← θ + ρ s − α g      (g = ∇R(θ) at the current θ)

    Nesterov takes the gradient at the look-ahead point θ + ρ s. This is the rewrite of Bengio,
    Boulanger-Lewandowski & Pascanu (2013) in the look-ahead variable itself, which needs only
    the gradient at θ, as torch.optim.SGD(nesterov=True) does: the step applies the new
    velocity's momentum ρ s and the gradient step − α g once more.
    """
    s.mul_(rho).sub_(lr * g)
    theta.add_(rho * s).sub_(lr * g)


def adaptive_step(lr: Hyper, r: Tensor, eps: Hyper) -> Tensor:
    """The per-coordinate step size α / (√r + ε) shared by E3, E4 and E5.

    ε is added outside the root, as the notes write it. The batched engine records this
    quantity along trajectories (with r̂ in place of r for Adam).
    """
    return adaptive_step_(lr, r.clone(), eps)


def adaptive_step_(lr: Hyper, r: Tensor, eps: Hyper) -> Tensor:
    """:func:`adaptive_step` computed in the buffer ``r`` itself, which it overwrites.

    Why: every θ-sized temporary alive at once is memory that the allocator may hand back to
    the system and fault in again at the next step; computing in place keeps one.
    """
    return r.sqrt_().add_(eps).reciprocal_().mul_(lr)


def adagrad(theta: Tensor, g: Tensor, r: Tensor, *, lr: Hyper, eps: Hyper) -> None:
    """E3, AdaGrad: r ← r + g⊙g ; θ ← θ − α/(√r + ε) ⊙ g."""
    r.add_(g * g)
    theta.sub_(adaptive_step(lr, r, eps).mul_(g))


def rmsprop(theta: Tensor, g: Tensor, r: Tensor, *, lr: Hyper, rho: Hyper, eps: Hyper) -> None:
    """E4, RMSProp: r ← ρ₂ r + (1−ρ₂) g⊙g ; θ ← θ − α/(√r + ε) ⊙ g.

    The notes call the decay ρ₂; the optimizer's argument is ``rho``.
    """
    r.lerp_(g * g, 1 - rho)  # r ← ρ₂ r + (1−ρ₂) g⊙g, in place
    theta.sub_(adaptive_step(lr, r, eps).mul_(g))


def bias_corrected(m: Tensor, rho: Hyper, k: int | Tensor) -> Tensor:
    """Adam's bias correction m / (1 − ρᵏ): ŝ from s with ρ₁, r̂ from r with ρ₂ (E5).

    k may be a tensor of step counts broadcasting against m (a recorded history at once)."""
    return m / (1 - rho**k)


def adam(
    theta: Tensor,
    g: Tensor,
    s: Tensor,
    r: Tensor,
    *,
    k: int,
    lr: Hyper,
    rho1: Hyper,
    rho2: Hyper,
    eps: Hyper,
    bias_correction: bool = True,
) -> None:
    """E5, Adam at step k = 1, 2, …:

        s ← ρ₁ s + (1−ρ₁) g ;   ŝ = s / (1−ρ₁ᵏ)
        r ← ρ₂ r + (1−ρ₂) g⊙g ; r̂ = r / (1−ρ₂ᵏ)
        θ ← θ − α/(√r̂ + ε) ⊙ ŝ

    ``bias_correction=False`` uses s and r in place of ŝ and r̂ (claim C7 asks what the
    correction is for). k is a Python int, so it never saturates.
    """
    # ρ s + (1−ρ) x is a linear interpolation from s toward x: lerp_ computes it in place
    s.lerp_(g, 1 - rho1)  # s ← ρ₁ s + (1−ρ₁) g
    r.lerp_(g * g, 1 - rho2)  # r ← ρ₂ r + (1−ρ₂) g⊙g
    # r̂ and ŝ are new tensors; the step is computed in r̂'s memory
    r_hat = bias_corrected(r, rho2, k) if bias_correction else r.clone()
    s_hat = bias_corrected(s, rho1, k) if bias_correction else s
    theta.sub_(adaptive_step_(lr, r_hat, eps).mul_(s_hat))


def adamw(
    theta: Tensor,
    g: Tensor,
    s: Tensor,
    r: Tensor,
    *,
    k: int,
    lr: Hyper,
    rho1: Hyper,
    rho2: Hyper,
    eps: Hyper,
    weight_decay: Hyper,
    bias_correction: bool = True,
) -> None:
    """AdamW (Loshchilov & Hutter 2019), beyond the notes: decoupled weight decay δ, then E5.

        θ ← θ − α δ θ ;   then Adam's step (E5) at step k with the same g

    The decay shrinks θ itself instead of entering g, where Adam's α/(√r̂ + ε) would rescale it
    coordinate by coordinate; g is the gradient at θ before the decay, as in torch.optim.AdamW.
    """
    theta.mul_(1 - lr * weight_decay)  # θ − αδθ as one factor, rounded as torch rounds it
    adam(theta, g, s, r, k=k, lr=lr, rho1=rho1, rho2=rho2, eps=eps, bias_correction=bias_correction)


def newton_direction(g: Tensor, H: Tensor, damping: Hyper = 0.0) -> Tensor:
    """The Newton direction of E7, d = −(H + damping·I)⁻¹ g, found by solving, never inverting.

    g has shape [..., n] and H [..., n, n]. A batch entry whose matrix is singular gets a
    non-finite direction (the batched engine marks that trajectory diverged) instead of an
    error that would stop the whole batch.
    """
    if isinstance(damping, Tensor) and damping.dim() > 0:
        damping = damping.unsqueeze(-1)  # [..., 1, 1]: one λ per matrix of the batch
    I = torch.eye(H.shape[-1], dtype=H.dtype, device=H.device)
    d, info = torch.linalg.solve_ex(H + damping * I, -g.unsqueeze(-1))
    return d.squeeze(-1).masked_fill((info != 0).unsqueeze(-1), float("nan"))


def newton(theta: Tensor, g: Tensor, H: Tensor, *, lr: Hyper, damping: Hyper = 0.0) -> None:
    """E7, Newton's method: d = −H⁻¹ g ; θ ← θ + α d.

    With α = 1 and damping = 0 this is the notes' θ_{t+1} = θ_t − H⁻¹ g, the minimiser of the
    quadratic model E9. damping λ > 0 solves with H + λI instead (Levenberg's damping).
    """
    theta.add_(lr * newton_direction(g, H, damping))


# --- what each rule needs: the one registry every driver reads ------------------------------
#
# The optimizers (optim), the batched engine (run), the compiled kernels (compile), the CLI, the
# plots, the tuning protocol of the experiments and the playground all derive their lists, flags,
# symbols, colours and defaults from RULES and HYPERPARAMETERS below. Adding a rule is one
# function above and one Rule entry here (plus its torch.optim class in optim.py).


def _unit(v: Tensor) -> Tensor:
    return (v >= 0) & (v < 1)


def _nonnegative(v: Tensor) -> Tensor:
    return (v >= 0) & v.isfinite()


def _positive(v: Tensor) -> Tensor:
    return (v > 0) & v.isfinite()


@dataclass(frozen=True)
class Hyperparameter:
    """One hyperparameter as every driver shows and checks it.

    ``symbol`` is the notes' symbol (α, ρ₁, …), ``meaning`` a few words for help texts,
    ``test``/``allowed`` its domain as a check and as words for an error message. ``scale`` says
    how a grid or a slider spaces its values: ``"log"`` (α, ε), ``"decay"`` (ρ: 0, 0.9, 0.99, …,
    i.e. evenly in −log₁₀(1 − ρ)) or ``"linear"``. A ``switch`` is a yes/no choice (Adam's
    bias correction): not a number, not swept, fixed inside a compiled kernel. ``span`` is the
    range a slider shows, in the scale's own units (log₁₀ α for ``"log"``, −log₁₀(1 − ρ) for
    ``"decay"``, the value for ``"linear"``).
    """

    name: str
    symbol: str
    meaning: str
    test: Callable[[Tensor], Tensor] | None
    allowed: str
    scale: str = "linear"
    switch: bool = False
    span: tuple[float, float] = (0.0, 1.0)


HYPERPARAMETERS: dict[str, Hyperparameter] = {
    h.name: h
    for h in (
        Hyperparameter(
            "lr", "α", "learning rate", _nonnegative, "a finite number >= 0", "log", span=(-5, 1)
        ),
        Hyperparameter("rho", "ρ", "decay", _unit, "in [0, 1)", "decay", span=(0, 3)),
        Hyperparameter(
            "rho1", "ρ₁", "decay of the first moment s", _unit, "in [0, 1)", "decay", span=(0, 3)
        ),
        Hyperparameter(
            "rho2", "ρ₂", "decay of the second moment r", _unit, "in [0, 1)", "decay", span=(0, 4)
        ),
        Hyperparameter(
            "eps", "ε", "added outside √r", _positive, "a finite number > 0", "log", span=(-10, 0)
        ),
        Hyperparameter(
            "damping", "λ", "Newton's damping", _nonnegative, "a finite number >= 0", span=(0, 5)
        ),
        Hyperparameter(
            "weight_decay",
            "δ",
            "decoupled weight decay",
            _nonnegative,
            "a finite number >= 0",
            span=(0, 0.2),
        ),
        Hyperparameter(
            "bias_correction",
            "ŝ, r̂",
            "Adam's bias correction",
            None,
            "True or False",
            switch=True,
        ),
    )
}

# The allowed values of every numeric hyperparameter, as (test, words for the error message).
DOMAINS: dict[str, tuple[Callable[[Tensor], Tensor], str]] = {
    h.name: (h.test, h.allowed) for h in HYPERPARAMETERS.values() if h.test is not None
}


def check(name: str, value: object) -> None:
    """Raise a one-sentence error if hyperparameter ``name`` has a value outside its domain."""
    spec = HYPERPARAMETERS[name]
    if spec.switch:
        if not isinstance(value, bool):
            raise UserTypeError(f"{name} must be True or False, got {value!r}.")
        return
    if isinstance(value, float | int) and not isinstance(value, bool):
        _check_number(name, value)  # a number met before is not tested again
        return
    _check_value(name, value)


@functools.lru_cache(maxsize=4096)
def _check_number(name: str, value: float) -> None:
    _check_value(name, value)


def _check_value(name: str, value: object) -> None:
    spec = HYPERPARAMETERS[name]
    test, allowed = spec.test, spec.allowed
    if isinstance(value, bool) or not isinstance(value, int | float | Tensor):
        raise UserTypeError(
            f"{name} must be {allowed}, got {value!r} of type {type(value).__name__}."
        )
    try:
        v = torch.as_tensor(value, dtype=torch.float64)
    except (OverflowError, RuntimeError):  # an int past float64's range, as 10**400
        raise UserValueError(
            f"{name} must be {allowed}, got an integer too large for a float."
        ) from None
    if v.is_complex() or not bool(test(v).all()) or bool(v.isnan().any()):
        shown = value if not isinstance(value, Tensor) or value.numel() == 1 else v.flatten()
        if isinstance(shown, Tensor) and shown.numel() == 1:
            shown = shown.item()
        raise UserValueError(f"{name} must be {allowed}, got {shown}.")


@dataclass(frozen=True)
class Rule:
    """One update rule and everything a driver needs to run, show and tune it.

    The equation: ``update`` (a function above), called through :meth:`apply`. ``state`` names
    the buffers shaped like θ, each starting at zero (:meth:`initial_state`); ``counts_steps``
    says the rule takes the step counter k = 1, 2, …; ``needs_hessian`` that it takes H as well
    as g. ``hyper`` maps each hyperparameter (a key of :data:`HYPERPARAMETERS`) to its default,
    ``None`` where the user must give it. ``r_hat`` gives, for adaptive rules, the r that enters
    α/(√r + ε) at step k, made from the state (the effective per-coordinate step size).

    How it is shown: ``label`` (in sentences and legends), ``equation`` (the notes' number,
    None for a rule from beyond the notes), ``formula`` (one line of the update), ``color``
    (figures and the playground). Defaults beyond ``hyper``: ``train_lr``, a usual α for the
    notes' network on a standardized data set, and ``landscape_lr``, an α that behaves on the
    playground's Rosenbrock from its three starts over 500 steps.
    """

    name: str
    update: Callable[..., None]
    state: tuple[str, ...]
    hyper: dict[str, object]
    counts_steps: bool = False
    needs_hessian: bool = False
    r_hat: Callable[[dict[str, Tensor], dict[str, object], int | Tensor], Tensor] | None = field(
        default=None, repr=False
    )
    label: str = ""
    equation: str | None = None
    formula: str = ""
    color: str = "#000000"
    train_lr: float | None = None
    landscape_lr: float | None = None

    def apply(
        self,
        theta: Tensor,
        g: Tensor,
        state: dict[str, Tensor],
        hyper: dict[str, object],
        k: int | Tensor | None = None,
        H: Tensor | None = None,
    ) -> None:
        """One step of the rule, in place: the one way every driver calls it.

        ``state`` holds the rule's buffers by name (as :meth:`initial_state` made them),
        ``hyper`` its hyperparameters (numbers, or tensors broadcasting against θ), ``k`` the
        step counter of this step (rules that count steps), ``H`` the Hessian (Newton)."""
        if self.counts_steps and k is None:
            raise ValueError(f"k must be given for {self.name}, got None.")
        if self.needs_hessian and H is None:
            raise ValueError(f"H must be given for {self.name}, got None.")
        first = (theta, g, H) if self.needs_hessian else (theta, g)
        steps = {"k": k} if self.counts_steps else {}
        self.update(*first, *(state[name] for name in self.state), **steps, **hyper)

    def initial_state(self, like: Tensor) -> dict[str, Tensor]:
        """The rule's state before its first step: each buffer zeros shaped like ``like``."""
        return {
            name: torch.zeros_like(like, memory_format=torch.preserve_format) for name in self.state
        }

    @property
    def numbers(self) -> list[str]:
        """The numeric hyperparameters, in the rule's order (what a kernel takes as tensors)."""
        return [n for n in self.hyper if not HYPERPARAMETERS[n].switch]

    @property
    def switches(self) -> list[str]:
        """The yes/no hyperparameters (fixed inside a compiled kernel)."""
        return [n for n in self.hyper if HYPERPARAMETERS[n].switch]

    @property
    def adaptive(self) -> bool:
        """Whether the rule divides by √r + ε (it has an effective step size)."""
        return self.r_hat is not None

    def effective_step(
        self, state: dict[str, Tensor], hyper: dict[str, object], k: int | Tensor
    ) -> Tensor:
        """α / (√r + ε) per coordinate after step k (adaptive rules only)."""
        if self.r_hat is None:
            adaptive = ", ".join(r.name for r in RULES.values() if r.adaptive)
            raise ValueError(f"rule must be adaptive ({adaptive}), got {self.name!r}.")
        return adaptive_step(hyper["lr"], self.r_hat(state, hyper, k), hyper["eps"])


def _adam_r_hat(state: dict[str, Tensor], hyper: dict[str, object], k: int | Tensor) -> Tensor:
    if hyper.get("bias_correction", True):
        return bias_corrected(state["r"], hyper["rho2"], k)
    return state["r"]


def _r(state: dict[str, Tensor], hyper: dict[str, object], k: int | Tensor) -> Tensor:
    return state["r"]


# Colours: matplotlib's tab10, in the order the notes introduce the rules, then the rules from
# beyond the notes (equation None: not among the claims' first-order rules).
RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in (
        Rule(
            "gd",
            gd,
            (),
            {"lr": None},
            label="GD",
            equation="E1",
            formula="θ ← θ − αg",
            color="#1f77b4",
            train_lr=0.1,
            landscape_lr=1.5e-3,
        ),
        Rule(
            "momentum",
            momentum,
            ("s",),
            {"lr": None, "rho": 0.9},
            label="momentum",
            equation="E2",
            formula="s ← ρs − αg; θ ← θ + s",
            color="#ff7f0e",
            train_lr=0.01,
            landscape_lr=5e-4,
        ),
        Rule(
            "adagrad",
            adagrad,
            ("r",),
            {"lr": None, "eps": 1e-7},
            r_hat=_r,
            label="AdaGrad",
            equation="E3",
            formula="r ← r + g⊙g; θ ← θ − α/(√r+ε) ⊙ g",
            color="#2ca02c",
            train_lr=0.01,
            landscape_lr=0.5,
        ),
        Rule(
            "rmsprop",
            rmsprop,
            ("r",),
            {"lr": None, "rho": 0.9, "eps": 1e-6},
            r_hat=_r,
            label="RMSProp",
            equation="E4",
            formula="r ← ρr + (1−ρ) g⊙g; θ ← θ − α/(√r+ε) ⊙ g",
            color="#d62728",
            train_lr=1e-3,
            landscape_lr=0.01,
        ),
        Rule(
            "adam",
            adam,
            ("s", "r"),
            {"lr": 1e-3, "rho1": 0.9, "rho2": 0.999, "eps": 1e-8, "bias_correction": True},
            counts_steps=True,
            r_hat=_adam_r_hat,
            label="Adam",
            equation="E5",
            formula="θ ← θ − α/(√r̂+ε) ⊙ ŝ",
            color="#9467bd",
            train_lr=1e-3,
            landscape_lr=0.05,
        ),
        Rule(
            "nesterov",
            nesterov,
            ("s",),
            {"lr": None, "rho": 0.9},
            label="Nesterov",
            formula="s ← ρs − αg; θ ← θ + ρs − αg",
            color="#e377c2",
            train_lr=0.01,
            landscape_lr=5e-4,
        ),
        Rule(
            "adamw",
            adamw,
            ("s", "r"),
            {
                "lr": 1e-3,
                "rho1": 0.9,
                "rho2": 0.999,
                "eps": 1e-8,
                "weight_decay": 1e-2,
                "bias_correction": True,
            },
            counts_steps=True,
            r_hat=_adam_r_hat,
            label="AdamW",
            formula="θ ← θ − αδθ; θ ← θ − α/(√r̂+ε) ⊙ ŝ",
            color="#7f7f7f",
            train_lr=1e-3,
            landscape_lr=0.05,
        ),
        Rule(
            "newton",
            newton,
            (),
            {"lr": 1.0, "damping": 0.0},
            needs_hessian=True,
            label="Newton",
            equation="E7",
            formula="θ ← θ − α(H+λI)⁻¹g",
            color="#8c564b",
            landscape_lr=1.0,
        ),
    )
}


def get(name: str) -> Rule:
    """The rule called ``name`` (case-insensitive)."""
    try:
        return RULES[name.lower()]
    except KeyError:
        allowed = ", ".join(RULES)
        raise UserValueError(f"optimizer must be one of {allowed}, got {name!r}.") from None


def names() -> list[str]:
    """The names of the registered rules."""
    return list(RULES)


__all__ = [
    "HYPERPARAMETERS",
    "Hyperparameter",
    "Rule",
    "RULES",
    "adagrad",
    "adam",
    "adamw",
    "adaptive_step",
    "adaptive_step_",
    "bias_corrected",
    "check",
    "gd",
    "get",
    "momentum",
    "names",
    "nesterov",
    "newton",
    "newton_direction",
    "rmsprop",
]
