"""Noisy gradients, as a minibatch gives them: the real optimizers fed g = λ⊙θ + σξ.

f(θ) = ½ Σ λᵢθᵢ² with a diagonal H = diag(λ) (λ may be negative: a saddle). Every
configuration (one α each, as a tensor [C, 1, 1] the rules broadcast) and every start steps
together as one parameter tensor θ [C, B, d]: one optimizer, one update a step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def noisy_quadratic(
    optimizer: type[torch.optim.Optimizer],
    lam: Tensor,
    theta0: Tensor,
    lrs: list[float],
    steps: int,
    sigma: float,
    gen: torch.Generator,
    schedule: Callable[[int], float] | None = None,
    **hyper: object,
) -> tuple[Tensor, Tensor]:
    """Run ``optimizer`` on the noisy quadratic from the starts theta0 [B, d] at every α.

    Returns f(θ_t) [T+1, C, B] and θ_t [T+1, C, B, d]; ``schedule(t)`` multiplies α at step t
    (η(t) of E6)."""
    theta = theta0.to(torch.float64).expand(len(lrs), *theta0.shape).clone()
    lr0 = torch.tensor(lrs, dtype=torch.float64)[:, None, None]
    opt = optimizer([theta], lr=lr0.clone(), **hyper)
    x = torch.empty(steps + 1, *theta.shape, dtype=torch.float64)
    x[0] = theta
    for t in range(steps):
        if schedule is not None:
            opt.param_groups[0]["lr"] = lr0 * schedule(t)
        noise = torch.randn(theta.shape, generator=gen, dtype=torch.float64)
        theta.grad = lam * theta + sigma * noise
        opt.step()
        x[t + 1] = theta
    f = 0.5 * (lam * x**2).sum(-1)
    return f, x
