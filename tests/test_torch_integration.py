"""The optimizers with the rest of torch.optim and torch: every LR scheduler, momentum-cycling
schedulers, stochastic weight averaging, torch.compile of a training step, pickling, sparse
gradients, 0-d parameters, float32 against float64, and compile=True against the plain path as
torch holds its foreach and fused implementations to its for-loop one."""

import copy
import inspect
import pickle
import re
from pathlib import Path

import numpy as np
import optim_db
import pytest
import torch
from optim_db import compile_small_tensors  # noqa: F401
from test_rules import OPS, U32, U64, assert_within, np_adam, rounding_bound
from torch.optim import lr_scheduler, swa_utils

from firstorder.optim import GD, Adam, Momentum

SCHEDULERS = {
    "LambdaLR": lambda o: lr_scheduler.LambdaLR(o, lambda t: 1 / (1 + t)),
    "MultiplicativeLR": lambda o: lr_scheduler.MultiplicativeLR(o, lambda t: 0.9),
    "StepLR": lambda o: lr_scheduler.StepLR(o, step_size=2, gamma=0.5),
    "MultiStepLR": lambda o: lr_scheduler.MultiStepLR(o, milestones=[2, 5], gamma=0.5),
    "ConstantLR": lambda o: lr_scheduler.ConstantLR(o, factor=0.5, total_iters=3),
    "LinearLR": lambda o: lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=4),
    "ExponentialLR": lambda o: lr_scheduler.ExponentialLR(o, gamma=0.8),
    "SequentialLR": lambda o: lr_scheduler.SequentialLR(
        o,
        [lr_scheduler.ConstantLR(o, factor=0.5, total_iters=2), lr_scheduler.ExponentialLR(o, 0.8)],
        milestones=[2],
    ),
    "PolynomialLR": lambda o: lr_scheduler.PolynomialLR(o, total_iters=6, power=2.0),
    "CosineAnnealingLR": lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=5),
    "ChainedScheduler": lambda o: lr_scheduler.ChainedScheduler(
        [lr_scheduler.ConstantLR(o, factor=0.5, total_iters=3), lr_scheduler.ExponentialLR(o, 0.9)]
    ),
    "ReduceLROnPlateau": lambda o: lr_scheduler.ReduceLROnPlateau(o, patience=0),
    "CyclicLR": lambda o: lr_scheduler.CyclicLR(
        o, base_lr=0.01, max_lr=0.1, step_size_up=2, cycle_momentum=False
    ),
    "CosineAnnealingWarmRestarts": lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=3),
    "OneCycleLR": lambda o: lr_scheduler.OneCycleLR(
        o, max_lr=0.1, total_steps=10, cycle_momentum=False
    ),
    "SWALR": lambda o: swa_utils.SWALR(o, swa_lr=0.01, anneal_epochs=3),
}


def test_every_scheduler_of_torch_is_in_the_list():
    found = {
        name
        for module in (lr_scheduler, swa_utils)
        for name, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, lr_scheduler.LRScheduler | lr_scheduler.ReduceLROnPlateau)
        and cls.__module__ == module.__name__
        and name not in ("LRScheduler", "_LRScheduler")
    }
    assert found == set(SCHEDULERS)


@pytest.mark.parametrize("compile", [False, True], ids=["plain", "compile"])
@pytest.mark.parametrize("name", SCHEDULERS)
def test_each_step_uses_the_scheduled_alpha(name, compile):
    # E1 with a constant g: each step moves θ by exactly −η(t) g, η(t) = group["lr"] when the
    # step runs: α·g and θ − α·g round once each (2u of |θ| + |α g|)
    theta = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = GD([theta], lr=0.1, compile=compile)
    scheduler = SCHEDULERS[name](opt)
    g = torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64)
    etas = []
    for _ in range(10):
        eta = opt.param_groups[0]["lr"]
        etas.append(eta)
        before = theta.detach().clone()
        theta.grad = g.clone()
        opt.step()
        bound = 2 * U64 * (before.abs() + abs(eta) * g.abs())
        assert ((theta.detach() - (before - eta * g)).abs() <= bound).all()
        scheduler.step(1.0) if name == "ReduceLROnPlateau" else scheduler.step()
    assert len(set(etas)) > 1  # the schedule really changed α


@pytest.mark.parametrize("make", [lambda p: Momentum(p, lr=0.1), lambda p: Adam(p, lr=0.1)])
def test_momentum_cycling_needs_cycle_momentum_false(make):
    # OneCycleLR and CyclicLR cycle a `momentum` or `betas` entry; ρ is `rho`, ρ₁ `rho1` here,
    # so torch refuses (README: schedule ρ by setting group["rho"] at each step)
    opt = make([torch.zeros(2, requires_grad=True)])
    with pytest.raises(ValueError, match="optimizer must support momentum"):
        lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10)
    with pytest.raises(ValueError, match="optimizer must support momentum"):
        lr_scheduler.CyclicLR(opt, base_lr=0.01, max_lr=0.1, cycle_momentum=True)


