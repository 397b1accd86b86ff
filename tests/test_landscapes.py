"""The obstacle course: formulas, derivatives and the listed critical points of every surface.

References are independent of the code under test: the textbook formulas re-typed in numpy,
central finite differences, literature values of the minima, and closed-form Hessians.
"""

import math

import numpy as np
import pytest
import torch

from firstorder import curvature, landscapes
from firstorder.errors import UserValueError

# every surface with its defaults, plus variants that exercise the parameters
CASES = [(name, {}) for name in landscapes.names()] + [
    ("quadratic", {"kappa": 100.0, "dim": 6, "seed": 1}),
    ("quadratic", {"eigenvalues": (3.0, 0.5), "angle": 30.0, "center": (1.0, -2.0)}),
    ("rotated_canyon", {"angle": -30.0}),
    ("rosenbrock", {"dim": 5}),
    ("rosenbrock", {"a": 2.0, "b": 10.0}),
    ("plateau", {"sigma": 0.5, "dim": 3}),
    ("two_wells", {"depths": (1.0, 2.5)}),
    ("rastrigin", {"dim": 3}),
    ("styblinski_tang", {"dim": 3}),
]
SURFACES = {f"{n}{p or ''}": landscapes.get(n, **p) for n, p in CASES}
IDS = list(SURFACES)


def as64(x) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)


def sample(f: landscapes.Landscape, n: int, seed: int = 0) -> np.ndarray:
    """n seeded points inside the window (coordinates beyond the second range over window[0])."""
    lo, hi = np.array([f.window[0], f.window[1]] + [f.window[0]] * (f.dim - 2)).T
    return np.random.default_rng(seed).uniform(lo, hi, size=(n, f.dim))


def critical_points(f: landscapes.Landscape) -> list[landscapes.Point]:
    return f.minima + f.saddles + f.maxima


