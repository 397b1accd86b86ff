"""Curvature of a loss surface: the notes' section "ill conditioned hessians" in code.

    g = ∇R(θ)                      gradient, hessian, hvp (Hessian-vector product Hv)
    R(θ) ≈ R(θₜ) + gᵀ(θ−θₜ) + ½ (θ−θₜ)ᵀ H (θ−θₜ)       quadratic_model (E9)
    κ(H) = |λ_max| / |λ_min|                        condition_number (E10)
    ½ α gᵀHg < gᵀg                                  decrease_condition (C10)
    gᵀHg = Σᵢ λᵢ (gᵀqᵢ)²,  H = QΛQᵀ                  eig, eigen_progress

Derivatives come from ``torch.func``, so ``f`` is any function of one flat tensor θ of shape [d]
returning a scalar: a landscape, or a closure over a network's flattened parameters. For
Hessians too large to form, :func:`top_eigenvalues` runs Lanczos (``scipy.sparse.linalg.eigsh``)
on the HVP alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh
from torch import Tensor

from firstorder.errors import UserValueError

Scalar = Callable[[Tensor], Tensor]


def _check_square(H: Tensor) -> None:
    if H.ndim < 2 or H.shape[-1] != H.shape[-2]:
        raise UserValueError(f"H must be a square matrix [..., d, d], got shape {tuple(H.shape)}.")


def _check_lr(lr: float) -> None:
    if not lr > 0:
        raise UserValueError(f"lr must be positive, got {lr!r}.")


# --- derivatives --------------------------------------------------------------------------------


def gradient(f: Scalar, x: Tensor) -> Tensor:
    """g = ∇f(x) for a single point x of shape [d]."""
    return torch.func.grad(f)(x)


def hessian(f: Scalar, x: Tensor) -> Tensor:
    """H = ∇²f(x), shape [d, d], for a single point x of shape [d]."""
    return torch.func.hessian(f)(x)


def batch_gradient(f: Scalar, x: Tensor) -> Tensor:
    """∇f at every point of x [..., d] (vmap over the leading dims), shape [..., d]."""
    flat = x.reshape(-1, x.shape[-1])
    return torch.func.vmap(torch.func.grad(f))(flat).reshape(x.shape)


def batch_hessian(f: Scalar, x: Tensor) -> Tensor:
    """∇²f at every point of x [..., d], shape [..., d, d]."""
    d = x.shape[-1]
    return torch.func.vmap(torch.func.hessian(f))(x.reshape(-1, d)).reshape(*x.shape, d)


def hvp(f: Scalar, x: Tensor, v: Tensor) -> Tensor:
    """Hv = ∇²f(x) v without forming H: forward-mode derivative of ∇f along v.

    Forward-over-reverse costs about one extra gradient evaluation, so it scales to networks.
    """
    return torch.func.jvp(torch.func.grad(f), (x,), (v,))[1]


# --- eigen-decomposition ------------------------------------------------------------------------


def eig(H: Tensor) -> tuple[Tensor, Tensor]:
    """H = Q Λ Qᵀ: eigenvalues λ ascending and eigenvectors Q (column i belongs to λᵢ).

    H is symmetrised first, ½ (H + Hᵀ): autograd Hessians are symmetric only up to rounding.
    """
    _check_square(H)
    return torch.linalg.eigh(0.5 * (H + H.mT))


def condition_number(H: Tensor) -> Tensor:
    """κ(H) = |λ|_max / |λ|_min (E10), inf where an eigenvalue is 0; H may be batched [..., d, d].

    The notes write |λ_max| / |λ_min|; for H ≽ 0 this is the same. For an indefinite H we take the
    largest and smallest eigenvalue *magnitudes*, so κ ≥ 1 always (the 2-norm condition number).
    """
    lam = eig(H)[0].abs()
    lam_min = lam.amin(-1)
    return torch.where(lam_min == 0, torch.inf, lam.amax(-1) / lam_min)  # inf also for H = 0


def classify(f: Scalar, x: Tensor, tol: float = 1e-8) -> str:
    """Kind of the critical point x from the signs of the Hessian's eigenvalues.

    "degenerate" when any |λ| < tol (second order cannot decide), else "minimum" (all λ > 0),
    "maximum" (all λ < 0) or "saddle" (both signs). x is assumed to satisfy ∇f(x) = 0.
    """
    lam = eig(hessian(f, x))[0]
    if (lam.abs() < tol).any():
        return "degenerate"
    if (lam > 0).all():
        return "minimum"
    if (lam < 0).all():
        return "maximum"
    return "saddle"


def eigen_progress(H: Tensor, x: Tensor, x_star: Tensor) -> Tensor:
    """c = Qᵀ(x − x*): the error along each eigenvector of H (ascending λ), shape [..., d].

    On a quadratic f = ½ (x−x*)ᵀH(x−x*) gradient descent multiplies cᵢ by (1 − αλᵢ) each step,
    so the directions of small λᵢ barely move (C10): see :func:`gd_contraction`.
    """
    Q = eig(H)[1]
    return (x - x_star) @ Q


def gd_contraction(H: Tensor, lr: float) -> Tensor:
    """|1 − αλᵢ| per eigen-direction (ascending λ): GD's factor on the error cᵢ on a quadratic."""
    _check_lr(lr)
    return (1 - lr * eig(H)[0]).abs()


# --- the quadratic model and step sizes ---------------------------------------------------------


