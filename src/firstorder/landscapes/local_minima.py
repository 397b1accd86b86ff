"""Local minima (C8d): surfaces with several minima, some much worse than the global one."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from firstorder.landscapes.surface import (
    check_dim,
    cycle,
    grad_hess,
    make,
    require,
    roots_1d,
    separable_critical,
)


def two_wells(*, depths=(2.0, 0.6), sigma=0.6, c=0.2):
    """f(x) = ½ c ‖x‖² − d₁ exp(−‖x − μ₁‖²/(2σ²)) − d₂ exp(−‖x − μ₂‖²/(2σ²)).

    A bowl with a deep well at μ₁ = (1.5, 0.5) (global minimum) and a shallow one at
    μ₂ = (−1.5, −0.5) (a local minimum much worse than the global one), a saddle in between.
    """
    require(
        len(depths) == 2 and all(0 < d < math.inf for d in depths),
        "depths",
        depths,
        "two positive numbers (d₁, d₂)",
    )
    require(0 < sigma < math.inf, "sigma", sigma, "positive and finite")
    require(0 < c < math.inf, "c", c, "positive and finite")
    mu = ((1.5, 0.5), (-1.5, -0.5))

    def fn(x: Tensor) -> Tensor:
        f = 0.5 * c * (x**2).sum(-1)
        for d, m in zip(depths, mu, strict=True):
            f = f - d * torch.exp(-((x - x.new_tensor(m)) ** 2).sum(-1) / (2 * sigma**2))
        return f

    # the saddle lies near the highest point of the segment between the wells
    ts = torch.linspace(0, 1, 201, dtype=torch.float64)[:, None]
    seg = ts * torch.tensor(mu[0]) + (1 - ts) * torch.tensor(mu[1])
    top = tuple(seg[fn(seg).argmax()].tolist())
    f = make(
        "two_wells",
        fn,
        2,
        "bowl with a deep (global) and a shallow (much worse, local) Gaussian well",
        ("local minima", "saddle"),
        [(mu[0], "minimum"), (mu[1], "minimum"), (top, "saddle")],
        ((-4.0, 4.0), (-4.0, 4.0)),
        ((-3.0, 2.0), (-2.5, -2.5), (0.5, 3.0), (3.0, -2.0)),
    )
    # too shallow a well forms no minimum: Newton then lands twice on one point, or on a saddle
    xs = [p.x for p in f.minima + f.saddles]
    ok = all(math.dist(p, q) > 1e-3 for i, p in enumerate(xs) for q in xs[:i])
    hessians = grad_hess(fn, torch.tensor([p.x for p in f.minima], dtype=torch.float64))[1]
    ok = ok and bool(torch.linalg.eigvalsh(hessians).min() > 0)
    require(ok, "depths", depths, "deep enough (relative to c and sigma) to form two wells")
    return f


def himmelblau():
    """f = (x² + y − 11)² + (x + y² − 7)²: four minima with f = 0, one maximum, four saddles."""

    def fn(p: Tensor) -> Tensor:
        x, y = p[..., 0], p[..., 1]
        return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2

    critical = [
        ((3.0, 2.0), "minimum"),
        ((-2.805118, 3.131312), "minimum"),
        ((-3.779310, -3.283186), "minimum"),
        ((3.584428, -1.848127), "minimum"),
        ((-0.270845, -0.923039), "maximum"),
        ((0.086678, 2.884255), "saddle"),
        ((-3.073026, -0.081353), "saddle"),
        ((3.385154, 0.073852), "saddle"),
        ((-0.127961, -1.953715), "saddle"),
    ]
    return make(
        "himmelblau",
        fn,
        2,
        "four equally good minima (f = 0): here a local minimum is as good as the global one",
        ("local minima", "saddle"),
        critical,
        ((-5.0, 5.0), (-5.0, 5.0)),
        ((0.0, 0.0), (-1.0, -4.5), (4.5, 4.5), (-4.5, 0.5)),
    )


def rastrigin(*, A=10.0, dim=2):
    """f(x) = A d + Σᵢ (x_i² − A cos 2πx_i): a bowl covered in local minima, f* = 0 at 0."""
    require(1 <= A < math.inf, "A", A, ">= 1 and finite (so the nearest local minima exist)")
    check_dim(dim)

    def f1(x: Tensor) -> Tensor:
        return x**2 - A * torch.cos(2 * math.pi * x)

    def fn(x: Tensor) -> Tensor:
        return A * dim + f1(x).sum(-1)

    r_half, r_one = roots_1d(f1, [0.5, 1.0])
    roots = [(-r_one, "minimum"), (-r_half, "maximum"), (0.0, "minimum")]
    roots += [(r_half, "maximum"), (r_one, "minimum")]
    return make(
        "rastrigin",
        fn,
        dim,
        "bowl covered by a grid of local minima near the integers, global minimum f = 0 at 0",
        ("local minima", "saddle"),
        separable_critical(roots, 0.0, dim),
        ((-5.12, 5.12), (-5.12, 5.12)),
        [cycle(s, dim) for s in ((4.2, 3.1), (-2.6, 4.4), (-3.5, -1.4))],
        refine=False,  # each coordinate is a refined 1-D root already
    )


def styblinski_tang(*, dim=2):
    """f(x) = ½ Σᵢ (x_i⁴ − 16 x_i² + 5 x_i): 2ᵈ minima, global at x_i ≈ −2.9035 (−39.166 d)."""
    check_dim(dim)

    def f1(x: Tensor) -> Tensor:
        return 0.5 * (x**4 - 16 * x**2 + 5 * x)

    def fn(x: Tensor) -> Tensor:
        return f1(x).sum(-1)

    lo, mid, hi = roots_1d(f1, [-2.9035, 0.1567, 2.7468])
    roots = [(lo, "minimum"), (mid, "maximum"), (hi, "minimum")]
    return make(
        "styblinski_tang",
        fn,
        dim,
        "2ᵈ minima of different depth; the one at x_i ≈ +2.75 is 14 per coordinate worse",
        ("local minima", "saddle"),
        separable_critical(roots, lo, dim),
        ((-5.0, 5.0), (-5.0, 5.0)),
        [cycle(s, dim) for s in ((4.0, 4.0), (1.0, 3.5), (-1.0, -4.5))],
        refine=False,
    )


def six_hump_camel():
    """f = (4 − 2.1x² + x⁴/3) x² + xy + (−4 + 4y²) y²: two global minima −1.0316, four local."""

    def fn(p: Tensor) -> Tensor:
        x, y = p[..., 0], p[..., 1]
        return (4 - 2.1 * x**2 + x**4 / 3) * x**2 + x * y + (-4 + 4 * y**2) * y**2

    # f(−x, −y) = f(x, y): the critical points come in pairs ±p (and 0 itself)
    half = [
        ((0.0898420, -0.7126564), "minimum"),
        ((1.7036067, -0.7960836), "minimum"),
        ((1.6071048, 0.5686515), "minimum"),
        ((1.2302299, 0.1623346), "maximum"),
        ((1.1092053, -0.7682681), "saddle"),
        ((1.2960703, 0.6050844), "saddle"),
        ((1.6380680, 0.2286741), "saddle"),
    ]
    critical = [(p, k) for (x, y), k in half for p in ((x, y), (-x, -y))]
    return make(
        "six_hump_camel",
        fn,
        2,
        "two global minima (f = −1.0316) and four worse local minima, saddles between",
        ("local minima", "saddle"),
        critical + [((0.0, 0.0), "saddle")],
        ((-2.2, 2.2), (-1.2, 1.2)),
        ((-1.9, 1.0), (1.9, -1.0), (-1.5, -1.0), (1.2, 1.1)),
    )
