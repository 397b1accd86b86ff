"""The torch.optim contract: param groups, state_dict, closures, schedulers, bad input."""

import io
import math

import pytest
import torch

from firstorder import rules
from firstorder.optim import GD, OPTIMIZERS, AdaGrad, Adam, Momentum, Newton, RMSProp


def _maker(cls):
    return lambda p, **kw: cls(p, lr=kw.get("lr", 0.05))


# every optimizer that steps from .grad (Newton differentiates its closure's loss itself: its
# own tests below), each at α = 0.05 and its other defaults; a new rule joins by existing
MAKERS = {
    name: _maker(OPTIMIZERS[name]) for name, rule in rules.RULES.items() if not rule.needs_hessian
}


def make_problem(init_seed=0):
    data = torch.Generator().manual_seed(1234)
    x, y = torch.randn(32, 4, generator=data), torch.randn(32, 1, generator=data)
    torch.manual_seed(init_seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))

    def closure_for(opt):
        def closure():
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            return loss

        return closure

    return model, closure_for


def params_of(model):
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("name", MAKERS)
def test_state_dict_round_trip_continues_in_lockstep(name, tmp_path):
    # uninterrupted: 10 steps
    model_a, closure_for = make_problem()
    opt_a = MAKERS[name](model_a.parameters())
    for _ in range(10):
        opt_a.step(closure_for(opt_a))

    # interrupted: 5 steps, checkpoint to disk, fresh model and optimizer, load, 5 more
    model_b, closure_for_b = make_problem()
    opt_b = MAKERS[name](model_b.parameters())
    for _ in range(5):
        opt_b.step(closure_for_b(opt_b))
    path = tmp_path / "ckpt.pt"
    torch.save({"model": model_b.state_dict(), "opt": opt_b.state_dict()}, path)

    model_c, closure_for_c = make_problem(init_seed=1)  # different init, overwritten by the load
    opt_c = MAKERS[name](model_c.parameters(), lr=123.0)  # lr overwritten by the load too
    ckpt = torch.load(path, weights_only=True)
    model_c.load_state_dict(ckpt["model"])
    opt_c.load_state_dict(ckpt["opt"])
    for _ in range(5):
        opt_c.step(closure_for_c(opt_c))

    # bit for bit: the resumed run performs the same operations on the same numbers, in the
    # same order, on the same machine
    for pa, pc in zip(params_of(model_a), params_of(model_c), strict=True):
        assert torch.equal(pa, pc)


def test_adam_step_counter_is_an_int_that_does_not_saturate():
    theta = torch.zeros(3, requires_grad=True)
    opt = Adam([theta])
    theta.grad = torch.ones(3)
    opt.step()
    state = opt.state[theta]
    assert state["k"] == 1 and isinstance(state["k"], int)
    # float32 cannot count past 2**24; the counter must
    state["k"] = 2**24
    opt.step()
    assert state["k"] == 2**24 + 1
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    assert torch.load(buf, weights_only=True)["state"][0]["k"] == 2**24 + 1


@pytest.mark.parametrize("name", MAKERS)
def test_closure_loss_is_returned(name):
    model, closure_for = make_problem()
    opt = MAKERS[name](model.parameters())
    closure = closure_for(opt)
    expected = closure().item()
    loss = opt.step(closure)
    # the closure evaluated twice at the same θ: the same float32 forward pass, except that a
    # BLAS may block its sums by the memory's alignment: sums of 4 and 8 terms in two layers,
    # (4 + 8 + 32) roundings of u = 6e-8 relative to the sums of magnitudes, which the risk's
    # terms do not exceed by more than 10x here: 44 · 6e-8 · 10 < 1e-4
    assert isinstance(loss, torch.Tensor) and math.isclose(loss.item(), expected, rel_tol=1e-4)
    after = closure().item()  # the loss after the step, which step must not return
    assert not math.isclose(after, expected, rel_tol=1e-4)
    assert opt.step() is None


@pytest.mark.parametrize("name", MAKERS)
def test_parameters_without_gradient_are_skipped(name):
    a = torch.ones(3, requires_grad=True)
    b = torch.ones(3, requires_grad=True)
    opt = MAKERS[name]([a, b])
    a.grad = torch.ones(3)
    opt.step()
    assert torch.equal(b.detach(), torch.ones(3))
    assert b not in opt.state
    assert not torch.equal(a.detach(), torch.ones(3))


