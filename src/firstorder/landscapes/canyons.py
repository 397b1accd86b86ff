"""Canyons (C8a): ill-conditioned Hessians, κ = λ_max/λ_min ≫ 1 (E10). The exact quadratic
model of E9, d2l's canyon, Rosenbrock's curved valley, Beale and Booth."""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import Tensor

from firstorder.landscapes.surface import check_dim, cycle, make, require


def _rotation(dim: int, angle: float, seed: int | None) -> Tensor:
    """Q with orthonormal columns: a 2-D rotation by `angle` degrees, or a seeded random one."""
    if seed is not None:
        gen = torch.Generator().manual_seed(seed)
        q, r = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
        return q * torch.sign(torch.diagonal(r))  # the sign fix makes Q Haar-distributed
    q = torch.eye(dim, dtype=torch.float64)
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    q[:2, :2] = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    return q


def _spectrum(eigenvalues, kappa, lambda_max, dim) -> tuple[float, ...]:
    """The eigenvalues λ of :func:`quadratic`'s H: as given, or ``dim`` of them spaced
    geometrically from λ_max/κ to λ_max."""
    if eigenvalues is not None:
        lam = tuple(float(v) for v in eigenvalues)
        require(
            len(lam) >= 2 and all(0 < v < math.inf for v in lam),
            "eigenvalues",
            eigenvalues,
            "a sequence of at least 2 positive finite numbers",
        )
        return lam
    require(1 <= kappa < math.inf, "kappa", kappa, ">= 1 and finite")
    require(0 < lambda_max < math.inf, "lambda_max", lambda_max, "positive and finite")
    check_dim(dim)
    return tuple(lambda_max * kappa ** (i / (dim - 1) - 1) for i in range(dim))


def quadratic(
    *, eigenvalues=None, kappa=10.0, lambda_max=1.0, dim=2, angle=0.0, seed=None, center=None
):
    """f(x) = ½ (x − x*)ᵀ H (x − x*) with H = Q diag(λ) Qᵀ, the quadratic model E9 made exact.

    λ are `eigenvalues` (ascending or not), or, if those are not given, `dim` values spaced
    geometrically from λ_max/κ to λ_max, so κ(H) = κ (E10). Column i of Q is the eigenvector of
    λ_i: the rotation by `angle` degrees (dim 2), or a seeded random rotation (`seed`).
    """
    lam = _spectrum(eigenvalues, kappa, lambda_max, dim)
    dim = len(lam)
    require(math.isfinite(angle), "angle", angle, "a finite number of degrees")
    require(
        seed is None or (isinstance(seed, int) and angle == 0),
        "seed",
        seed,
        "None or an int, and not combined with a nonzero angle",
    )
    x0 = torch.zeros(dim, dtype=torch.float64) if center is None else torch.tensor(center)
    require(tuple(x0.shape) == (dim,), "center", center, f"None or {dim} numbers")
    x0 = x0.double()
    q = _rotation(dim, angle, seed)
    H = q @ torch.diag(torch.tensor(lam, dtype=torch.float64)) @ q.T

    def fn(x: Tensor) -> Tensor:
        d = x - x0.to(x)
        return 0.5 * ((d @ H.to(x)) * d).sum(-1)

    # starts far out along the flattest eigenvector and a bit along the others
    u = [(-4.0,) + (1.0,) * (dim - 1), tuple(3.0 * (-1) ** i for i in range(dim))]
    starts = [tuple((q @ torch.tensor(v, dtype=torch.float64) + x0).tolist()) for v in u]
    r = max(
        5.0,
        math.ceil(
            1.2 * max(abs(a - b) for s in starts for a, b in zip(s, x0.tolist(), strict=True))
        ),
    )
    c0, c1 = x0[0].item(), x0[1].item()
    params = dict(eigenvalues=lam, kappa=max(lam) / min(lam), lambda_max=max(lam), dim=dim)
    params.update(angle=angle, seed=seed, center=tuple(x0.tolist()))
    return make(
        "quadratic",
        fn,
        dim,
        f"½(x−x*)ᵀH(x−x*), κ = {max(lam) / min(lam):.4g}: the exact quadratic model (E9)",
        ("canyon",) if max(lam) / min(lam) > 1 else (),
        [(tuple(x0.tolist()), "minimum")],
        ((c0 - r, c0 + r), (c1 - r, c1 + r)),  # centred on x*, wide enough for the starts
        starts,
        refine=False,
        params=params,
    )


