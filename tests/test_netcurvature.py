"""Network curvature against a dense Hessian from torch.autograd.functional.hessian of E8
written out in this file, and Adam's preconditioner against E5 written out in NumPy."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from firstorder import netcurvature as nc
from firstorder import optim
from firstorder.nn import MLP


@pytest.fixture(autouse=True)
def one_thread():
    """Small networks: one thread per test process (pytest -n 2 fills the cores) is faster,
    and far faster on a busy machine, than OpenMP threads competing for them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


ACT = {"tanh": torch.tanh, "relu": torch.relu, "identity": lambda z: z}


def small_problem(loss: str = "cross_entropy", g: str = "tanh", seed: int = 0):
    """A 3-5-4-2 network in float64 (d = 20 + 24 + 10 = 54) and 30 examples."""
    gen = torch.Generator().manual_seed(seed)
    model = MLP([3, 5, 4, 2], g, seed=seed).double()
    x = torch.randn(30, 3, generator=gen, dtype=torch.float64)
    if loss == "cross_entropy":
        return model, F.cross_entropy, x, torch.randint(0, 2, (30,), generator=gen)
    return model, F.mse_loss, x, torch.randn(30, 2, generator=gen, dtype=torch.float64)


def dense_hessian(model: MLP, loss_fn, x, y) -> torch.Tensor:
    """H of R(θ) = loss(f_θ(x), y) with f_θ written out per E8 over the flat θ."""
    shapes = [p.shape for p in model.theta]
    g = [layer.g for layer in model.layers]

    def R(theta: torch.Tensor) -> torch.Tensor:
        pieces, start = [], 0
        for s in shapes:
            pieces.append(theta[start : start + s.numel()].reshape(s))
            start += s.numel()
        a = x
        for i in range(len(g)):
            W, b = pieces[2 * i], pieces[2 * i + 1]
            a = ACT[g[i]](a @ W.T + b)  # rows of a are examples: (W a + b)ᵀ = aᵀWᵀ + bᵀ
        return loss_fn(a, y)

    theta = torch.cat([p.detach().reshape(-1) for p in model.theta])
    return torch.autograd.functional.hessian(R, theta)