def test_rho_set_in_the_param_group_is_used_at_each_step():
    # the README's recipe for a ρ schedule: E2 with ρ(t), against NumPy
    rhos = 0.95 - 0.1 * np.sin(np.linspace(0, np.pi, 12))
    gen = np.random.default_rng(0)
    theta0, grads = gen.normal(size=5), [gen.normal(size=5) for _ in rhos]
    theta = torch.tensor(theta0, requires_grad=True)
    opt = Momentum([theta], lr=0.1)
    for rho, g in zip(rhos, grads):
        opt.param_groups[0]["rho"] = float(rho)
        theta.grad = torch.tensor(g)
        opt.step()

    def reference(theta, grads, sign=-1):
        s = np.zeros_like(theta)
        for rho, g in zip(rhos, grads):
            s = rho * s + sign * 0.1 * g
            theta = theta + s
        return theta

    expected = reference(theta0, grads)
    magnitude = reference(np.abs(theta0), [np.abs(g) for g in grads], sign=1)
    # the bound of test_rules.rounding_bound, with ρ(t) in place of a constant ρ
    bound = (OPS + 3 * len(rhos)) * 2 * U64 * magnitude
    assert_within(theta.detach().numpy(), expected, bound)
    constant = torch.tensor(theta0, requires_grad=True)
    opt = Momentum([constant], lr=0.1, rho=0.95)
    for g in grads:
        constant.grad = torch.tensor(g)
        opt.step()
    assert (constant.detach() - theta.detach()).abs().max() > 1e3 * bound.max()  # ρ(t) mattered


def test_the_readme_recipe_cycles_rho_against_alpha():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    (recipe,) = [
        block
        for block in re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
        if block.startswith("import torch\nfrom firstorder.optim import Momentum")
    ]
    seen = []
    names = {"print": print}
    original = Momentum.step

    def step(self, closure=None):
        seen.append(self.param_groups[0]["rho"])
        return original(self, closure)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Momentum, "step", step)
        exec(recipe, names)
    assert 0.85 <= min(seen) < 0.86 and max(seen[1:]) > 0.94  # ρ went down and came back
    assert (names["theta"].detach() - 1).abs().max() < 1e-2  # and θ reached the minimum


@pytest.mark.parametrize("compile", [False, True], ids=["plain", "compile"])
def test_stochastic_weight_averaging(compile):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    opt = Adam(model.parameters(), lr=0.05, compile=compile)
    swa_model = swa_utils.AveragedModel(model)
    swa_scheduler = swa_utils.SWALR(opt, swa_lr=0.01, anneal_epochs=3, anneal_strategy="linear")
    snapshots = []
    for _ in range(6):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        swa_model.update_parameters(model)
        snapshots.append([p.detach().clone() for p in model.parameters()])
        swa_scheduler.step()
    # annealed to swa_lr: α = swa_lr·1 + α_before·0, exactly
    assert opt.param_groups[0]["lr"] == 0.01
    for i, p in enumerate(swa_model.module.parameters()):
        mean = torch.stack([s[i] for s in snapshots]).double().mean(0)
        # AveragedModel's running mean: n updates of a + (p − a)/(k + 1), 4 roundings each, in
        # float32, against a float64 mean of the same numbers
        bound = len(snapshots) * 4 * U32 * mean.abs().max()
        torch.testing.assert_close(p.detach().double(), mean, rtol=0, atol=bound.item())