def test_param_groups_have_their_own_hyperparameters():
    a = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = Momentum([{"params": [a]}, {"params": [b], "lr": 0.5, "rho": 0.0}], lr=0.1, rho=0.9)
    g = torch.tensor([1.0, -2.0], dtype=torch.float64)
    for _ in range(2):
        a.grad, b.grad = g.clone(), g.clone()
        opt.step()
    # group 0: s1 = -0.1 g, s2 = 0.9 s1 - 0.1 g; theta = s1 + s2 = -(0.1 + 0.19) g. Seven
    # roundings against two (0.29 and its product), all of terms of one sign: 9u < 2e-15
    torch.testing.assert_close(a.detach(), -0.29 * g, rtol=2e-15, atol=0)
    # group 1: plain steps of 0.5, and ρ = 0: every number is exact in binary
    assert torch.equal(b.detach(), -1.0 * g)
    with pytest.raises(ValueError, match="rho"):
        opt.add_param_group({"params": [torch.zeros(1, requires_grad=True)], "rho": 1.0})


SCHEDULERS = [
    lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5),
    lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9),
    lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5),
    lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1 / (1 + t)),
    lambda opt: torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=3),
    lambda opt: torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=0.1, total_steps=10, cycle_momentum=False
    ),
    lambda opt: torch.optim.lr_scheduler.CyclicLR(
        opt, base_lr=0.01, max_lr=0.1, step_size_up=2, cycle_momentum=False
    ),
    lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0),
]


@pytest.mark.parametrize("make_scheduler", SCHEDULERS)
def test_scheduler_sets_eta_t_as_e6_says(make_scheduler):
    # E6: theta_{t+1} = theta_t - eta(t) * m_hat / (sqrt(v_hat) + eps). With a constant gradient
    # g, m_hat = g and v_hat = g*g at every step, so each step moves theta by -eta(t) g/(|g|+eps).
    theta = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = Adam([theta], lr=0.1)
    sched = make_scheduler(opt)
    g = torch.tensor([2.0, -0.5], dtype=torch.float64)
    etas = []
    for _ in range(8):
        eta_t = opt.param_groups[0]["lr"]
        etas.append(eta_t)
        before = theta.detach().clone()
        theta.grad = g.clone()
        opt.step()
        expected = before - eta_t * g / (g.abs() + 1e-8)
        # ŝ = g and r̂ = g⊙g only up to the rounding of the bias corrections over k ≤ 8 steps
        # (about 2k + 12 roundings, 3e-15 of the step); 1e-12 of |θ| allows that with room and
        # is 1e9 times smaller than the change of η(t) between two steps
        torch.testing.assert_close(theta.detach(), expected, rtol=1e-12, atol=1e-15)
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            sched.step(1.0)  # a loss that never improves: lr is cut every step
        else:
            sched.step()
    assert len(set(etas)) > 1  # the schedule really changed the step


def test_works_as_a_tensor_lr():
    theta = torch.zeros(2, requires_grad=True)
    opt = GD([theta], lr=torch.tensor(0.5))
    theta.grad = torch.tensor([1.0, 2.0])
    opt.step()
    assert torch.equal(theta.detach(), torch.tensor([-0.5, -1.0]))  # exact in binary


# --- bad input: one sentence naming the parameter, the value, and what is allowed ---------

BAD = [
    (lambda p: GD(p, lr=-0.1), ValueError, r"lr must be a finite number >= 0, got -0.1"),
    (lambda p: Momentum(p, lr=0.1, rho=1.0), ValueError, r"rho must be in \[0, 1\), got 1.0"),
    (lambda p: Momentum(p, lr=0.1, rho=-0.5), ValueError, r"rho must be in \[0, 1\), got -0.5"),
    (
        lambda p: AdaGrad(p, lr=0.1, eps=0.0),
        ValueError,
        r"eps must be a finite number > 0, got 0.0",
    ),
    (lambda p: RMSProp(p, lr=0.1, eps=-1e-8), ValueError, r"eps must be a finite number > 0"),
    (lambda p: RMSProp(p, lr=0.1, rho=1.5), ValueError, r"rho must be in \[0, 1\), got 1.5"),
    (lambda p: Adam(p, eps=float("inf")), ValueError, r"eps must be a finite number > 0, got inf"),
    (lambda p: Newton(p, damping=float("inf")), ValueError, r"damping must be a finite .* got inf"),
    (lambda p: Adam(p, rho1=1.0), ValueError, r"rho1 must be in \[0, 1\), got 1.0"),
    (lambda p: Adam(p, rho2=2), ValueError, r"rho2 must be in \[0, 1\), got 2"),
    (lambda p: Adam(p, lr=float("nan")), ValueError, r"lr must be a finite number >= 0, got nan"),
    (lambda p: Adam(p, lr="fast"), TypeError, r"lr must be a finite number >= 0, got 'fast'"),
    (lambda p: Adam(p, bias_correction=1), TypeError, r"bias_correction must be True or False"),
    (lambda p: GD(p, lr=torch.tensor([0.1, -1.0])), ValueError, r"lr must be a finite number >= 0"),
]


