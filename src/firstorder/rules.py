"""The update rules of the notes, each written exactly once.

This module is the one place where an equation of the notes lives (E1–E5 and E7 of
CLAIMS.md). Every
rule updates θ and its state buffers in place, in the notes' own symbols:

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

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

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


# --- what each rule needs: a small registry the optimizers and the batched engine share ---

# The allowed values of every hyperparameter, as (test, words for the error message).
DOMAINS: dict[str, tuple[Callable[[Tensor], Tensor], str]] = {
    "lr": (lambda v: (v >= 0) & v.isfinite(), "a finite number >= 0"),
    "rho": (lambda v: (v >= 0) & (v < 1), "in [0, 1)"),
    "rho1": (lambda v: (v >= 0) & (v < 1), "in [0, 1)"),
    "rho2": (lambda v: (v >= 0) & (v < 1), "in [0, 1)"),
    "eps": (lambda v: (v > 0) & v.isfinite(), "a finite number > 0"),
    "damping": (lambda v: (v >= 0) & v.isfinite(), "a finite number >= 0"),
}


def check(name: str, value: object) -> None:
    """Raise a one-sentence error if hyperparameter ``name`` has a value outside its domain."""
    if name == "bias_correction":
        if not isinstance(value, bool):
            raise TypeError(f"bias_correction must be True or False, got {value!r}.")
        return
    test, allowed = DOMAINS[name]
    if isinstance(value, bool) or not isinstance(value, int | float | Tensor):
        raise TypeError(f"{name} must be {allowed}, got {value!r} of type {type(value).__name__}.")
    try:
        v = torch.as_tensor(value, dtype=torch.float64)
    except (OverflowError, RuntimeError):  # an int past float64's range, as 10**400
        raise ValueError(
            f"{name} must be {allowed}, got an integer too large for a float."
        ) from None
    if v.is_complex() or not bool(test(v).all()) or bool(v.isnan().any()):
        shown = value if not isinstance(value, Tensor) or value.numel() == 1 else v.flatten()
        if isinstance(shown, Tensor) and shown.numel() == 1:
            shown = shown.item()
        raise ValueError(f"{name} must be {allowed}, got {shown}.")


@dataclass(frozen=True)
class Rule:
    """How to run one update rule: its function, its state buffers and its hyperparameters.

    ``state`` lists the buffers shaped like θ that start at zero; ``hyper`` maps each
    hyperparameter to its default (``None``: the user must give it); ``counts_steps`` says the
    rule takes the step counter k; ``needs_hessian`` that it takes H as well as g; ``r_hat``
    gives, for adaptive rules, the r that enters α/(√r + ε) at step k, made from the state's r
    alone (for diagnostics: the effective per-coordinate step size).
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

    def effective_step(
        self, state: dict[str, Tensor], hyper: dict[str, object], k: int | Tensor
    ) -> Tensor:
        """α / (√r + ε) per coordinate after step k (adaptive rules only)."""
        if self.r_hat is None:
            raise ValueError(f"rule must be adaptive (adagrad, rmsprop, adam), got {self.name!r}.")
        return adaptive_step(hyper["lr"], self.r_hat(state, hyper, k), hyper["eps"])


def _adam_r_hat(state: dict[str, Tensor], hyper: dict[str, object], k: int | Tensor) -> Tensor:
    if hyper.get("bias_correction", True):
        return bias_corrected(state["r"], hyper["rho2"], k)
    return state["r"]


RULES: dict[str, Rule] = {
    "gd": Rule("gd", gd, (), {"lr": None}),
    "momentum": Rule("momentum", momentum, ("s",), {"lr": None, "rho": 0.9}),
    "adagrad": Rule(
        "adagrad", adagrad, ("r",), {"lr": None, "eps": 1e-7}, r_hat=lambda st, h, k: st["r"]
    ),
    "rmsprop": Rule(
        "rmsprop",
        rmsprop,
        ("r",),
        {"lr": None, "rho": 0.9, "eps": 1e-6},
        r_hat=lambda st, h, k: st["r"],
    ),
    "adam": Rule(
        "adam",
        adam,
        ("s", "r"),
        {"lr": 1e-3, "rho1": 0.9, "rho2": 0.999, "eps": 1e-8, "bias_correction": True},
        counts_steps=True,
        r_hat=_adam_r_hat,
    ),
    "newton": Rule("newton", newton, (), {"lr": 1.0, "damping": 0.0}, needs_hessian=True),
}


def get(name: str) -> Rule:
    """The rule called ``name`` (case-insensitive)."""
    try:
        return RULES[name.lower()]
    except KeyError:
        allowed = ", ".join(RULES)
        raise ValueError(f"optimizer must be one of {allowed}, got {name!r}.") from None


def names() -> list[str]:
    """The names of the registered rules."""
    return list(RULES)


__all__ = [
    "Rule",
    "RULES",
    "adagrad",
    "adam",
    "adaptive_step",
    "adaptive_step_",
    "bias_corrected",
    "check",
    "gd",
    "get",
    "momentum",
    "names",
    "newton",
    "newton_direction",
    "rmsprop",
]