def training(make, compiled_step=False, steps=4):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    opt = make(model.parameters())

    def train_step():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss

    step = torch.compile(train_step, backend="eager") if compiled_step else train_step
    losses = [step().item() for _ in range(steps)]
    return losses, [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("compile", [False, True], ids=["plain", "compile"])
def test_torch_compile_of_a_training_step(compile):
    # dynamo traces the step (our Python loop over parameters, or the flat buffers and the
    # compiled rule); its "eager" backend then runs the aten operations it captured, the same
    # ones in the same order as without torch.compile: the same numbers, bit for bit
    make = lambda ps: Adam(ps, lr=0.01, compile=compile)  # noqa: E731
    torch._dynamo.reset()
    losses, params = training(make, compiled_step=True)
    want_losses, want_params = training(make)
    assert losses == want_losses and losses[-1] < losses[0]
    assert all(torch.equal(p, q) for p, q in zip(params, want_params))


@pytest.mark.parametrize("compile", [False, True], ids=["plain", "compile"])
def test_pickled_optimizer_continues_in_lockstep(compile):
    params = [torch.randn(3, 2, requires_grad=True), torch.randn(4, requires_grad=True)]
    opt = Adam(params, lr=0.1, compile=compile)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    copies = [pickle.loads(pickle.dumps(opt)), copy.deepcopy(opt)]
    for other in copies:
        assert other.compile is compile and other.state_dict()["state"][0]["k"] == 1
        for p in other.param_groups[0]["params"]:
            p.grad = torch.ones_like(p)
        other.step()
    opt.step()
    for other in copies:  # the same operations on the same numbers
        for p, q in zip(params, other.param_groups[0]["params"]):
            assert torch.equal(p, q)


@pytest.mark.parametrize("compile", [False, True], ids=["plain", "compile"])
def test_a_sparse_gradient_gets_a_clear_error(compile):
    emb = torch.nn.Embedding(10, 3, sparse=True)
    opt = Adam(emb.parameters(), compile=compile)
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(ValueError, match="dense"):
        opt.step()


@pytest.mark.parametrize("optim_info", optim_db.PLAIN[:5] + optim_db.COMPILED, ids=optim_db.name)
def test_a_0d_parameter_steps_as_a_1_element_one(optim_info):
    for optim_input in optim_info.optim_inputs_func():
        scalar, vector = (
            torch.tensor(0.5, requires_grad=True),
            torch.tensor([0.5], requires_grad=True),
        )
        opts = [optim_info.optim_cls([p], **optim_input.kwargs) for p in (scalar, vector)]
        for g in (0.3, -1.2, 0.7):
            scalar.grad, vector.grad = torch.tensor(g), torch.tensor([g])
            for opt in opts:
                opt.step()
        # the same elementwise operations on the same number
        assert torch.equal(scalar.detach().reshape(1), vector.detach()), optim_input.desc


def test_compile_float32_follows_a_float64_reference():
    gen = np.random.default_rng(4)
    theta0 = gen.normal(size=(7, 5)).astype(np.float32)
    grads = [gen.normal(size=(7, 5)).astype(np.float32) for _ in range(20)]
    hyper = dict(lr=0.01, rho1=0.9, rho2=0.999, eps=1e-8)
    theta = torch.tensor(theta0, requires_grad=True)
    opt = Adam([theta], compile=True, **hyper)
    for g in grads:
        theta.grad = torch.tensor(g)
        opt.step()
    theta0, grads = theta0.astype(np.float64), [g.astype(np.float64) for g in grads]
    expected = np_adam(theta0, grads, **hyper)
    # test_rules' bound, plus one rounding a step: the compiled rule multiplies by the
    # reciprocal of 1 − ρᵏ where the plain one divides
    bound = rounding_bound(np_adam, theta0, grads, hyper, U32) * (OPS + 1) / OPS
    assert_within(theta.detach().numpy(), expected, bound)


@pytest.mark.parametrize("optim_info", optim_db.COMPILED, ids=optim_db.name)
def test_compiled_matches_plain(optim_info):
    """torch's test_foreach_matches_forloop (its ``_compare_between``) for compile=True: 7
    steps of a small network in float64, a layer frozen at step 3 and unfrozen at step 5, no
    gradients at step 2, a 0-d parameter; parameters and state agree at every step."""
    plain_info = optim_db.PLAIN[optim_db.COMPILED.index(optim_info)]
    for fast_input, plain_input in zip(
        optim_info.optim_inputs_func(), plain_info.optim_inputs_func()
    ):
        runs = []
        for optim_input in (plain_input, fast_input):
            torch.manual_seed(1)
            model = torch.nn.Sequential(
                torch.nn.Linear(2, 3), torch.nn.Sigmoid(), torch.nn.Linear(3, 1), torch.nn.Sigmoid()
            ).double()
            empty = torch.rand((), dtype=torch.float64, requires_grad=True)  # seeded above
            empty.grad = torch.rand_like(empty)
            kwargs = {
                k: v.double() if torch.is_tensor(v) else v for k, v in optim_input.kwargs.items()
            }
            runs.append(
                (model, optim_info.optim_cls([*model.parameters(), empty], **kwargs), empty)
            )
        x = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], dtype=torch.float64).reshape(3, 2)
        for i in range(7):
            for model, opt, _ in runs:
                opt.zero_grad()
                if i == 3:
                    model[2].requires_grad_(False)
                if i == 5:
                    model[2].requires_grad_(True)
                if i != 2:
                    model(x).sum().backward()
                opt.step()
            (model_a, opt_a, empty_a), (model_b, opt_b, empty_b) = runs
            for p, q in zip([*model_a.parameters(), empty_a], [*model_b.parameters(), empty_b]):
                # the compiled rule rounds differently (the reciprocal of 1 − ρᵏ, FMAs): up to
                # OPS + 1 roundings of a step on each side, over i + 1 steps; the gradients
                # follow θ through a network whose steps of α ≤ 0.1 change them by far less
                # than they change θ, so no amplification beyond 2 over 7 steps
                scale = max(p.abs().max().item(), 1.0)
                bound = (i + 1) * (OPS + 1) * 2 * U64 * 2 * scale
                torch.testing.assert_close(q, p, rtol=0, atol=bound)
                for key, value in opt_a.state[p].items():
                    other = opt_b.state[q][key]
                    if torch.is_tensor(value):
                        torch.testing.assert_close(other, value, rtol=0, atol=bound)
                    else:
                        assert other == value, key
