"""The starts, problems and bar shared by the obstacle experiments (C8a–C8d, C11, C12, MB).

Experiments do not import each other: what several of them share lives here. A ring of starts
around a minimum (canyons, plateaus), a quadratic canyon problem started on such a ring, starts
near a saddle's stable manifold, the saddles themselves, and the one bar for "helps".
"""

from __future__ import annotations

import math

import torch

from firstorder import landscapes
from firstorder.experiments import _tuning as tu

HELPS = 1.25  # "helps": ≥ 1.25× fewer steps (a quarter fewer), the same bar for C8a–C8c and MB
R_LO, R_HI = 3.5, 5.0  # starts on the plateau: ‖g‖ from 7.6e-3 down to 1.9e-5
DEPTH = (-8.0, -3.0)  # |θ₂| at the start: 10^-8 … 10^-3 off the stable manifold θ₂ = 0
# landscape, range of |θ₁| at the start, both signs of θ₁?, level of f that counts as escaped
SADDLES = {
    "saddle": ((0.5, 1.5), True, -1.0),  # x² − y²: f < −1 means |θ₂| ≳ 1, well down the slope
    "monkey_saddle": ((0.5, 1.5), False, -1.0),  # x³ − 3xy²: θ₁ > 0 flows into the saddle
    "double_well": ((0.5, 2.0), True, -0.125),  # halfway down from the saddle (0) to a min (−¼)
}


def ring(n: int, gen: torch.Generator, lo: float = 2.0, hi: float = 4.0) -> torch.Tensor:
    """Starts at distance lo…hi from the minimum in uniformly random directions: a distribution
    that does not know the coordinate axes, so only the canyon's orientation differs."""
    r = lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)
    a = 2 * math.pi * torch.rand(n, generator=gen, dtype=torch.float64)
    return torch.stack([r * a.cos(), r * a.sin()], -1)


def canyon_problem(
    seed: int,
    kappa: float,
    angle: float,
    n_tune: int,
    n_fresh: int,
    target: float,
    lam_max: float = 1.0,
    show: torch.Tensor | None = None,
) -> tu.Problem:
    """The quadratic canyon ½θᵀHθ with eigenvalues (λ_max/κ, λ_max), its axes turned by
    ``angle`` degrees, named "κ=…, θ=…°": tuning and fresh starts on a ring 2…4 around the
    minimum, each drawn from its own stream of ``seed``."""
    name = f"κ={kappa:g}, θ={angle:g}°"
    return tu.Problem(
        name,
        landscapes.get("quadratic", eigenvalues=(lam_max / kappa, lam_max), angle=angle),
        ring(n_tune, tu.generator(seed, "tune", name)),
        ring(n_fresh, tu.generator(seed, "fresh", name)),
        target,
        show=show,
    )


def near_manifold(
    n: int, gen: torch.Generator, x_range: tuple[float, float], both: bool
) -> torch.Tensor:
    """Starts close to the saddle's stable manifold θ₂ = 0: θ₁ in ±x_range, |θ₂| log-uniform
    over DEPTH with a random sign."""
    u = torch.rand(n, 4, generator=gen, dtype=torch.float64)
    x = x_range[0] + (x_range[1] - x_range[0]) * u[:, 0]
    if both:
        x = torch.where(u[:, 1] < 0.5, -x, x)
    y = 10 ** (DEPTH[0] + (DEPTH[1] - DEPTH[0]) * u[:, 2])
    y = torch.where(u[:, 3] < 0.5, -y, y)
    return torch.stack([x, y], -1)
