"""Flat areas (C8b): where ‖∇f‖ is tiny far from any minimum, so gradient descent hardly moves."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from firstorder.landscapes.surface import check_dim, make, require


def plateau(*, sigma=1.0, dim=2):
    """f(x) = 1 − exp(−‖x‖² / (2σ²)): a Gaussian well inside a flat plain, f ∈ [0, 1).

    ‖∇f‖ = (r/σ²) exp(−r²/(2σ²)) at radius r; at the starts (r = 5σ) that is 1.9e-5/σ, below
    1e-4 of the range of f (for σ ≥ 0.2): gradient descent hardly moves there.
    """
    require(0 < sigma < math.inf, "sigma", sigma, "positive and finite")
    check_dim(dim)

    def fn(x: Tensor) -> Tensor:
        return 1 - torch.exp(-(x**2).sum(-1) / (2 * sigma**2))

    units = ((1.0, 0.0), (0.6, 0.8), (-0.8, -0.6))
    return make(
        "plateau",
        fn,
        dim,
        "flat plain, ‖∇f‖ ≈ 2e-5 at the starts 5σ out, around a Gaussian well with f* = 0 at 0",
        ("flat",),
        [((0.0,) * dim, "minimum")],
        ((-6.0 * sigma, 6.0 * sigma), (-6.0 * sigma, 6.0 * sigma)),
        [tuple(5 * sigma * c for c in u) + (0.0,) * (dim - 2) for u in units],
        refine=False,
    )