@dataclass(frozen=True)
class QuadraticModel:
    """q(θ) = R(θₜ) + gᵀ(θ−θₜ) + ½ (θ−θₜ)ᵀ H (θ−θₜ) (E9), the second-order Taylor model at θₜ."""

    theta_t: Tensor
    R_t: Tensor
    g: Tensor
    H: Tensor

    def __call__(self, theta: Tensor) -> Tensor:
        """q(θ) for θ of shape [..., d]."""
        d = theta - self.theta_t
        return self.R_t + d @ self.g + 0.5 * ((d @ self.H) * d).sum(-1)

    def after_gd_step(self, lr: float | Tensor) -> Tensor:
        """q(θₜ − αg) = R(θₜ) − α gᵀg + ½ α² gᵀHg, the notes' prediction after one GD step."""
        return self.R_t - predicted_decrease(self.g, self.H, lr)


def quadratic_model(f: Scalar, theta_t: Tensor) -> QuadraticModel:
    """The quadratic model of f around θₜ (E9); its error after a step h is O(h³)."""
    theta_t = theta_t.detach()
    return QuadraticModel(theta_t, f(theta_t).detach(), gradient(f, theta_t), hessian(f, theta_t))


def predicted_decrease(g: Tensor, H: Tensor, lr: float | Tensor) -> Tensor:
    """R(θₜ) − q(θₜ − αg) = α gᵀg − ½ α² gᵀHg; α may be a tensor of learning rates."""
    gg, gHg = g @ g, g @ H @ g
    return lr * gg - 0.5 * lr**2 * gHg


@dataclass(frozen=True)
class DecreaseCondition:
    """The two sides of ½ α gᵀHg < gᵀg (C10); ``bool()`` of it says whether it holds."""

    holds: bool
    lhs: float  # ½ α gᵀHg
    rhs: float  # gᵀg

    def __bool__(self) -> bool:
        return self.holds


def decrease_condition(g: Tensor, H: Tensor, lr: float) -> DecreaseCondition:
    """C10: a GD step of size α lowers the quadratic model iff ½ α gᵀHg < gᵀg.

    From q(θₜ − αg) − R(θₜ) = −α gᵀg + ½ α² gᵀHg < 0, divided by α > 0.
    """
    _check_lr(lr)
    _check_square(H)
    lhs = float(0.5 * lr * (g @ H @ g))
    rhs = float(g @ g)
    return DecreaseCondition(lhs < rhs, lhs, rhs)


def max_stable_lr(H: Tensor) -> float:
    """α < 2/λ_max makes GD converge on a quadratic with Hessian H (every |1 − αλᵢ| < 1).

    inf when λ_max ≤ 0: no positive curvature limits the step.
    """
    lam_max = float(eig(H)[0][-1])
    return 2 / lam_max if lam_max > 0 else float("inf")


def line_search_lr(g: Tensor, H: Tensor) -> float:
    """α* = gᵀg / gᵀHg, the exact line search along −g on the quadratic model.

    It minimises α gᵀg − ½ α² gᵀHg; inf when gᵀHg ≤ 0 (the model falls without bound along −g).
    """
    gHg = float(g @ H @ g)
    return float(g @ g) / gHg if gHg > 0 else float("inf")


# --- Lanczos on a Hessian-vector product ------------------------------------------------------

_ORDER = {"LA": "largest value first", "SA": "smallest value first", "LM": "largest |λ| first"}


def top_eigenvalues(
    hvp: Callable[[Tensor], Tensor],
    dim: int,
    k: int = 1,
    which: str = "LA",
    dtype: torch.dtype = torch.float64,
    tol: float = 1e-10,
    seed: int = 0,
    *,
    return_eigenvectors: bool = False,
    device: torch.device | str | None = None,
    maxiter: int | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """k extreme eigenvalues of a symmetric d×d matrix known only through v ↦ Hv (Lanczos).

    which: "LA" largest algebraic (λ_max, for max_stable_lr = 2/λ_max), "SA" smallest algebraic
    (negative curvature at saddles), "LM" largest magnitude. Returned in that order (largest
    first for "LA"/"LM", smallest first for "SA"), as a float64 tensor [k]; with
    ``return_eigenvectors`` also the eigenvectors as columns [dim, k]. The Lanczos start vector
    comes from ``seed``, so results are reproducible. ``hvp`` receives tensors of ``dtype`` on
    ``device``: e.g. ``lambda v: curvature.hvp(f, theta, v)``.
    """
    if which not in _ORDER:
        raise UserValueError(f"which must be one of {', '.join(_ORDER)}, got {which!r}.")
    if not (isinstance(dim, int) and dim >= 2):
        raise UserValueError(f"dim must be an int >= 2, got {dim!r}.")
    if not (isinstance(k, int) and 1 <= k < dim):
        raise UserValueError(f"k must be an int in [1, dim - 1] = [1, {dim - 1}], got {k!r}.")

    def matvec(v: np.ndarray) -> np.ndarray:
        t = torch.as_tensor(np.asarray(v, dtype=np.float64).reshape(-1), dtype=dtype, device=device)
        return hvp(t).detach().to("cpu", torch.float64).numpy()

    op = LinearOperator((dim, dim), matvec=matvec, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(dim)
    lam, vecs = eigsh(op, k=k, which=which, tol=tol, v0=v0, maxiter=maxiter)
    key = {"LA": -lam, "SA": lam, "LM": -np.abs(lam)}[which]
    order = np.argsort(key, kind="stable")
    lam_t = torch.from_numpy(lam[order].copy())
    if return_eigenvectors:
        return lam_t, torch.from_numpy(vecs[:, order].copy())
    return lam_t
