"""The optimizers against the notes' equations, written again here in float64 NumPy.

These references are deliberately independent of firstorder.rules: each is the notes' equation
typed from the notes, so a slip in the library cannot hide in the test.
"""

import numpy as np
import pytest
import torch

from firstorder.optim import GD, AdaGrad, Adam, Momentum, RMSProp

STEPS = 30
SHAPE = (7, 5)


# --- the notes' equations, float64 NumPy, one function a rule -------------------------------


def np_gd(theta, grads, lr):
    for g in grads:
        theta = theta - lr * g  # E1
    return theta


def np_momentum(theta, grads, lr, rho):
    s = np.zeros_like(theta)
    for g in grads:
        s = rho * s - lr * g  # E2
        theta = theta + s
    return theta


def np_adagrad(theta, grads, lr, eps):
    r = np.zeros_like(theta)
    for g in grads:
        r = r + g * g  # E3
        theta = theta - lr / (np.sqrt(r) + eps) * g
    return theta


def np_rmsprop(theta, grads, lr, rho, eps):
    r = np.zeros_like(theta)
    for g in grads:
        r = rho * r + (1 - rho) * g * g  # E4
        theta = theta - lr / (np.sqrt(r) + eps) * g
    return theta


def np_adam(theta, grads, lr, rho1, rho2, eps, bias_correction=True):
    s = np.zeros_like(theta)
    r = np.zeros_like(theta)
    for k, g in enumerate(grads, start=1):
        s = rho1 * s + (1 - rho1) * g  # E5
        r = rho2 * r + (1 - rho2) * g * g
        s_hat = s / (1 - rho1**k) if bias_correction else s
        r_hat = r / (1 - rho2**k) if bias_correction else r
        theta = theta - lr / (np.sqrt(r_hat) + eps) * s_hat
    return theta


CASES = [
    (GD, np_gd, dict(lr=0.1)),
    (GD, np_gd, dict(lr=1e-3)),
    (GD, np_gd, dict(lr=2.5)),
    (Momentum, np_momentum, dict(lr=0.01, rho=0.9)),
    (Momentum, np_momentum, dict(lr=0.1, rho=0.0)),
    (Momentum, np_momentum, dict(lr=1e-3, rho=0.99)),
    (AdaGrad, np_adagrad, dict(lr=0.1, eps=1e-7)),
    (AdaGrad, np_adagrad, dict(lr=1.0, eps=1e-3)),
    (AdaGrad, np_adagrad, dict(lr=0.01, eps=1.0)),
    (RMSProp, np_rmsprop, dict(lr=0.01, rho=0.9, eps=1e-6)),
    (RMSProp, np_rmsprop, dict(lr=0.1, rho=0.5, eps=1e-3)),
    (RMSProp, np_rmsprop, dict(lr=1e-3, rho=0.0, eps=1e-8)),
    (Adam, np_adam, dict(lr=1e-3, rho1=0.9, rho2=0.999, eps=1e-8)),
    (Adam, np_adam, dict(lr=0.1, rho1=0.5, rho2=0.9, eps=1e-3)),
    (Adam, np_adam, dict(lr=0.01, rho1=0.0, rho2=0.99, eps=1e-6)),
    (Adam, np_adam, dict(lr=0.01, rho1=0.9, rho2=0.999, eps=1e-8, bias_correction=False)),
]


def random_gradients(seed, n=STEPS, shape=SHAPE):
    rng = np.random.default_rng(seed)
    # gradients over several orders of magnitude, as a network's are
    return [rng.normal(size=shape) * 10.0 ** rng.uniform(-3, 1, size=shape) for _ in range(n)]


@pytest.mark.parametrize(("cls", "reference", "hyper"), CASES)
def test_rule_matches_notes_equation_in_float64(cls, reference, hyper):
    rng = np.random.default_rng(0)
    theta0 = rng.normal(size=SHAPE)
    grads = random_gradients(1)

    theta = torch.tensor(theta0, requires_grad=True)
    opt = cls([theta], **hyper)
    for g in grads:
        theta.grad = torch.tensor(g)
        opt.step()

    expected = reference(theta0, grads, **hyper)
    np.testing.assert_allclose(theta.detach().numpy(), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("cls", "reference", "hyper"), CASES[::3])
