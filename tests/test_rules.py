"""The optimizers against the notes' equations, written again here in float64 NumPy.

These references are deliberately independent of firstorder.rules: each is the notes' equation
typed from the notes, so a slip in the library cannot hide in the test.
"""

import numpy as np
import pytest
import torch

from firstorder.optim import GD, AdaGrad, Adam, AdamW, Momentum, Nesterov, RMSProp

STEPS = 30
SHAPE = (7, 5)


# --- the notes' equations, float64 NumPy, one function a rule -------------------------------
# ``sign`` is the sign of the step, −1 in the notes. With |θ₀|, |g| and sign=+1 the same
# function runs the rule on magnitudes, every subtraction made an addition: the scale against
# which rounding errors are measured (see ``rounding_bound``).


def np_gd(theta, grads, lr, sign=-1):
    for g in grads:
        theta = theta + sign * lr * g  # E1
    return theta


def np_momentum(theta, grads, lr, rho, sign=-1):
    s = np.zeros_like(theta)
    for g in grads:
        s = rho * s + sign * lr * g  # E2
        theta = theta + s
    return theta


def np_nesterov(theta, grads, lr, rho, sign=-1):
    s = np.zeros_like(theta)
    for g in grads:
        s = rho * s + sign * lr * g  # Sutskever et al. 2013 in the notes' convention of E2
        theta = theta + rho * s + sign * lr * g
    return theta


def np_adagrad(theta, grads, lr, eps, sign=-1):
    r = np.zeros_like(theta)
    for g in grads:
        r = r + g * g  # E3
        theta = theta + sign * lr / (np.sqrt(r) + eps) * g
    return theta


def np_rmsprop(theta, grads, lr, rho, eps, sign=-1):
    r = np.zeros_like(theta)
    for g in grads:
        r = rho * r + (1 - rho) * g * g  # E4
        theta = theta + sign * lr / (np.sqrt(r) + eps) * g
    return theta


def np_adam(theta, grads, lr, rho1, rho2, eps, bias_correction=True, sign=-1):
    s = np.zeros_like(theta)
    r = np.zeros_like(theta)
    for k, g in enumerate(grads, start=1):
        s = rho1 * s + (1 - rho1) * g  # E5
        r = rho2 * r + (1 - rho2) * g * g
        s_hat = s / (1 - rho1**k) if bias_correction else s
        r_hat = r / (1 - rho2**k) if bias_correction else r
        theta = theta + sign * lr / (np.sqrt(r_hat) + eps) * s_hat
    return theta


def np_adamw(theta, grads, lr, rho1, rho2, eps, weight_decay, bias_correction=True, sign=-1):
    s = np.zeros_like(theta)
    r = np.zeros_like(theta)
    for k, g in enumerate(grads, start=1):
        # Loshchilov & Hutter 2019: decay θ by αδθ (decoupled from g), then E5 with the same g
        theta = theta + sign * lr * weight_decay * theta
        s = rho1 * s + (1 - rho1) * g
        r = rho2 * r + (1 - rho2) * g * g
        s_hat = s / (1 - rho1**k) if bias_correction else s
        r_hat = r / (1 - rho2**k) if bias_correction else r
        theta = theta + sign * lr / (np.sqrt(r_hat) + eps) * s_hat
    return theta


# --- how far two roundings of the same steps may drift apart ---------------------------------

U64 = 2.0**-53  # unit roundoff of float64, 1.1e-16
U32 = 2.0**-24  # unit roundoff of float32, 6.0e-8
# roundings of one coordinate in one step of the longest rule (AdamW): the decay θ(1 − αδ) (2),
# then Adam's g·g, two lerps (2 each), the two bias corrections, √, +ε, α/·, ·ŝ, θ − ·;
# elementwise IEEE operations, each exact to
# u relative, whatever the CPU (an FMA or a SIMD width changes which roundings happen, not
# their number by more than this)
OPS = 14


