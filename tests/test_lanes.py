"""The engine's kernel of many steps (firstorder.kernels.lanes): each trajectory's steps as one
C++ loop, written from the traced step. The reference is the eager engine (torch's own
operations, step by step): the same stops at the same steps, and x to the rounding of the
operations the two order differently."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from firstorder import landscapes, rules
from firstorder.kernels import engine as engine_kernels
from firstorder.kernels import lanes
from firstorder.observe import landscape_key
from firstorder.run import run, run_many

EPS64 = torch.finfo(torch.float64).eps
STEPS = 25
RULES = [name for name, rule in rules.RULES.items() if not rule.needs_hessian]
LANDSCAPES = [name for name in landscapes.names() if not landscapes.get(name).unbounded_below]


def both(f, optimizer, **kw):
    """The eager run and the run through the lanes kernel, which it must have used."""
    eager = run(f, optimizer, record="final", **kw)
    fast = run(f, optimizer, record="final", compile=True, **kw)
    key = landscape_key(f)
    built = [d for k, d in engine_kernels._STEPS.items() if k[:2] == (key, optimizer)]
    assert built and all(d.ready for d in built)
    return eager, fast


def assert_same_run(eager, fast):
    assert fast.steps == eager.steps
    assert torch.equal(fast.steps_to_target, eager.steps_to_target)
    assert torch.equal(fast.diverged_at, eager.diverged_at)
    # Each step the two differ by a few roundings: the C++ sums ∇f's terms in the traced order
    # and computes ρᵏ with std::pow where torch may use its vector pow (≤ 1 ulp each); 16 eps
    # relative a step, added over the steps, on runs that do not amplify them (short, from the
    # landscapes' own starts, at the rules' default α)
    tol = max(eager.steps, 1) * 16 * EPS64
    torch.testing.assert_close(fast.final_x, eager.final_x, rtol=tol, atol=tol, equal_nan=True)


@pytest.mark.parametrize("optimizer", RULES)
def test_every_rule_runs_as_its_eager_run(optimizer):
    f = landscapes.get("rosenbrock")
    assert_same_run(*both(f, optimizer, steps=STEPS, tol_f=1e-3, lr=[1e-4, 1e-3]))


@pytest.mark.parametrize("name", LANDSCAPES)
def test_every_landscape_runs_as_its_eager_run(name):
    f = landscapes.get(name)
    assert_same_run(*both(f, "adam", steps=STEPS, lr=[1e-3, 1e-2], rho1=[0.0, 0.9]))


@pytest.mark.slow
@pytest.mark.parametrize("name", LANDSCAPES)
@pytest.mark.parametrize("optimizer", RULES)
def test_every_rule_on_every_landscape(optimizer, name):
    f = landscapes.get(name)
    kw = {"lr": 1e-3} if rules.get(optimizer).hyper.get("lr", 0) is None else {}
    assert_same_run(*both(f, optimizer, steps=STEPS, **kw))


def test_stops_diverging_and_reaching_the_target_are_marked_as_eagerly():
    f = landscapes.get("rosenbrock")
    kw = dict(starts=[[-1.2, 1.0], [0.5, 2.0], [1.1, 1.2]], steps=400, tol_f=1e-3)
    eager, fast = both(f, "gd", lr=[1e-3, 2e-3, 0.5], **kw)
    assert (eager.diverged_at >= 0).any() and (eager.steps_to_target >= 0).any()
    assert_same_run(eager, fast)


def test_a_run_cut_into_many_chunks_gives_the_same_numbers(monkeypatch):
    f = landscapes.get("beale")
    kw = dict(steps=300, lr=[1e-3, 1e-2, 3e-2], rho1=[0.5, 0.9])
    _, whole = both(f, "adam", **kw)
    monkeypatch.setattr(lanes, "TABLE_NUMBERS", 7)  # one step a chunk (6 ρ₁ rows × 2 columns)
    _, cut = both(f, "adam", **kw)
    assert torch.equal(cut.final_x, whole.final_x)  # the same operations, chunk or not


def test_several_rules_share_one_run_as_they_would_alone():
    f = landscapes.get("himmelblau")
    setups = [("momentum", {"lr": [1e-3, 1e-2]}), ("rmsprop", {"lr": 1e-2, "rho": [0.5, 0.9]})]
    together = run_many(f, setups, steps=STEPS, record="final", compile=True)
    for (name, hyper), r in zip(setups, together):
        alone = run(f, name, steps=STEPS, record="final", **hyper)
        assert_same_run(alone, r)


def test_a_large_batch_runs_on_every_thread_as_on_one():
    f = landscapes.get("booth")
    starts = torch.linspace(-5, 5, 40_000, dtype=torch.float64).view(-1, 2)  # 2¹⁶+ numbers
    kw = dict(starts=starts.repeat(2, 1), steps=5, lr=[1e-3, 1e-2])
    eager, fast = both(f, "adam", **kw)
    assert_same_run(eager, fast)


def test_an_operation_without_a_cpp_form_runs_one_step_at_a_time():
    f = landscapes.get("booth")
    odd = dataclasses.replace(f, name="booth_erf", fn=lambda x: torch.special.erf(x).sum(-1))
    with pytest.raises(lanes.NotScalar, match="erf"):
        lanes.LaneKernel(odd, rules.get("gd"), {}, 2)
    with pytest.warns(RuntimeWarning, match="could not be compiled"):
        fast = run(odd, "gd", steps=STEPS, lr=1e-2, record="final", compile=True)
    eager = run(odd, "gd", steps=STEPS, lr=1e-2, record="final")
    assert_same_run(eager, fast)


@pytest.mark.parametrize("v", [0.1, -2.5, 1e-300, 5e-324, 1.7976931348623157e308, -0.0, 3])
def test_a_literal_is_the_number_exactly(v):
    text = lanes.literal(v)
    number = float.fromhex(text.strip("()")) if isinstance(v, float) else int(text[8:-1])
    assert number == v and math.copysign(1, number) == math.copysign(1, v)


def test_the_written_step_is_a_numpy_step():
    """The C++ of gradient descent on the quadratic f = ½ xᵀAx, A = diag(λ) (angle 0, centred
    at 0), against the equation in NumPy: x ← x − α A x."""
    f = landscapes.get("quadratic", eigenvalues=(0.5, 3.0), angle=0.0)
    A = np.diag([0.5, 3.0])
    x0 = np.array([[1.5, -0.5], [0.2, 0.7]])
    r = run(f, "gd", starts=x0, steps=3, lr=0.1, record="final", compile=True)
    x = x0.copy()
    for _ in range(3):
        x = x - 0.1 * x @ A.T
    # a few roundings a step, in a different order (the C++ adds ∇f's terms as traced)
    np.testing.assert_allclose(r.final_x[0].numpy(), x, rtol=3 * 16 * EPS64)


def test_a_write_into_a_view_is_refused_not_miswritten():
    f = landscapes.get("booth")

    def fn(x):
        y = x.clone()
        y[..., 0].mul_(2.0)  # y's first coordinate doubled through a view of it
        return (y * y).sum(-1)

    odd = dataclasses.replace(f, name="booth_view", fn=fn)
    with pytest.raises(lanes.NotScalar, match="view"):
        lanes.LaneKernel(odd, rules.get("gd"), {}, 2)
