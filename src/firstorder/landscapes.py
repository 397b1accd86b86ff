"""The obstacle course: analytic loss surfaces R(θ) with known geometry.

The notes list four geometric obstacles (C8a–C8d of CLAIMS.md): canyons (ill-conditioned
Hessians), flat areas, saddle points, and local minima that are much worse than the global one.
Every surface here shows one or more of them and knows its critical points: exactly where a
closed form exists, otherwise refined once at construction by Newton's method on ∇f = 0 in
float64 (to ~1e-15), starting from the textbook approximations written below.

    f = landscapes.get("rosenbrock")            # or get("quadratic", kappa=100, dim=10, seed=0)
    f(x)                                         # x: [..., d] -> [...], autograd, float32/64
    f.minima[0], f.saddles, f.maxima, f.window, f.starts, f.obstacles

Only torch and the standard library are imported, so every layer may use this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

OBSTACLES = ("canyon", "flat", "saddle", "local minima")
KINDS = ("minimum", "maximum", "saddle", "degenerate")


@dataclass(frozen=True)
class Point:
    """A critical point (∇f = 0): location x, value f, and kind (one of KINDS)."""

    x: tuple[float, ...]
    f: float
    kind: str


@dataclass(frozen=True, eq=False)
class Landscape:
    """A surface f: ℝᵈ → ℝ with its known geometry; call it like a function.

    ``window`` is ((xmin, xmax), (ymin, ymax)) for contour plots; for dim > 2 it is the plotting
    slice through the first two coordinates and every coordinate ranges over ``window[0]``.
    ``minima`` are sorted by f, the global one first; ``saddles`` also holds degenerate critical
    points (kind "degenerate", zero Hessian eigenvalues). ``bound`` is set on surfaces that are
    unbounded below: a trajectory has escaped once max_i |x_i| > bound.
    """

    name: str
    dim: int
    fn: Callable[[Tensor], Tensor] = field(repr=False)
    description: str
    obstacles: tuple[str, ...]
    minima: list[Point]
    saddles: list[Point]
    maxima: list[Point]
    window: tuple[tuple[float, float], tuple[float, float]]
    starts: tuple[tuple[float, ...], ...]
    params: dict = field(default_factory=dict)
    bound: float | None = None

    def __call__(self, x: Tensor) -> Tensor:
        """f(x) for x of shape [..., dim], returning [...]."""
        if not isinstance(x, Tensor):
            x = torch.as_tensor(x, dtype=torch.get_default_dtype())
        if x.shape[-1] != self.dim:
            raise ValueError(
                f"x must have last dimension {self.dim} for {self.name!r}, got shape "
                f"{tuple(x.shape)}."
            )
        return self.fn(x)

    @property
    def global_min(self) -> Point | None:
        """The global minimum, or None where f is unbounded below."""
        return self.minima[0] if self.minima else None

    @property
    def f_star(self) -> float:
        """min f, −inf where f is unbounded below."""
        return self.minima[0].f if self.minima else -math.inf

    @property
    def x_star(self) -> tuple[float, ...] | None:
        """argmin f (the first one where several minima tie), None where unbounded below."""
        return self.minima[0].x if self.minima else None


# --- construction helpers ---------------------------------------------------------------------


def _require(ok: bool, name: str, value: object, allowed: str) -> None:
    """Raise the one-sentence ValueError of DESIGN.md when a parameter is out of range."""
    if not ok:
        raise ValueError(f"{name} must be {allowed}, got {value!r}.")


def _check_dim(dim: object) -> None:
    _require(isinstance(dim, int) and not isinstance(dim, bool) and dim >= 2, "dim", dim, ">= 2")


def _grad_hess(fn: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """∇f and ∇²f at each row of x [n, d], by plain double backward (the points are independent).

    Plain autograd rather than torch.func keeps building a landscape free of the seconds that
    torch.func's first call costs.
    """
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(x).sum(), x, create_graph=True)
    rows = [
        torch.autograd.grad(g[:, i].sum(), x, retain_graph=True, materialize_grads=True)[0]
        for i in range(x.shape[-1])
    ]
    return g.detach(), torch.stack(rows, dim=-2).detach()


def _refine(fn: Callable[[Tensor], Tensor], guesses: list[tuple[float, ...]]) -> list[tuple]:
    """Newton's method on ∇f = 0, x ← x − H⁻¹∇f (E7 with α = 1), all guesses at once in float64.

    Newton converges to the nearest critical point of any kind, which is what we want: the kind
    is stated in the tables below and checked by the tests, not decided here.
    """
    x = torch.tensor(guesses, dtype=torch.float64)
    for _ in range(30):
        g, H = _grad_hess(fn, x)
        step = torch.linalg.solve(H, g)
        x = x - step
        if step.abs().max() < 1e-14 * (1 + x.abs().max()):
            break
    return [tuple(p.tolist()) for p in x]


def _points(fn: Callable[[Tensor], Tensor], xs: list[tuple], kinds: list[str]) -> list[Point]:
    values = fn(torch.tensor(xs, dtype=torch.float64)).tolist() if xs else []
    return [
        Point(tuple(float(c) for c in x), float(v), k)
        for x, v, k in zip(xs, values, kinds, strict=True)
    ]


def _make(name, fn, dim, description, obstacles, critical, window, starts, *, refine=True, **kw):
    """Assemble a Landscape from a table of critical points [(x guess, kind), ...]."""
    xs = [tuple(float(c) for c in x) for x, _ in critical]
    kinds = [k for _, k in critical]
    if refine and xs:
        xs = _refine(fn, xs)
    pts = _points(fn, xs, kinds)
    minima = sorted((p for p in pts if p.kind == "minimum"), key=lambda p: p.f)  # global first
    return Landscape(
        name=name,
        dim=dim,
        fn=fn,
        description=description,
        obstacles=tuple(obstacles),
        minima=minima,
        saddles=[p for p in pts if p.kind in ("saddle", "degenerate")],
        maxima=[p for p in pts if p.kind == "maximum"],
        window=window,
        starts=tuple(tuple(float(c) for c in s) for s in starts),
        **kw,
    )


def _separable_critical(roots: list[tuple[float, str]], rest: float, dim: int) -> list:
    """Critical points of f(x) = Σ_i f₁(x_i) from the 1-D critical points of f₁.

    ∇f = 0 iff every coordinate sits at a root of f₁'; the Hessian is diagonal, so the point is a
    minimum when every coordinate is at a 1-D minimum, a maximum when every one is at a 1-D
    maximum, and a saddle otherwise. We list the grid over the first two coordinates (all of
    them for dim = 2) with the other coordinates at ``rest``, a 1-D minimum.
    """
    out = []
    for x0, k0 in roots:
        for x1, k1 in roots:
            ks = {k0, k1} if dim == 2 else {k0, k1, "minimum"}
            kind = ks.pop() if len(ks) == 1 else "saddle"
            out.append(((x0, x1) + (rest,) * (dim - 2), kind))
    return out


def _roots_1d(f1: Callable[[Tensor], Tensor], guesses: list[float]) -> list[float]:
    """Critical points of a 1-D function f₁, refined by Newton from the guesses."""
    return [x[0] for x in _refine(lambda x: f1(x[..., 0]), [(g,) for g in guesses])]


def _cycle(point: tuple[float, ...], dim: int) -> tuple[float, ...]:
    """Extend a 2-D start to dim coordinates by repeating it (x₁, x₂, x₁, x₂, …)."""
    return tuple(point[i % len(point)] for i in range(dim))


# --- canyons: quadratics, Rosenbrock, Beale, Booth --------------------------------------------


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


def quadratic(
    *, eigenvalues=None, kappa=10.0, lambda_max=1.0, dim=2, angle=0.0, seed=None, center=None
):
    """f(x) = ½ (x − x*)ᵀ H (x − x*) with H = Q diag(λ) Qᵀ, the quadratic model E9 made exact.

    λ are `eigenvalues` (ascending or not), or, if those are not given, `dim` values spaced
    geometrically from λ_max/κ to λ_max, so κ(H) = κ (E10). Column i of Q is the eigenvector of
    λ_i: the rotation by `angle` degrees (dim 2), or a seeded random rotation (`seed`).
    """
    if eigenvalues is not None:
        lam = tuple(float(v) for v in eigenvalues)
        _require(
            len(lam) >= 2 and all(0 < v < math.inf for v in lam),
            "eigenvalues",
            eigenvalues,
            "a sequence of at least 2 positive finite numbers",
        )
        dim = len(lam)
    else:
        _require(1 <= kappa < math.inf, "kappa", kappa, ">= 1 and finite")
        _require(0 < lambda_max < math.inf, "lambda_max", lambda_max, "positive and finite")
        _check_dim(dim)
        lam = tuple(lambda_max * kappa ** (i / (dim - 1) - 1) for i in range(dim))
    _require(math.isfinite(angle), "angle", angle, "a finite number of degrees")
    _require(
        seed is None or (isinstance(seed, int) and angle == 0),
        "seed",
        seed,
        "None or an int, and not combined with a nonzero angle",
    )
    x0 = torch.zeros(dim, dtype=torch.float64) if center is None else torch.tensor(center)
    _require(tuple(x0.shape) == (dim,), "center", center, f"None or {dim} numbers")
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
    return _make(
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
    )


def rosenbrock(*, a=1.0, b=100.0, dim=2):
    """f(x) = Σᵢ b (x_{i+1} − x_i²)² + (a − x_i)², a curved canyon with a flat floor.

    2-D minimum (a, a²) with f = 0; Hessian at (1, 1) [[802, −400], [−400, 200]], κ ≈ 2508.
    For 4 ≤ dim ≤ 7 (a = 1, b = 100) there is also a local minimum near (−1, 1, …, 1).
    """
    _require(b > 0, "b", b, "positive")
    _check_dim(dim)
    _require(dim == 2 or a == 1.0, "a", a, "1 when dim > 2 (then the minimum is (1, …, 1))")

    def fn(x: Tensor) -> Tensor:
        xi, xn = x[..., :-1], x[..., 1:]
        return (b * (xn - xi**2) ** 2 + (a - xi) ** 2).sum(-1)

    critical = [([a, a**2] if dim == 2 else [1.0] * dim, "minimum")]
    local = a == 1.0 and b == 100.0 and 4 <= dim <= 7
    if local:
        critical.append(([-1.0] + [1.0] * (dim - 1), "minimum"))
    return _make(
        "rosenbrock",
        fn,
        dim,
        "curved narrow valley with a flat floor; κ ≈ 2508 at the minimum (1, 1) for a=1, b=100",
        ("canyon", "flat") + (("local minima",) if local else ()),
        critical,
        ((min(-2.0, a - 1), max(2.0, a + 1)), (min(-1.0, a**2 - 1), max(3.0, a**2 + 1))),
        [_cycle(s, dim) for s in ((-1.2, 1.0), (-1.5, 2.5), (1.5, -0.5))],
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
    return _make(
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

    return _make(
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


# --- flat areas ---------------------------------------------------------------------------------


def plateau(*, sigma=1.0, dim=2):
    """f(x) = 1 − exp(−‖x‖² / (2σ²)): a Gaussian well inside a flat plain, f ∈ [0, 1).

    ‖∇f‖ = (r/σ²) exp(−r²/(2σ²)) at radius r; at the starts (r = 5σ) that is 1.9e-5/σ, below
    1e-4 of the range of f (for σ ≥ 0.2): gradient descent hardly moves there.
    """
    _require(0 < sigma < math.inf, "sigma", sigma, "positive and finite")
    _check_dim(dim)

    def fn(x: Tensor) -> Tensor:
        return 1 - torch.exp(-(x**2).sum(-1) / (2 * sigma**2))

    units = ((1.0, 0.0), (0.6, 0.8), (-0.8, -0.6))
    return _make(
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


# --- saddles ------------------------------------------------------------------------------------


def saddle():
    """f = x² − y²: a saddle at 0 (Hessian diag(2, −2)); unbounded below, so no minima."""
    return _make(
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
    return _make(
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
    return _make(
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


# --- local minima -------------------------------------------------------------------------------


def two_wells(*, depths=(2.0, 0.6), sigma=0.6, c=0.2):
    """f(x) = ½ c ‖x‖² − d₁ exp(−‖x − μ₁‖²/(2σ²)) − d₂ exp(−‖x − μ₂‖²/(2σ²)).

    A bowl with a deep well at μ₁ = (1.5, 0.5) (global minimum) and a shallow one at
    μ₂ = (−1.5, −0.5) (a local minimum much worse than the global one), a saddle in between.
    """
    _require(
        len(depths) == 2 and all(0 < d < math.inf for d in depths),
        "depths",
        depths,
        "two positive numbers (d₁, d₂)",
    )
    _require(0 < sigma < math.inf, "sigma", sigma, "positive and finite")
    _require(0 < c < math.inf, "c", c, "positive and finite")
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
    f = _make(
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
    hessians = _grad_hess(fn, torch.tensor([p.x for p in f.minima], dtype=torch.float64))[1]
    ok = ok and bool(torch.linalg.eigvalsh(hessians).min() > 0)
    _require(ok, "depths", depths, "deep enough (relative to c and sigma) to form two wells")
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
    return _make(
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
    _require(1 <= A < math.inf, "A", A, ">= 1 and finite (so the nearest local minima exist)")
    _check_dim(dim)

    def f1(x: Tensor) -> Tensor:
        return x**2 - A * torch.cos(2 * math.pi * x)

    def fn(x: Tensor) -> Tensor:
        return A * dim + f1(x).sum(-1)

    r_half, r_one = _roots_1d(f1, [0.5, 1.0])
    roots = [(-r_one, "minimum"), (-r_half, "maximum"), (0.0, "minimum")]
    roots += [(r_half, "maximum"), (r_one, "minimum")]
    return _make(
        "rastrigin",
        fn,
        dim,
        "bowl covered by a grid of local minima near the integers, global minimum f = 0 at 0",
        ("local minima", "saddle"),
        _separable_critical(roots, 0.0, dim),
        ((-5.12, 5.12), (-5.12, 5.12)),
        [_cycle(s, dim) for s in ((4.2, 3.1), (-2.6, 4.4), (-3.5, -1.4))],
        refine=False,  # each coordinate is a refined 1-D root already
    )


def styblinski_tang(*, dim=2):
    """f(x) = ½ Σᵢ (x_i⁴ − 16 x_i² + 5 x_i): 2ᵈ minima, global at x_i ≈ −2.9035 (−39.166 d)."""
    _check_dim(dim)

    def f1(x: Tensor) -> Tensor:
        return 0.5 * (x**4 - 16 * x**2 + 5 * x)

    def fn(x: Tensor) -> Tensor:
        return f1(x).sum(-1)

    lo, mid, hi = _roots_1d(f1, [-2.9035, 0.1567, 2.7468])
    roots = [(lo, "minimum"), (mid, "maximum"), (hi, "minimum")]
    return _make(
        "styblinski_tang",
        fn,
        dim,
        "2ᵈ minima of different depth; the one at x_i ≈ +2.75 is 14 per coordinate worse",
        ("local minima", "saddle"),
        _separable_critical(roots, lo, dim),
        ((-5.0, 5.0), (-5.0, 5.0)),
        [_cycle(s, dim) for s in ((4.0, 4.0), (1.0, 3.5), (-1.0, -4.5))],
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
    return _make(
        "six_hump_camel",
        fn,
        2,
        "two global minima (f = −1.0316) and four worse local minima, saddles between",
        ("local minima", "saddle"),
        critical + [((0.0, 0.0), "saddle")],
        ((-2.2, 2.2), (-1.2, 1.2)),
        ((-1.9, 1.0), (1.9, -1.0), (-1.5, -1.0), (1.2, 1.1)),
    )


# --- registry -----------------------------------------------------------------------------------

_BUILDERS: dict[str, Callable[..., Landscape]] = {
    f.__name__: f
    for f in (
        quadratic,
        canyon,
        rotated_canyon,
        rosenbrock,
        beale,
        booth,
        plateau,
        saddle,
        monkey_saddle,
        double_well,
        two_wells,
        himmelblau,
        rastrigin,
        styblinski_tang,
        six_hump_camel,
    )
}


def names() -> list[str]:
    """The names of all surfaces, grouped by obstacle (canyons, flat, saddles, local minima)."""
    return list(_BUILDERS)


def get(name: str, **params: object) -> Landscape:
    """Build the surface `name` with its parameters, e.g. ``get("quadratic", kappa=100)``."""
    if name not in _BUILDERS:
        raise ValueError(f"landscape must be one of {', '.join(_BUILDERS)}; got {name!r}.")
    build = _BUILDERS[name]
    defaults = build.__kwdefaults__ or {}
    for key in params:
        allowed = ", ".join(defaults) or "none"
        _require(key in defaults, f"{name} parameter", key, f"one of: {allowed}")
    f = build(**params)
    return replace(f, params={**defaults, **params, **f.params})