def rounding_bound(reference, theta0, grads, hyper, u_ours, u_ref=U64):
    """A first-order bound, coordinate by coordinate, on |ours − reference| after N steps.

    Each operation rounds by at most u relative to its result; results cancel only in the
    sums (θ ± step, s ← ρ s ± α g), so every error is at most a multiple of the same steps run
    on magnitudes. The multiple is OPS + 3N: the OPS roundings of each step, the N additions
    that accumulate θ, and the state s or r, whose relative error grows by u a step and enters
    the step at most twice (ŝ, and r̂ under a square root). The gradients are given, not
    computed from θ, so nothing amplifies an error. The hyperparameter arithmetic (1 − ρᵏ) is
    the same Python float expression on both sides. Both computations round: u_ours + u_ref.
    """
    magnitude = reference(np.abs(theta0), [np.abs(g) for g in grads], sign=1, **hyper)
    return (OPS + 3 * len(grads)) * (u_ours + u_ref) * magnitude


def assert_within(got, expected, bound):
    excess = np.abs(got - expected) / bound
    assert excess.max() <= 1, f"{excess.max():.3g} times the rounding bound"


CASES = [
    (GD, np_gd, dict(lr=0.1)),
    (GD, np_gd, dict(lr=1e-3)),
    (GD, np_gd, dict(lr=2.5)),
    (Momentum, np_momentum, dict(lr=0.01, rho=0.9)),
    (Momentum, np_momentum, dict(lr=0.1, rho=0.0)),
    (Momentum, np_momentum, dict(lr=1e-3, rho=0.99)),
    (Nesterov, np_nesterov, dict(lr=0.01, rho=0.9)),
    (Nesterov, np_nesterov, dict(lr=0.1, rho=0.0)),
    (Nesterov, np_nesterov, dict(lr=1e-3, rho=0.99)),
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
    (AdamW, np_adamw, dict(lr=1e-3, rho1=0.9, rho2=0.999, eps=1e-8, weight_decay=1e-2)),
    (AdamW, np_adamw, dict(lr=0.1, rho1=0.5, rho2=0.9, eps=1e-3, weight_decay=0.5)),
    (AdamW, np_adamw, dict(lr=0.01, rho1=0.9, rho2=0.99, eps=1e-6, weight_decay=0.0)),
    (
        AdamW,
        np_adamw,
        dict(lr=0.01, rho1=0.9, rho2=0.999, eps=1e-8, weight_decay=0.1, bias_correction=False),
    ),
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
    assert_within(
        theta.detach().numpy(), expected, rounding_bound(reference, theta0, grads, hyper, U64)
    )


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
    expected = reference(theta0, grads, **hyper)
    assert_within(
        theta.detach().numpy(), expected, rounding_bound(reference, theta0, grads, hyper, U64)
    )


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
    # the float64 reference starts from the same float32 numbers: only the arithmetic differs
    theta0, grads = theta0.astype(np.float64), [g.astype(np.float64) for g in grads]
    expected = reference(theta0, grads, **hyper)
    assert_within(
        theta.detach().numpy(), expected, rounding_bound(reference, theta0, grads, hyper, U32)
    )


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
    # torch's AdamW: θ ← θ(1 − αδ), then Adam's step with ε outside √r̂, as E5 and ours
    (
        lambda p: AdamW(p, lr=1e-3, rho1=0.9, rho2=0.999, eps=1e-8, weight_decay=1e-2),
        lambda p: torch.optim.AdamW(p, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2),
    ),
    (
        lambda p: AdamW(p, lr=0.05, rho1=0.8, rho2=0.99, eps=1e-4, weight_decay=0.3),
        lambda p: torch.optim.AdamW(p, lr=0.05, betas=(0.8, 0.99), eps=1e-4, weight_decay=0.3),
    ),
]


PEER_STEPS = 100


def least_squares():
    """The same problem for both: a least-squares risk, so gradients depend on the trajectory."""
    gen = torch.Generator().manual_seed(0)
    A = torch.randn(20, 6, dtype=torch.float64, generator=gen)
    y = torch.randn(20, dtype=torch.float64, generator=gen)
    return A, y, torch.randn(6, dtype=torch.float64, generator=gen)