@pytest.mark.parametrize(("loss", "g"), [("cross_entropy", "tanh"), ("mse", "relu")])
def test_hvp_equals_dense_hessian_times_v(loss, g):
    model, loss_fn, x, y = small_problem(loss, g)
    H = dense_hessian(model, loss_fn, x, y)
    hvp = nc.risk_hvp(model, loss_fn, x, y)
    V = torch.randn(5, H.shape[0], dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for v in V:
        torch.testing.assert_close(hvp(v), H @ v, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(torch.func.vmap(hvp)(V), V @ H.T, rtol=1e-10, atol=1e-12)


def test_hvp_on_a_float32_model_accepts_float64_vectors():
    model, loss_fn, x, y = small_problem()
    H = dense_hessian(model, loss_fn, x, y)
    hvp = nc.risk_hvp(model.float(), loss_fn, x.float(), y)
    v = torch.randn(H.shape[0], dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    Hv = hvp(v)
    assert Hv.dtype == torch.float64
    torch.testing.assert_close(Hv, H @ v, rtol=1e-4, atol=1e-5)


def test_hvp_checks_the_vector_length():
    model, loss_fn, x, y = small_problem()
    with pytest.raises(ValueError, match="v must have 54 entries"):
        nc.risk_hvp(model, loss_fn, x, y)(torch.zeros(53, dtype=torch.float64))


def test_sharpness_equals_top_eigenvalues_of_the_dense_hessian():
    model, loss_fn, x, y = small_problem("mse", "tanh")
    lam = torch.linalg.eigvalsh(dense_hessian(model, loss_fn, x, y))
    top = nc.sharpness(model, loss_fn, x, y, k=3)
    assert top.dtype == torch.float64
    torch.testing.assert_close(top, lam.flip(0)[:3], rtol=1e-6, atol=0)
    top32 = nc.sharpness(model.float(), loss_fn, x.float(), y.float())  # looser default tol
    torch.testing.assert_close(top32, lam[-1:], rtol=1e-4, atol=0)


def test_hessian_diagonal_is_exact():
    model, loss_fn, x, y = small_problem()
    H = dense_hessian(model, loss_fn, x, y)
    diag = nc.hessian_diagonal(model, loss_fn, x, y, chunk_size=7)  # chunks not dividing d
    torch.testing.assert_close(diag, H.diagonal(), rtol=1e-10, atol=1e-12)


def test_hutchinson_diagonal_is_unbiased_and_seeded():
    model, loss_fn, x, y = small_problem()
    H = dense_hessian(model, loss_fn, x, y)
    m = 4000
    est = nc.hutchinson_diagonal(model, loss_fn, x, y, n_samples=m, seed=0)
    # standard error of entry i: √(Σ_{j≠i} Hᵢⱼ² / m); 5 of them bound every entry
    off = (H**2).sum(1) - H.diagonal() ** 2
    assert ((est - H.diagonal()).abs() <= 5 * (off / m).sqrt() + 1e-12).all()
    assert torch.equal(est, nc.hutchinson_diagonal(model, loss_fn, x, y, n_samples=m, seed=0))
    assert not torch.equal(est, nc.hutchinson_diagonal(model, loss_fn, x, y, n_samples=m, seed=1))
    with pytest.raises(ValueError, match="n_samples must be a positive integer; got 0"):
        nc.hutchinson_diagonal(model, loss_fn, x, y, n_samples=0)


def adam_by_hand(model, loss_fn, x, y, steps, lr, rho1, rho2, eps, amsgrad=False, decay=0.0):
    """E5 in float64 NumPy on a copy of the network; returns α/(√r̂ + ε) after ``steps``.
    ``amsgrad``: r̂ from the running maximum of r (Reddi et al. 2018); ``decay``: AdamW's
    decoupled θ ← (1 − α·decay) θ before each step (Loshchilov & Hutter 2019)."""
    model = copy.deepcopy(model)
    s = [np.zeros(p.shape) for p in model.theta]
    r = [np.zeros(p.shape) for p in model.theta]
    r_max = [np.zeros(p.shape) for p in model.theta]
    for k in range(1, steps + 1):
        grads = torch.autograd.grad(loss_fn(model(x), y), model.theta)
        with torch.no_grad():
            for i, (p, g) in enumerate(zip(model.theta, grads, strict=True)):
                g = g.numpy()
                p *= 1 - lr * decay
                s[i] = rho1 * s[i] + (1 - rho1) * g
                r[i] = rho2 * r[i] + (1 - rho2) * g * g
                r_max[i] = np.maximum(r_max[i], r[i])
                used = r_max[i] if amsgrad else r[i]
                s_hat, r_hat = s[i] / (1 - rho1**k), used / (1 - rho2**k)
                p -= torch.from_numpy(lr / (np.sqrt(r_hat) + eps) * s_hat)
    r_hat = [ri / (1 - rho2**steps) for ri in (r_max if amsgrad else r)]
    return np.concatenate([(lr / (np.sqrt(rh) + eps)).ravel() for rh in r_hat])


@pytest.mark.parametrize("which", ["ours", "torch", "torch-adamw", "torch-amsgrad"])
def test_effective_step_equals_e5_by_hand(which):
    model, loss_fn, x, y = small_problem()
    lr, rho1, rho2, eps = 0.01, 0.8, 0.95, 1e-3  # unusual values, so defaults cannot hide a bug
    betas = (rho1, rho2)
    if which == "ours":
        opt = optim.Adam(model.parameters(), lr=lr, rho1=rho1, rho2=rho2, eps=eps)
    elif which == "torch":
        opt = torch.optim.Adam(model.parameters(), lr=lr, betas=betas, eps=eps)
    elif which == "torch-adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=betas, eps=eps, weight_decay=0.5)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr, betas=betas, eps=eps, amsgrad=True)
    decay = 0.5 if which == "torch-adamw" else 0.0
    expected = adam_by_hand(
        model, loss_fn, x, y, 4, lr, rho1, rho2, eps, which == "torch-amsgrad", decay
    )
    for _ in range(4):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    got = nc.effective_step(opt, model.parameters())
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)


def test_effective_step_is_none_for_non_adaptive_and_needs_state():
    model, loss_fn, x, y = small_problem()
    assert nc.effective_step(optim.GD(model.parameters(), lr=0.1), model.parameters()) is None
    assert (
        nc.effective_step(torch.optim.SGD(model.parameters(), lr=0.1), model.parameters()) is None
    )
    with pytest.raises(ValueError, match=r"params\[0\] .* at least once"):
        nc.effective_step(optim.Adam(model.parameters()), model.parameters())


def test_adam_preconditioner_vs_hessian():
    model, loss_fn, x, y = small_problem()
    opt = optim.Adam(model.parameters(), lr=0.01)
    opt.zero_grad()
    loss_fn(model(x), y).backward()
    opt.step()
    H = dense_hessian(model, loss_fn, x, y)  # at θ after the step, where the comparison is made
    c = nc.adam_preconditioner_vs_hessian(opt, model, loss_fn, x, y)
    torch.testing.assert_close(c.hessian_diagonal, H.diagonal(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(c.inverse_curvature, 1 / H.diagonal().abs())
    torch.testing.assert_close(c.effective_step, nc.effective_step(opt, model.parameters()))
    approx = nc.adam_preconditioner_vs_hessian(opt, model, loss_fn, x, y, exact=False, n_samples=8)
    assert approx.hessian_diagonal.shape == (54,)
    with pytest.raises(ValueError, match="optimizer must be adaptive .* got GD"):
        nc.adam_preconditioner_vs_hessian(
            optim.GD(model.parameters(), lr=1.0), model, loss_fn, x, y
        )
