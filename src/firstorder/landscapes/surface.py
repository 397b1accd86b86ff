"""What every surface of the obstacle course is: a :class:`Landscape` (f and its known geometry)
with its critical points (:class:`Point`), and the helpers that build one from a table of
critical points, refined by Newton's method on ∇f = 0 in float64."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from firstorder.errors import UserValueError

OBSTACLES = ("canyon", "flat", "saddle", "local minima")
BOUND_FACTOR = 100.0  # default bound: 100 × the window's largest |coordinate|
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
    points (kind "degenerate", zero Hessian eigenvalues). ``bound``: a trajectory has left the
    landscape once max_i |x_i| > bound. On a surface with minima that is a blow-up (the engine
    marks it diverged); the default, :data:`BOUND_FACTOR` times the window's largest |coordinate|,
    is far past anything a converging run visits, and an iteration that grows geometrically by
    a factor q per step crosses it within log(BOUND_FACTOR)/log q steps of leaving the window.
    On a surface unbounded below (no minima: saddle, monkey_saddle) leaving it is the answer
    the surface asks for, an escape, and the bound sits at the window's edge.
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
    bound: float | None = None  # None: BOUND_FACTOR × the window's largest |coordinate|

    def __post_init__(self) -> None:
        if self.bound is None:  # frozen dataclass: set the default through object.__setattr__
            edge = max(abs(v) for axis in self.window for v in axis)
            object.__setattr__(self, "bound", BOUND_FACTOR * edge)

    @property
    def unbounded_below(self) -> bool:
        """Whether f has no minimum (f → −∞ somewhere): leaving ``bound`` is then an escape."""
        return not self.minima

    def __call__(self, x: Tensor) -> Tensor:
        """f(x) for x of shape [..., dim], returning [...]."""
        if not isinstance(x, Tensor):
            x = torch.as_tensor(x, dtype=torch.get_default_dtype())
        if x.shape[-1] != self.dim:
            raise UserValueError(
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


def require(ok: bool, name: str, value: object, allowed: str) -> None:
    """Raise the one-sentence UserValueError of DESIGN.md when a parameter is out of range."""
    if not ok:
        raise UserValueError(f"{name} must be {allowed}, got {value!r}.")


def check_dim(dim: object) -> None:
    require(isinstance(dim, int) and not isinstance(dim, bool) and dim >= 2, "dim", dim, ">= 2")


def grad_hess(fn: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
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


def newton_critical(
    fn: Callable[[Tensor], Tensor], guesses: list[tuple[float, ...]]
) -> list[tuple]:
    """Newton's method on ∇f = 0, x ← x − H⁻¹∇f (E7 with α = 1), all guesses at once in float64.

    Newton converges to the nearest critical point of any kind, which is what we want: the kind
    is stated in each landscape's table and checked by the tests, not decided here.
    """
    x = torch.tensor(guesses, dtype=torch.float64)
    for _ in range(30):
        g, H = grad_hess(fn, x)
        step = torch.linalg.solve(H, g)
        x = x - step
        if step.abs().max() < 1e-14 * (1 + x.abs().max()):
            break
    return [tuple(p.tolist()) for p in x]


def points(fn: Callable[[Tensor], Tensor], xs: list[tuple], kinds: list[str]) -> list[Point]:
    values = fn(torch.tensor(xs, dtype=torch.float64)).tolist() if xs else []
    return [
        Point(tuple(float(c) for c in x), float(v), k)
        for x, v, k in zip(xs, values, kinds, strict=True)
    ]


def make(name, fn, dim, description, obstacles, critical, window, starts, *, refine=True, **kw):
    """Assemble a Landscape from a table of critical points [(x guess, kind), ...]."""
    xs = [tuple(float(c) for c in x) for x, _ in critical]
    kinds = [k for _, k in critical]
    if refine and xs:
        xs = newton_critical(fn, xs)
    pts = points(fn, xs, kinds)
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


def separable_critical(roots: list[tuple[float, str]], rest: float, dim: int) -> list:
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


def roots_1d(f1: Callable[[Tensor], Tensor], guesses: list[float]) -> list[float]:
    """Critical points of a 1-D function f₁, refined by Newton from the guesses."""
    return [x[0] for x in newton_critical(lambda x: f1(x[..., 0]), [(g,) for g in guesses])]


def cycle(point: tuple[float, ...], dim: int) -> tuple[float, ...]:
    """Extend a 2-D start to dim coordinates by repeating it (x₁, x₂, x₁, x₂, …)."""
    return tuple(point[i % len(point)] for i in range(dim))