def descend(make, theta0, A, y, kick_at=None, kick=1e-10):
    """PEER_STEPS steps from θ₀; at step ``kick_at``, θ and every state tensor are perturbed
    by a random relative ``kick``, as a rounding would."""
    theta = theta0.clone().requires_grad_()
    opt = make([theta])
    gen = torch.Generator().manual_seed(kick_at or 0)
    for k in range(PEER_STEPS):
        if k == kick_at:
            with torch.no_grad():
                for t in [theta, *(v for v in opt.state[theta].values() if torch.is_tensor(v))]:
                    t.mul_(1 + kick * torch.randn(t.shape, dtype=t.dtype, generator=gen))
        opt.zero_grad()
        ((A @ theta - y) ** 2).mean().backward()
        opt.step()
    return theta.detach()


@pytest.mark.parametrize(("ours", "peer"), PEERS)
def test_agrees_with_torch_optim_over_100_steps(ours, peer):
    A, y, theta0 = least_squares()
    expected = descend(peer, theta0, A, y)
    got = descend(ours, theta0, A, y)
    # The two libraries order a step's operations differently (torch: addcmul, addcdiv; ours:
    # lerp, reciprocal), so each step's results differ by up to OPS roundings, u relative each,
    # on each side. Here the gradient depends on θ, so a difference made at step k is carried
    # to step N by the dynamics, and magnified by at most A, the amplification of the N − k
    # remaining steps, measured on this problem by kicking θ and the state at steps 0, 10, …
    # (about 2 for GD, momentum, AdaGrad, Adam; 16 to 57 for RMSProp, seen on two CPUs, whose
    # √r follows |g| down as θ converges; a kick every 10 steps samples A, it does not bound
    # it, hence the margin below). N such differences add up:
    #     |ours − torch| ≤ N · OPS · 2u · A · max|θ|.
    # A wrong equation (ε inside the root, α outside the velocity, no bias correction) moves θ
    # by 1e-4 or more; this bound is 1e-10 or less.
    kick = 1e-10
    reference = got.abs().max()
    amplification = max(
        (
            (descend(ours, theta0, A, y, kick_at=k, kick=kick) - got).abs().max()
            / (kick * reference)
        ).item()
        for k in range(0, PEER_STEPS, 10)
    )
    bound = PEER_STEPS * OPS * 2 * U64 * max(amplification, 1.0) * reference.item()
    torch.testing.assert_close(got, expected, rtol=0, atol=bound)


@pytest.mark.parametrize(("lr", "rho"), [(0.01, 0.9), (0.05, 0.5), (1e-3, 0.99)])
def test_nesterov_is_torchs_nesterov_sgd(lr, rho):
    """Nesterov(lr=α, rho=ρ) and torch.optim.SGD(lr=α, momentum=ρ, nesterov=True) follow the
    same trajectory for a constant α. torch keeps b and steps

        b_k = ρ b_{k−1} + g_k ;  θ_k = θ_{k−1} − α (g_k + ρ b_k)      (b_0 = 0)

    and we keep s (α inside the velocity, as E2)

        s_k = ρ s_{k−1} − α g_k ;  θ_k = θ_{k−1} + ρ s_k − α g_k     (s_0 = 0).

    By induction s_k = −α b_k: true at k = 0, and s_k = ρ(−α b_{k−1}) − α g_k = −α b_k. Then
    ρ s_k − α g_k = −α (g_k + ρ b_k): the same step from the same θ, hence the same next g.
    (With α changing between steps the two differ: torch rescales the old b by the new α.)
    Only rounding separates them, bounded as for the other peers."""
    test_agrees_with_torch_optim_over_100_steps(
        lambda p: Nesterov(p, lr=lr, rho=rho),
        lambda p: torch.optim.SGD(p, lr=lr, momentum=rho, dampening=0, nesterov=True),
    )


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
    # one step: OPS roundings on each side, measured against the step run on magnitudes
    bound = (
        OPS
        * 2
        * U64
        * (np.abs(theta0.numpy()) + lr * np.abs(g.numpy()) / (np.abs(g.numpy()) + eps))
    )
    assert_within(results[0], expected, bound)
    assert_within(results[1], expected, bound)
