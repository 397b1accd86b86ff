"""Saddle points (C8c): ∇f = 0 with a Hessian that curves up along some directions and down
(or not at all) along others."""

from __future__ import annotations

from firstorder.landscapes.surface import make


def saddle():
    """f = x² − y²: a saddle at 0 (Hessian diag(2, −2)); unbounded below, so no minima."""
    return make(
        "saddle",
        lambda p: p[..., 0] ** 2 - p[..., 1] ** 2,
        2,
        "x² − y², saddle at 0, unbounded below: escaped once |y| > 2",
        ("saddle",),
        [((0.0, 0.0), "saddle")],
        ((-2.0, 2.0), (-2.0, 2.0)),
        ((1.0, 1e-3), (-1.5, 1e-2), (1.0, -1e-6)),
        refine=False,
        bound=2.0,
    )


def monkey_saddle():
    """f = x³ − 3xy²: a degenerate saddle at 0 (zero Hessian), three valleys, unbounded below."""
    return make(
        "monkey_saddle",
        lambda p: p[..., 0] ** 3 - 3 * p[..., 0] * p[..., 1] ** 2,
        2,
        "x³ − 3xy², degenerate saddle at 0 with zero Hessian, unbounded below",
        ("saddle", "flat"),
        [((0.0, 0.0), "degenerate")],
        ((-2.0, 2.0), (-2.0, 2.0)),
        ((1.0, 1e-3), (1.0, 0.0), (-0.5, 0.8)),
        refine=False,
        bound=2.0,
    )


def double_well():
    """f = ½x² + ¼y⁴ − ½y²: a saddle at 0 between two minima (0, ±1) with f = −¼."""
    return make(
        "double_well",
        lambda p: 0.5 * p[..., 0] ** 2 + 0.25 * p[..., 1] ** 4 - 0.5 * p[..., 1] ** 2,
        2,
        "saddle at 0 (Hessian diag(1, −1)) between two equal minima (0, ±1)",
        ("saddle",),
        [((0.0, 1.0), "minimum"), ((0.0, -1.0), "minimum"), ((0.0, 0.0), "saddle")],
        ((-2.0, 2.0), (-2.0, 2.0)),
        ((2.0, 1e-3), (-1.5, 1e-2), (2.0, -1e-6)),
        refine=False,
    )