def test_non_contiguous_parameter(cls, reference, hyper):
    rng = np.random.default_rng(2)
    theta0 = rng.normal(size=SHAPE)
    grads = random_gradients(3)
    base = torch.tensor(theta0.T.copy())  # stored transposed: theta is a non-contiguous view
    theta = base.t().requires_grad_()
    assert not theta.is_contiguous()
    opt = cls([theta], **hyper)
    for g in grads:
        theta.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_allclose(theta.detach().numpy(), reference(theta0, grads, **hyper), 1e-12)


@pytest.mark.parametrize(("cls", "reference", "hyper"), CASES[::3])
def test_float32_follows_float64_reference(cls, reference, hyper):
    rng = np.random.default_rng(4)
    theta0 = rng.normal(size=SHAPE).astype(np.float32)
    grads = [g.astype(np.float32) for g in random_gradients(5)]
    theta = torch.tensor(theta0, requires_grad=True)
    opt = cls([theta], **hyper)
    for g in grads:
        theta.grad = torch.tensor(g)
        opt.step()
    assert theta.dtype == torch.float32
    expected = reference(theta0.astype(np.float64), [g.astype(np.float64) for g in grads], **hyper)
    np.testing.assert_allclose(theta.detach().numpy(), expected, rtol=1e-4, atol=1e-5)


# --- against the peer library ---------------------------------------------------------------

PEERS = [
    (
        lambda p: Momentum(p, lr=0.01, rho=0.9),
        lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, dampening=0),
    ),
    (
        lambda p: Momentum(p, lr=0.1, rho=0.5),
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.5, dampening=0),
    ),
    (lambda p: GD(p, lr=0.05), lambda p: torch.optim.SGD(p, lr=0.05)),
    (
        lambda p: AdaGrad(p, lr=0.1, eps=1e-7),
        lambda p: torch.optim.Adagrad(p, lr=0.1, eps=1e-7),
    ),
    (
        lambda p: RMSProp(p, lr=0.01, rho=0.9, eps=1e-6),
        lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-6),
    ),
    (
        lambda p: Adam(p, lr=1e-3, rho1=0.9, rho2=0.999, eps=1e-8),
        lambda p: torch.optim.Adam(p, lr=1e-3, betas=(0.9, 0.999), eps=1e-8),
    ),
    (
        lambda p: Adam(p, lr=0.05, rho1=0.8, rho2=0.99, eps=1e-4),
        lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.8, 0.99), eps=1e-4),
    ),
]


@pytest.mark.parametrize(("ours", "peer"), PEERS)
def test_agrees_with_torch_optim_over_100_steps(ours, peer):
    # the same problem for both: a least-squares risk, so gradients depend on the trajectory
    torch.manual_seed(0)
    A = torch.randn(20, 6, dtype=torch.float64)
    y = torch.randn(20, dtype=torch.float64)
    theta0 = torch.randn(6, dtype=torch.float64)

    def run(make):
        theta = theta0.clone().requires_grad_()
        opt = make([theta])
        for _ in range(100):
            opt.zero_grad()
            loss = ((A @ theta - y) ** 2).mean()
            loss.backward()
            opt.step()
        return theta.detach()

    torch.testing.assert_close(run(ours), run(peer), rtol=1e-12, atol=1e-14)


def test_first_adam_step_equals_first_adagrad_step_claim_c1():
    g = torch.tensor([3.0, -1e-3, 0.5, -20.0], dtype=torch.float64)
    theta0 = torch.tensor([1.0, 2.0, -1.0, 0.0], dtype=torch.float64)
    lr, eps = 0.1, 1e-8
    expected = theta0.numpy() - lr * g.numpy() / (np.abs(g.numpy()) + eps)

    results = []
    for make in (lambda p: Adam(p, lr=lr, eps=eps), lambda p: AdaGrad(p, lr=lr, eps=eps)):
        theta = theta0.clone().requires_grad_()
        opt = make([theta])
        theta.grad = g.clone()
        opt.step()
        results.append(theta.detach().numpy())
    np.testing.assert_allclose(results[0], expected, rtol=1e-14)
    np.testing.assert_allclose(results[1], expected, rtol=1e-14)