def canyon():
    """d2l's canyon f = 0.1 x₁² + 2 x₂² = ½ xᵀ diag(0.2, 4) x, axis-aligned, κ = 20."""
    return replace(
        quadratic(eigenvalues=(0.2, 4.0)),
        name="canyon",
        description="0.1 x₁² + 2 x₂² (d2l), axis-aligned canyon, κ = 20",
        window=((-6.0, 6.0), (-3.0, 3.0)),
        starts=((-5.0, -2.0), (-5.0, 2.0), (5.0, 1.0)),
        bound=None,  # the default for this window
    )


def rotated_canyon(*, angle=45.0):
    """The canyon rotated by `angle` degrees: same κ = 20, no longer aligned with the axes."""
    f = quadratic(eigenvalues=(0.2, 4.0), angle=angle)
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    starts = [(c * a - s * b, s * a + c * b) for a, b in ((-5.0, -2.0), (-5.0, 2.0), (5.0, 1.0))]
    return replace(
        f,
        name="rotated_canyon",
        description=f"the canyon rotated by {angle:g}°, κ = 20 in non-axis directions",
        window=((-6.0, 6.0), (-6.0, 6.0)),
        starts=tuple(starts),
        bound=None,  # the default for this window
    )


def rosenbrock(*, a=1.0, b=100.0, dim=2):
    """f(x) = Σᵢ b (x_{i+1} − x_i²)² + (a − x_i)², a curved canyon with a flat floor.

    2-D minimum (a, a²) with f = 0; Hessian at (1, 1) [[802, −400], [−400, 200]], κ ≈ 2508.
    For 4 ≤ dim ≤ 7 (a = 1, b = 100) there is also a local minimum near (−1, 1, …, 1).
    """
    require(b > 0, "b", b, "positive")
    check_dim(dim)
    require(dim == 2 or a == 1.0, "a", a, "1 when dim > 2 (then the minimum is (1, …, 1))")

    def fn(x: Tensor) -> Tensor:
        xi, xn = x[..., :-1], x[..., 1:]
        return (b * (xn - xi**2) ** 2 + (a - xi) ** 2).sum(-1)

    critical = [([a, a**2] if dim == 2 else [1.0] * dim, "minimum")]
    local = a == 1.0 and b == 100.0 and 4 <= dim <= 7
    if local:
        critical.append(([-1.0] + [1.0] * (dim - 1), "minimum"))
    return make(
        "rosenbrock",
        fn,
        dim,
        "curved narrow valley with a flat floor; κ ≈ 2508 at the minimum (1, 1) for a=1, b=100",
        ("canyon", "flat") + (("local minima",) if local else ()),
        critical,
        ((min(-2.0, a - 1), max(2.0, a + 1)), (min(-1.0, a**2 - 1), max(3.0, a**2 + 1))),
        [cycle(s, dim) for s in ((-1.2, 1.0), (-1.5, 2.5), (1.5, -0.5))],
        refine=local,  # (a, a²) and (1, …, 1) are exact; the local minimum is refined
    )


def beale():
    """f = (1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)², minimum (3, 0.5), f = 0."""

    def fn(p: Tensor) -> Tensor:
        x, y = p[..., 0], p[..., 1]
        return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2

    critical = [
        ((3.0, 0.5), "minimum"),  # exact: every bracket vanishes
        ((0.0, 1.0), "saddle"),  # exact: Hessian [[0, 27.75], [27.75, 0]]
        ((0.1005379, -2.6445136), "saddle"),
    ]
    return make(
        "beale",
        fn,
        2,
        "flat plateau around x = 0 and narrow curved valleys, κ ≈ 162 at the minimum (3, 0.5)",
        ("canyon", "flat", "saddle"),
        critical,
        ((-4.5, 4.5), (-4.5, 4.5)),
        ((1.0, 1.5), (-2.0, 2.0), (2.5, -1.5)),
    )


def booth():
    """f = (x + 2y − 7)² + (2x + y − 5)², a rotated quadratic: H = [[10, 8], [8, 10]], κ = 9."""

    def fn(p: Tensor) -> Tensor:
        x, y = p[..., 0], p[..., 1]
        return (x + 2 * y - 7) ** 2 + (2 * x + y - 5) ** 2

    return make(
        "booth",
        fn,
        2,
        "rotated quadratic, eigenvalues 2 and 18 (κ = 9), minimum (1, 3)",
        ("canyon",),
        [((1.0, 3.0), "minimum")],
        ((-10.0, 10.0), (-10.0, 10.0)),
        ((-8.0, 8.0), (8.0, -8.0), (-8.0, -8.0)),
        refine=False,
    )