# the textbook formulas, typed again in numpy float64
NUMPY = {
    "canyon": lambda x, y: 0.1 * x**2 + 2 * y**2,
    "rotated_canyon": lambda x, y: 0.1 * ((x + y) / 2**0.5) ** 2 + 2 * ((y - x) / 2**0.5) ** 2,
    "rosenbrock": lambda x, y: 100 * (y - x**2) ** 2 + (1 - x) ** 2,
    "beale": lambda x, y: (
        (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2
    ),
    "booth": lambda x, y: (x + 2 * y - 7) ** 2 + (2 * x + y - 5) ** 2,
    "plateau": lambda x, y: 1 - np.exp(-(x**2 + y**2) / 2),
    "saddle": lambda x, y: x**2 - y**2,
    "monkey_saddle": lambda x, y: x**3 - 3 * x * y**2,
    "himmelblau": lambda x, y: (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2,
    "rastrigin": lambda x, y: (
        20 + x**2 - 10 * np.cos(2 * np.pi * x) + y**2 - 10 * np.cos(2 * np.pi * y)
    ),
    "styblinski_tang": lambda x, y: 0.5 * (x**4 - 16 * x**2 + 5 * x + y**4 - 16 * y**2 + 5 * y),
    "six_hump_camel": lambda x, y: (
        (4 - 2.1 * x**2 + x**4 / 3) * x**2 + x * y + (-4 + 4 * y**2) * y**2
    ),
}

# literature values (f*, x*): Surjanovic & Bingham's test-function library, and d2l for the canyon
LITERATURE = {
    "canyon": (0.0, (0.0, 0.0)),
    "rosenbrock": (0.0, (1.0, 1.0)),
    "beale": (0.0, (3.0, 0.5)),
    "booth": (0.0, (1.0, 3.0)),
    "plateau": (0.0, (0.0, 0.0)),
    "himmelblau": (0.0, (3.0, 2.0)),
    "rastrigin": (0.0, (0.0, 0.0)),
    "styblinski_tang": (-39.16616570377142 * 2, (-2.903534, -2.903534)),
    "six_hump_camel": (-1.0316284534898774, (0.0898, -0.7126)),
}


def test_registry_has_the_obstacle_course():
    names = landscapes.names()
    assert len(names) >= 14 and len(set(names)) == len(names)
    shown = set()
    for name in names:
        f = landscapes.get(name)
        assert f.name == name and name == name.lower()
        assert set(f.obstacles) <= set(landscapes.OBSTACLES) and f.obstacles
        assert f.description and "\n" not in f.description
        shown |= set(f.obstacles)
    assert shown == set(landscapes.OBSTACLES)


@pytest.mark.parametrize("key", IDS)
def test_metadata_is_consistent(key):
    f = SURFACES[key]
    (x0, x1), (y0, y1) = f.window
    assert x0 < x1 and y0 < y1
    assert f.starts and all(len(s) == f.dim for s in f.starts)
    for s in f.starts:  # starts lie inside the plotting window
        assert x0 <= s[0] <= x1 and y0 <= s[1] <= y1
    for p in critical_points(f):  # inside the window too, so that plots show them
        assert len(p.x) == f.dim and p.kind in landscapes.KINDS
        assert x0 <= p.x[0] <= x1 and y0 <= p.x[1] <= y1
    if f.minima:
        assert f.global_min is f.minima[0] and f.x_star == f.minima[0].x
        assert f.f_star == min(p.f for p in f.minima)
    else:  # unbounded below: no minimum, an escape bound instead
        assert f.f_star == -math.inf and f.x_star is None and f.bound > 0


@pytest.mark.parametrize("key", IDS)
def test_gradient_matches_central_differences(key):
    f = SURFACES[key]
    X = sample(f, 5, seed=len(key))
    h = 1e-6
    E = h * np.eye(f.dim)  # row i: the step h eᵢ
    f_plus = f(as64(X[:, None, :] + E)).numpy()  # [points, i]
    f_minus = f(as64(X[:, None, :] - E)).numpy()
    g_fd = (f_plus - f_minus) / (2 * h)
    g = curvature.batch_gradient(f, as64(X)).numpy()
    scale = 1 + np.abs(f(as64(X)).numpy())[:, None]  # rounding of the difference ~ eps·|f|/h
    assert np.all(np.abs(g - g_fd) <= 1e-6 * (np.abs(g_fd) + scale)), np.abs(g - g_fd).max()


@pytest.mark.parametrize("name", sorted(NUMPY))
def test_formula_matches_numpy(name):
    f = landscapes.get(name)
    X = sample(f, 50, seed=1)
    np.testing.assert_allclose(
        f(as64(X)).numpy(), NUMPY[name](X[:, 0], X[:, 1]), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("name", sorted(LITERATURE))
def test_global_minimum_matches_literature(name):
    f_star, x_star = LITERATURE[name]
    f = landscapes.get(name)
    assert f.f_star == pytest.approx(f_star, abs=1e-9)
    # the literature prints x* to 4 decimals (six-hump camel, truncated): 1e-4
    np.testing.assert_allclose(f.x_star, x_star, atol=1e-4)


@pytest.mark.parametrize("key", IDS)
def test_critical_points_have_zero_gradient_and_listed_value(key):
    f = SURFACES[key]
    for p in critical_points(f):
        x = as64(p.x)
        assert float(curvature.gradient(f, x).norm()) < 1e-6, p
        assert float(f(x)) == pytest.approx(p.f, abs=1e-12)


@pytest.mark.parametrize("key", IDS)
def test_classify_agrees_with_listed_kind(key):
    f = SURFACES[key]
    for p in critical_points(f):
        assert curvature.classify(f, as64(p.x)) == p.kind, p


@pytest.mark.parametrize("key", [k for k in IDS if SURFACES[k].minima])
def test_no_point_of_the_window_is_below_the_global_minimum(key):
    f = SURFACES[key]
    X = sample(f, 4000, seed=2)
    if f.dim > 2:  # other coordinates at x*, so the slice passes through the minimum
        X[:, 2:] = f.x_star[2:]
    assert float(f(as64(X)).min()) >= f.f_star - 1e-12


@pytest.mark.parametrize("key", IDS)
def test_batch_shapes_and_dtypes(key):
    f = SURFACES[key]
    X = as64(sample(f, 12, seed=3)).reshape(3, 4, f.dim)
    y64 = f(X)
    assert y64.shape == (3, 4) and y64.dtype == torch.float64
    y32 = f(X.float())
    assert y32.dtype == torch.float32
    np.testing.assert_allclose(y32.double().numpy(), y64.numpy(), rtol=1e-4, atol=1e-4)
    single = torch.stack([f(x) for x in X.reshape(-1, f.dim)]).reshape(3, 4)
    np.testing.assert_allclose(single.numpy(), y64.numpy(), rtol=1e-12, atol=1e-12)


def test_rosenbrock_condition_number_at_minimum():
    # closed-form Hessian of 100 (y − x²)² + (1 − x)²: [[1200x² − 400y + 2, −400x], [−400x, 200]]
    x, y = 1.0, 1.0
    H = np.array([[1200 * x**2 - 400 * y + 2, -400 * x], [-400 * x, 200.0]])
    lam = np.linalg.eigvalsh(H)
    kappa_ref = lam[-1] / lam[0]
    f = landscapes.get("rosenbrock")
    H_auto = curvature.hessian(f, as64([x, y]))
    np.testing.assert_allclose(H_auto.numpy(), H, rtol=1e-12)
    assert float(curvature.condition_number(H_auto)) == pytest.approx(kappa_ref, rel=1e-10)
    assert kappa_ref == pytest.approx(2508, abs=1)


def test_quadratic_hessians_are_the_requested_ones():
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    Q = np.array([[c, -s], [s, c]])
    f = landscapes.get("quadratic", eigenvalues=(3.0, 0.5), angle=30.0, center=(1.0, -2.0))
    H = curvature.hessian(f, as64([0.3, 0.7])).numpy()
    np.testing.assert_allclose(H, Q @ np.diag([3.0, 0.5]) @ Q.T, atol=1e-12)
    assert float(f(as64([1.0, -2.0]))) == 0.0

    f = landscapes.get("quadratic", kappa=100.0, lambda_max=4.0, dim=6, seed=1)
    lam = np.linalg.eigvalsh(curvature.hessian(f, as64(np.ones(6))).numpy())
    np.testing.assert_allclose(lam, 4.0 * np.geomspace(0.01, 1.0, 6), rtol=1e-10)
    assert f.params["kappa"] == pytest.approx(100.0)

    booth = curvature.hessian(landscapes.get("booth"), as64([0.0, 0.0])).numpy()
    np.testing.assert_allclose(booth, [[10.0, 8.0], [8.0, 10.0]], atol=1e-12)  # eigenvalues 2, 18


def test_plateau_is_flat_at_its_starts():
    f = landscapes.get("plateau")
    scale = 1.0 - f.f_star  # f ranges over [0, 1)
    for s in f.starts:
        r = math.hypot(*s)  # closed form ‖∇f‖ = r exp(−r²/2) for σ = 1
        g = float(curvature.gradient(f, as64(s)).norm())
        assert g == pytest.approx(r * math.exp(-(r**2) / 2), rel=1e-10)
        assert g < 1e-4 * scale
        assert float(f(torch.tensor(s, dtype=torch.float32))) < 1.0  # float32 still sees the well


def test_local_minimum_of_two_wells_is_much_worse():
    f = landscapes.get("two_wells")
    glob, local = f.minima
    assert local.f - glob.f > 1.0
    for p in f.minima + f.saddles:  # stored to ~1e-10: Newton's residual
        assert float(curvature.gradient(f, as64(p.x)).norm()) < 1e-10


def test_himmelblau_minima_are_equally_good():
    f = landscapes.get("himmelblau")
    assert len(f.minima) == 4 and all(abs(p.f) < 1e-20 for p in f.minima)
    assert f.maxima[0].f == pytest.approx(181.617, abs=1e-3)


@pytest.mark.parametrize(
    "name, params",
    [
        ("quadratic", {"kappa": 0.5}),
        ("quadratic", {"dim": 1}),
        ("quadratic", {"eigenvalues": (1.0, -1.0)}),
        ("quadratic", {"angle": 10.0, "seed": 0}),
        ("rosenbrock", {"dim": 1}),
        ("rosenbrock", {"a": 2.0, "dim": 3}),
        ("plateau", {"sigma": -1.0}),
        ("rastrigin", {"A": 0.1}),
        ("two_wells", {"depths": (2.0, 0.05)}),
        ("beale", {"a": 1.0}),
    ],
)
def test_bad_parameters_raise_value_error(name, params):
    with pytest.raises(ValueError, match="must be"):
        landscapes.get(name, **params)


def test_unknown_name_lists_the_names_and_wrong_dim_is_refused():
    with pytest.raises(ValueError, match="rosenbrock"):
        landscapes.get("rosenbrok")
    with pytest.raises(ValueError, match="last dimension 2"):
        landscapes.get("beale")(torch.zeros(3))


def test_user_mistakes_are_user_errors():
    """The CLI prints a UserError in one line; anything else is a bug with its traceback."""
    with pytest.raises(UserValueError, match="landscape must be one of"):
        landscapes.get("no such surface")
    with pytest.raises(UserValueError, match="kappa must be >= 1"):
        landscapes.get("quadratic", kappa=0.5)
    with pytest.raises(UserValueError, match="lr must be positive"):
        curvature.gd_contraction(torch.eye(2, dtype=torch.float64), 0.0)
