"""Curvature tools against hand-derived derivatives, numpy float64 linear algebra and the
actual change of f on quadratics (E9, E10, C10).

Tolerances: the float64 comparisons are of computations of a few dozen operations (autograd
against the closed form of a quartic at |x| ≤ 1.5; LAPACK through torch against LAPACK through
NumPy, both backward stable, an eigenvalue within u·‖A‖ ≤ 3e-14 of |λ| ≥ 1 for κ ≤ 300):
errors near 1e-14 of the magnitudes involved, which 1e-12 (1e-10 for eigen-decompositions and
their products) bounds whatever the BLAS, CPU or summation order, and which a wrong formula
exceeds by 1e6 or more. The iterative eigensolvers (ARPACK, a seeded start vector) stop at
their own tol, hence 1e-6 there, and 1e-4 for float32.
"""

import math

import numpy as np
import pytest
import torch

from firstorder import curvature, landscapes


def as64(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


# f(x) = x₀² x₁ + sin(x₁) x₂ + exp(x₀ x₂ / 2), with its derivatives written out by hand
def f3(x: torch.Tensor) -> torch.Tensor:
    return (
        x[..., 0] ** 2 * x[..., 1]
        + torch.sin(x[..., 1]) * x[..., 2]
        + torch.exp(x[..., 0] * x[..., 2] / 2)
    )


def f3_grad(x: np.ndarray) -> np.ndarray:
    a, b, c = x
    e = np.exp(a * c / 2)
    return np.array([2 * a * b + c / 2 * e, a**2 + np.cos(b) * c, np.sin(b) + a / 2 * e])


def f3_hess(x: np.ndarray) -> np.ndarray:
    a, b, c = x
    e = np.exp(a * c / 2)
    return np.array(
        [
            [2 * b + c**2 / 4 * e, 2 * a, e / 2 + a * c / 4 * e],
            [2 * a, -np.sin(b) * c, np.cos(b)],
            [e / 2 + a * c / 4 * e, np.cos(b), a**2 / 4 * e],
        ]
    )


POINTS = np.random.default_rng(0).uniform(-1.5, 1.5, size=(4, 3))


def random_spd(d: int, seed: int, kappa: float = 50.0) -> np.ndarray:
    """Q diag(λ) Qᵀ with λ spread over [1, κ] and a random orthogonal Q (numpy float64)."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return Q @ np.diag(np.geomspace(1.0, kappa, d)) @ Q.T


@pytest.mark.parametrize("x", POINTS)
def test_gradient_and_hessian_match_closed_form(x):
    np.testing.assert_allclose(curvature.gradient(f3, as64(x)).numpy(), f3_grad(x), rtol=1e-12)
    np.testing.assert_allclose(
        curvature.hessian(f3, as64(x)).numpy(), f3_hess(x), rtol=1e-12, atol=1e-12
    )


def test_batched_variants_match_closed_form():
    X = POINTS.reshape(2, 2, 3)
    G = curvature.batch_gradient(f3, as64(X)).numpy()
    H = curvature.batch_hessian(f3, as64(X)).numpy()
    assert G.shape == (2, 2, 3) and H.shape == (2, 2, 3, 3)
    for i, j in np.ndindex(2, 2):
        np.testing.assert_allclose(G[i, j], f3_grad(X[i, j]), rtol=1e-12)
        np.testing.assert_allclose(H[i, j], f3_hess(X[i, j]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("x", POINTS)
def test_hvp_equals_dense_hessian_times_v(x):
    v = np.random.default_rng(1).standard_normal(3)
    Hv = curvature.hvp(f3, as64(x), as64(v)).numpy()
    np.testing.assert_allclose(Hv, f3_hess(x) @ v, rtol=1e-12, atol=1e-12)


def test_eig_and_condition_number_against_numpy():
    A = random_spd(6, seed=2, kappa=300.0)
    lam, Q = curvature.eig(as64(A))
    np.testing.assert_allclose(lam.numpy(), np.linalg.eigvalsh(A), rtol=1e-10)
    np.testing.assert_allclose((Q @ torch.diag(lam) @ Q.T).numpy(), A, atol=1e-10)
    assert float(curvature.condition_number(as64(A))) == pytest.approx(300.0, rel=1e-10)
    # indefinite: ratio of eigenvalue magnitudes; singular: inf; batched: one κ per matrix
    batch = as64([np.diag([-3.0, 1.0, 2.0]), np.diag([0.0, 1.0, 2.0]), np.zeros((3, 3))])
    kappa = curvature.condition_number(batch).numpy()
    np.testing.assert_array_equal(kappa, [3.0, math.inf, math.inf])


@pytest.mark.parametrize(
    "f, kind",
    [
        (lambda x: x[0] ** 2 + 3 * x[1] ** 2, "minimum"),
        (lambda x: -(x[0] ** 2) - x[0] * x[1] - x[1] ** 2, "maximum"),
        (lambda x: x[0] ** 2 - x[1] ** 2, "saddle"),
        (lambda x: x[0] ** 4 + x[1] ** 2, "degenerate"),  # Hessian diag(0, 2)
    ],
)
def test_classify(f, kind):
    assert curvature.classify(f, as64([0.0, 0.0])) == kind


def test_quadratic_model_error_shrinks_like_h_cubed():
    f = landscapes.get("rosenbrock")
    theta_t = as64([-1.2, 1.0])
    q = curvature.quadratic_model(f, theta_t)
    u = as64([0.6, 0.8])
    hs = np.geomspace(1e-4, 1e-2, 7)
    err = [abs(float(f(theta_t + h * u) - q(theta_t + h * u))) for h in hs]
    slope = np.polyfit(np.log(hs), np.log(err), 1)[0]
    assert slope == pytest.approx(3.0, abs=0.05)
    # on a quadratic the model is exact, also far from θₜ
    canyon = landscapes.get("rotated_canyon")
    qc = curvature.quadratic_model(canyon, as64([2.0, -1.0]))
    X = as64(np.random.default_rng(3).uniform(-6, 6, size=(20, 2)))
    np.testing.assert_allclose(qc(X).numpy(), canyon(X).numpy(), atol=1e-12)


def test_step_sizes_against_closed_form():
    H = np.array([[3.0, 1.0], [1.0, 2.0]])  # λ = (5 ± √5)/2
    g = np.array([1.0, -2.0])
    lam_max = (5 + math.sqrt(5)) / 2
    assert curvature.max_stable_lr(as64(H)) == pytest.approx(2 / lam_max, rel=1e-12)
    alpha_star = (g @ g) / (g @ H @ g)  # = 5 / 7
    assert curvature.line_search_lr(as64(g), as64(H)) == pytest.approx(alpha_star, rel=1e-12)
    # no positive curvature: no limit
    assert curvature.max_stable_lr(as64(-np.eye(2))) == math.inf
    assert curvature.line_search_lr(as64(g), as64(np.diag([1.0, -1.0]))) == math.inf


def test_max_stable_lr_separates_convergence_from_divergence():
    A = random_spd(5, seed=4, kappa=20.0)
    alpha_max = curvature.max_stable_lr(as64(A))
    for factor, converges in ((0.98, True), (1.02, False)):
        x = np.ones(5)
        for _ in range(2000):  # GD on f = ½ xᵀAx in numpy
            x = x - factor * alpha_max * (A @ x)
        assert (np.linalg.norm(x) < 1e-3) == converges


def test_line_search_lr_minimises_f_along_the_gradient():
    A = random_spd(4, seed=5)
    x = np.random.default_rng(6).standard_normal(4)
    g = A @ x
    alpha = curvature.line_search_lr(as64(g), as64(A))

    def along(a: float) -> float:
        y = x - a * g
        return 0.5 * y @ A @ y

    assert along(alpha) < along(alpha * 0.99) and along(alpha) < along(alpha * 1.01)


def test_decrease_condition_agrees_with_the_actual_change_of_f():
    A = random_spd(4, seed=7, kappa=30.0)
    x = np.random.default_rng(8).standard_normal(4)
    g = A @ x
    boundary = 2 * (g @ g) / (g @ A @ g)  # ½ α gᵀHg = gᵀg
    for lr in boundary * np.array([0.1, 0.5, 0.9, 0.99, 1.01, 1.5, 3.0]):
        cond = curvature.decrease_condition(as64(g), as64(A), float(lr))
        y = x - lr * g
        change = 0.5 * y @ A @ y - 0.5 * x @ A @ x
        assert bool(cond) == (change < 0)
        assert cond.lhs == pytest.approx(0.5 * lr * g @ A @ g, rel=1e-12)
        assert cond.rhs == pytest.approx(g @ g, rel=1e-12)
        # on a quadratic the model's prediction is exact
        pred = float(curvature.predicted_decrease(as64(g), as64(A), float(lr)))
        assert pred == pytest.approx(-change, rel=1e-9, abs=1e-12)


def test_quadratic_model_predicts_the_gd_step_on_a_quadratic():
    f = landscapes.get("quadratic", eigenvalues=(0.5, 4.0), angle=20.0)
    x = as64([3.0, -1.0])
    q = curvature.quadratic_model(f, x)
    for lr in (0.1, 0.3, 0.6):
        assert float(q.after_gd_step(lr)) == pytest.approx(float(f(x - lr * q.g)), rel=1e-12)
    lrs = torch.tensor([0.1, 0.3])  # a tensor of learning rates broadcasts
    assert curvature.predicted_decrease(q.g, q.H, lrs).shape == (2,)


def test_eigen_progress_follows_one_minus_alpha_lambda():
    A = random_spd(3, seed=9, kappa=10.0)
    x_star = np.array([1.0, -1.0, 0.5])
    lr = 0.15
    xs = [np.array([2.0, 2.0, -3.0])]
    for _ in range(5):  # GD on f = ½ (x − x*)ᵀA(x − x*)
        xs.append(xs[-1] - lr * A @ (xs[-1] - x_star))
    c = curvature.eigen_progress(as64(A), as64(np.array(xs)), as64(x_star)).numpy()
    factor = 1 - lr * np.linalg.eigvalsh(A)  # per step, in each eigen-direction
    np.testing.assert_allclose(c[1:], c[:-1] * factor, rtol=1e-10, atol=1e-12)
    contraction = curvature.gd_contraction(as64(A), lr).numpy()
    np.testing.assert_allclose(contraction, np.abs(factor), rtol=1e-12)


@pytest.mark.parametrize("which", ["LA", "SA", "LM"])
def test_top_eigenvalues_against_numpy(which):
    rng = np.random.default_rng(10)
    d, k = 60, 3
    M = rng.standard_normal((d, d))
    A = M @ M.T / d + 0.1 * np.eye(d)  # SPD
    if which == "LM":
        A = A - 2.0 * np.eye(d)  # indefinite, so largest |λ| differs from largest λ
    lam_np = np.linalg.eigvalsh(A)
    ref = {
        "LA": lam_np[::-1][:k],
        "SA": lam_np[:k],
        "LM": lam_np[np.argsort(-np.abs(lam_np))][:k],
    }[which]
    A_t = as64(A)
    lam, V = curvature.top_eigenvalues(
        lambda v: A_t @ v, d, k=k, which=which, return_eigenvectors=True
    )
    np.testing.assert_allclose(lam.numpy(), ref, rtol=1e-6)
    np.testing.assert_allclose(A @ V.numpy(), V.numpy() * lam.numpy(), atol=1e-6)
    again = curvature.top_eigenvalues(lambda v: A_t @ v, d, k=k, which=which)
    np.testing.assert_array_equal(again.numpy(), lam.numpy())  # seeded start vector


def test_top_eigenvalue_through_the_hvp_of_a_function():
    # f = ½ xᵀAx + ¼ Σ xᵢ⁴ has H = A + diag(3xᵢ²), known in closed form
    d = 40
    A = random_spd(d, seed=11)
    A_t = as64(A)
    x = np.random.default_rng(12).standard_normal(d)

    def f(t: torch.Tensor) -> torch.Tensor:
        return 0.5 * t @ A_t @ t + 0.25 * (t**4).sum()

    lam = curvature.top_eigenvalues(lambda v: curvature.hvp(f, as64(x), v), d, k=2)
    ref = np.linalg.eigvalsh(A + np.diag(3 * x**2))[::-1][:2]
    np.testing.assert_allclose(lam.numpy(), ref, rtol=1e-6)
    # the float32 path: the HVP sees float32 tensors, accuracy is float32's
    A32 = A_t.float()
    lam32 = curvature.top_eigenvalues(lambda v: A32 @ v, d, dtype=torch.float32, tol=1e-5)
    assert float(lam32[0]) == pytest.approx(np.linalg.eigvalsh(A)[-1], rel=1e-4)


@pytest.mark.parametrize(
    "call",
    [
        lambda: curvature.top_eigenvalues(lambda v: v, 5, which="XX"),
        lambda: curvature.top_eigenvalues(lambda v: v, 5, k=5),
        lambda: curvature.top_eigenvalues(lambda v: v, 5, k=0),
        lambda: curvature.decrease_condition(as64([1.0, 0.0]), as64(np.eye(2)), -0.1),
        lambda: curvature.gd_contraction(as64(np.eye(2)), 0.0),
        lambda: curvature.eig(as64(np.ones((2, 3)))),
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError, match="must be"):
        call()
