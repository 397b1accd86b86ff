"""The obstacle course: analytic loss surfaces R(θ) with known geometry.

The notes list four geometric obstacles (C8a–C8d of CLAIMS.md): canyons (ill-conditioned
Hessians), flat areas, saddle points, and local minima that are much worse than the global one.
Every surface here shows one or more of them and knows its critical points: exactly where a
closed form exists, otherwise refined once at construction by Newton's method on ∇f = 0 in
float64 (to ~1e-15), starting from textbook approximations. One module per obstacle
(canyons, plateaus, saddles, local_minima) holds its surfaces; surface holds what they share.

    f = landscapes.get("rosenbrock")            # or get("quadratic", kappa=100, dim=10, seed=0)
    f(x)                                         # x: [..., d] -> [...], autograd, float32/64
    f.minima[0], f.saddles, f.maxima, f.window, f.starts, f.obstacles

Only torch and the standard library are imported, so every layer may use this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from firstorder.errors import UserValueError
from firstorder.landscapes.canyons import (
    beale,
    booth,
    canyon,
    quadratic,
    rosenbrock,
    rotated_canyon,
)
from firstorder.landscapes.local_minima import (
    himmelblau,
    rastrigin,
    six_hump_camel,
    styblinski_tang,
    two_wells,
)
from firstorder.landscapes.plateaus import plateau
from firstorder.landscapes.saddles import double_well, monkey_saddle, saddle
from firstorder.landscapes.surface import KINDS, OBSTACLES, Landscape, Point, require

__all__ = ["KINDS", "OBSTACLES", "Landscape", "Point", "get", "names"]

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
        raise UserValueError(f"landscape must be one of {', '.join(_BUILDERS)}; got {name!r}.")
    build = _BUILDERS[name]
    defaults = build.__kwdefaults__ or {}
    for key in params:
        allowed = ", ".join(defaults) or "none"
        require(key in defaults, f"{name} parameter", key, f"one of: {allowed}")
    f = build(**params)
    return replace(f, params={**defaults, **params, **f.params})
