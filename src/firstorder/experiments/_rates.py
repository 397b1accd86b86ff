"""Convergence rates measured from the real optimizers' iterates, not from a formula.

On a quadratic f = ½ eᵀHe (e = θ − θ*), GD and momentum are linear maps of the state
z_k = (e_k, e_{k−1}) (E2: s_k = θ_k − θ_{k−1}, so θ_{k+1} = θ_k + ρ(θ_k − θ_{k−1}) − α H e_k, and
s_0 = 0 means e_{−1} = e_0). The per-step rate is the spectral radius of that map M. Here M is
*fitted* to the iterates the engine produced (least squares over a few steps from several starts,
z_{k+1} = M z_k), so the rate is a measurement of the real rule, and it is exact where a rate read
off a loss curve is biased by the horizon, the phase of an oscillation and the k·rᵏ factor of a
double root. :func:`goh` gives the closed-form optimum the measured rates are held against.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def spectral_radius(x: Tensor, center: Tensor | None = None) -> Tensor:
    """The spectral radius of the linear map z_k ↦ z_{k+1} fitted to iterates x [T+1, C, B, d].

    One radius per configuration C; the B starts and T steps give T·B equations for the
    (2d)² entries of M, so T·B ≥ 2d (and starts in general position) are needed.
    """
    T1, C, B, d = x.shape
    if (T1 - 1) * B < 2 * d:
        raise ValueError(f"iterates must give at least {2 * d} states, got {(T1 - 1) * B}.")
    e = x if center is None else x - center.to(x)
    z = torch.cat([e, torch.cat([e[:1], e[:-1]])], dim=-1)  # [T+1, C, B, 2d]
    z0 = z[:-1].permute(1, 0, 2, 3).reshape(C, (T1 - 1) * B, 2 * d)
    z1 = z[1:].permute(1, 0, 2, 3).reshape(C, (T1 - 1) * B, 2 * d)
    # each row: z_{k+1}ᵀ = z_kᵀ Mᵀ; scale rows to unit size so late, small states count too
    scale = z0.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
    mt = torch.linalg.lstsq(z0 / scale, z1 / scale).solution
    return torch.linalg.eigvals(mt).abs().amax(-1)


def goh(kappa: float) -> dict[str, float]:
    """The optimal heavy-ball (E2) and GD settings on a quadratic with eigenvalues in [1/κ, 1]
    (Goh 2017): α* = (2/(√λ_min + √λ_max))², ρ* = ((√κ − 1)/(√κ + 1))², rate (√κ − 1)/(√κ + 1);
    GD at its best α = 2/(λ_min + λ_max) has the rate (κ − 1)/(κ + 1). Shared by R1 and RT."""
    l_min, l_max = 1 / kappa, 1.0
    return {
        "alpha": (2 / (math.sqrt(l_min) + math.sqrt(l_max))) ** 2,
        "rho": ((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)) ** 2,
        "rate": (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1),
        "gd_alpha": 2 / (l_min + l_max),
        "gd_rate": (kappa - 1) / (kappa + 1),
    }