@pytest.mark.parametrize(("make", "error", "message"), BAD)
def test_bad_hyperparameters_get_a_clear_error(make, error, message):
    with pytest.raises(error, match=message):
        make([torch.zeros(2, requires_grad=True)])


def test_bad_params_get_a_clear_error():
    with pytest.raises(TypeError, match="params must be tensors, got float at position 1"):
        Adam([torch.zeros(2), 3.0])
    with pytest.raises(TypeError, match="params must be floating-point or complex.*int64"):
        GD([torch.zeros(2, dtype=torch.int64)], lr=0.1)
    # complex parameters are pairs of reals (torch.view_as_real), except where the flat
    # buffers or Newton's H would need complex arithmetic
    complex_param = torch.zeros(2, dtype=torch.complex64, requires_grad=True)
    message = "params must be real floating-point tensors for Adam with compile=True.*complex64"
    with pytest.raises(TypeError, match=message):
        Adam([complex_param], compile=True)
    with pytest.raises(TypeError, match="real floating-point tensors for Newton.*complex64"):
        Newton([complex_param])
    with pytest.raises(TypeError, match="params"):
        Adam(torch.zeros(2))  # a bare tensor, not an iterable of tensors


@pytest.mark.parametrize("name", MAKERS)
def test_sparse_gradient_is_refused(name):
    emb = torch.nn.Embedding(10, 3, sparse=True)
    opt = MAKERS[name](emb.parameters())
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(ValueError, match="dense gradients, got a sparse gradient"):
        opt.step()


# --- param groups and loaded states are checked (issue 22) ----------------------------------


def test_an_unknown_param_group_key_is_named_with_the_allowed_ones():
    p = torch.zeros(2, requires_grad=True)
    message = (
        r"param group keys must be params or hyperparameters of adam \(lr, rho1, rho2, eps, "
        r"bias_correction\), got 'momentum'\."
    )
    with pytest.raises(ValueError, match=message):
        Adam([{"params": [p], "momentum": 0.9}])
    with pytest.raises(ValueError, match=r"got 'momentum' \(torch.optim's momentum is rho here\)"):
        Momentum([p], lr=0.1).add_param_group({"params": [torch.ones(1)], "momentum": 0.9})
    with pytest.raises(ValueError, match=r"got 'betas' \(torch.optim's betas is rho1 and rho2"):
        Adam([{"params": [p], "betas": (0.9, 0.99)}])


def stepped(make, steps=3):
    theta = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = make([theta])
    for _ in range(steps):
        theta.grad = torch.tensor([0.5, 0.25], dtype=torch.float64)
        opt.step()
    return theta, opt


@pytest.mark.parametrize("compile", [False, True])
def test_load_state_dict_checks_the_hyperparameters_it_loads(compile):
    theta, opt = stepped(lambda p: Adam(p, lr=0.1, compile=compile))
    state = opt.state_dict()
    state["param_groups"][0].update(rho1=1.5, eps=-1.0)
    before = (theta.detach().clone(), opt.state_dict())
    with pytest.raises(ValueError, match=r"state_dict param group 0: rho1 must be in \[0, 1\)"):
        opt.load_state_dict(state)
    # nothing was replaced: the optimizer goes on from where it was
    assert torch.equal(theta.detach(), before[0])
    assert opt.state_dict()["param_groups"] == before[1]["param_groups"]
    theta.grad = torch.ones(2, dtype=torch.float64)
    opt.step()
    assert torch.isfinite(theta).all() and theta.abs().max() < 3


def test_a_state_from_another_optimizer_is_refused_clearly():
    _, adam = stepped(lambda p: Adam(p, lr=0.1))
    _, momentum = stepped(lambda p: Momentum(p, lr=0.1))
    with pytest.raises(ValueError, match="state_dict must be one saved by Momentum.*another"):
        momentum.load_state_dict(adam.state_dict())
    _, torch_adam = stepped(lambda p: torch.optim.Adam(p, lr=0.1))
    with pytest.raises(ValueError, match=r"saved by Adam, got param group 0 with .*betas"):
        adam.load_state_dict(torch_adam.state_dict())
    # same hyperparameter names, other state: torch's RMSprop keys would not fit either
    state = momentum.state_dict()
    state["state"][0] = {"momentum_buffer": torch.zeros(2)}
    with pytest.raises(ValueError, match=r"parameter state with \(momentum_buffer\) where"):
        momentum.load_state_dict(state)


@pytest.mark.parametrize("compile", [False, True])
def test_a_parameter_listed_twice_is_refused_as_torch_refuses_it(compile):
    # torch.optim warns for a duplicate inside a group (its warning says it will become an
    # error) and raises across groups; we raise for both, with and without compile=True
    p, q = torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="each parameter once, got the parameter at position 2"):
        Adam([p, q, p], compile=compile)
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        Adam([{"params": [p]}, {"params": [q, p]}], compile=compile)
