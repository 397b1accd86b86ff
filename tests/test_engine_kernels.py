"""The batched engine's compiled rules (run(..., compile=True)): the notes' equations, to float64
rounding, against NumPy versions written here, and the same trajectories as the eager engine."""

import threading
import warnings

import numpy as np
import pytest
import torch
from test_rules import OPS, U64, assert_within

from firstorder import landscapes, rules
from firstorder.kernels import engine as engine_kernels
from firstorder.kernels.trace import Deferred
from firstorder.observe import compiled_observer
from firstorder.run import run, run_many, warm_up


def numpy_step(name, theta, g, state, k, h):
    """One step of E1–E5 in float64 NumPy, as the notes write them."""
    if name == "gd":
        return theta - h["lr"] * g, {}
    if name == "momentum":
        s = h["rho"] * state["s"] - h["lr"] * g
        return theta + s, {"s": s}
    if name == "adagrad":
        r = state["r"] + g * g
        return theta - h["lr"] * g / (np.sqrt(r) + h["eps"]), {"r": r}
    if name == "rmsprop":
        r = h["rho"] * state["r"] + (1 - h["rho"]) * g * g
        return theta - h["lr"] * g / (np.sqrt(r) + h["eps"]), {"r": r}
    s = h["rho1"] * state["s"] + (1 - h["rho1"]) * g
    r = h["rho2"] * state["r"] + (1 - h["rho2"]) * g * g
    s_hat, r_hat = (s / (1 - h["rho1"] ** k), r / (1 - h["rho2"] ** k)) if h["bc"] else (s, r)
    return theta - h["lr"] * s_hat / (np.sqrt(r_hat) + h["eps"]), {"s": s, "r": r}


CASES = [("gd", True), ("momentum", True), ("adagrad", True), ("rmsprop", True)]
CASES += [("adam", True), ("adam", False)]


@pytest.mark.parametrize("name,bc", CASES)
@pytest.mark.parametrize("C,B,d", [(3, 4, 2), (1, 1, 2), (1, 5, 3), (6, 1, 1)])
def test_the_compiled_rule_is_the_equation(name, bc, C, B, d):
    rule = rules.get(name)
    update = engine_kernels.engine_rule(rule, torch.float64, {"bias_correction": bc}).get()
    assert update is not None  # it compiled
    gen = np.random.default_rng(C * 100 + B * 10 + d)
    whole = torch.tensor(gen.normal(size=(C + 2, B, d)))
    theta = whole[1 : C + 1]  # a slice of a larger tensor, as the engine passes it
    g = torch.tensor(gen.normal(size=(C, B, d)))
    state = {n: torch.tensor(np.abs(gen.normal(size=(C, B, d)))) for n in rule.state}
    h = {
        "lr": gen.uniform(0.01, 0.5, size=(C, 1, 1)),
        "rho": gen.uniform(0, 0.99, size=(C, 1, 1)),
        "rho1": gen.uniform(0, 0.99, size=(C, 1, 1)),
        "rho2": gen.uniform(0.9, 0.999, size=(C, 1, 1)),
        "eps": gen.uniform(1e-8, 1e-3, size=(C, 1, 1)),
        "bc": bc,
    }
    k = 7
    theta_before = theta.numpy().copy()
    state_before = {n: v.numpy().copy() for n, v in state.items()}
    want_theta, want_state = numpy_step(
        name, theta_before, g.numpy(), {n: v.numpy().copy() for n, v in state.items()}, k, h
    )
    tensors = {n: torch.tensor(h[n]) for n in engine_kernels.engine_hyper(rule)}
    steps = {"k": torch.full((1, 1, 1), float(k), dtype=torch.float64)} if rule.counts_steps else {}
    before = whole.clone()
    update(theta, g, *state.values(), **steps, **tensors)
    # test_rules.rounding_bound for one step, plus the compiled kernel's reciprocal of 1 − ρᵏ:
    # the same step on magnitudes, from |θ|, −|g| and, for Adam, whose s follows g (momentum's
    # velocity follows −g), −s (the states here are ≥ 0)
    state_mag = {n: -v if name == "adam" and n == "s" else v for n, v in state_before.items()}
    theta_mag, states_mag = numpy_step(
        name, np.abs(theta_before), -np.abs(g.numpy()), state_mag, k, h
    )
    assert_within(theta.numpy(), want_theta, (OPS + 1) * 2 * U64 * np.abs(theta_mag))
    for n, v in state.items():
        assert_within(v.numpy(), want_state[n], (OPS + 1) * 2 * U64 * np.abs(states_mag[n]))
    # the rows around the slice are untouched
    assert torch.equal(whole[0], before[0]) and torch.equal(whole[C + 1], before[C + 1])


def test_a_compiled_run_is_the_eager_run():
    f = landscapes.get("rosenbrock")
    optimizers = [
        ("gd", {"lr": [1e-3, 2e-3]}),
        ("momentum", {"lr": 1e-3, "rho": [0.5, 0.9]}),
        ("adagrad", {"lr": 0.3}),
        ("rmsprop", {"lr": 0.003}),
        ("adam", {"lr": [0.01, 0.05], "rho1": 0.9}),
        ("adam", {"lr": 0.02, "bias_correction": False}),
        ("newton", {"lr": 0.5}),  # no kernel: eager in a compiled run
    ]
    kw = dict(starts=[[-1.2, 1.0], [0.5, 2.0], [1.5, -0.5]], steps=150, tol_f=1e-9)
    eager = run_many(f, optimizers, **kw)
    fast = run_many(f, optimizers, **kw, compile=True)
    for a, b in zip(eager, fast, strict=True):
        assert a.meta["rule"] == "eager"
        assert b.meta["rule"] == ("eager" if b.optimizer == "newton" else "compiled")
        for field in ("x", "f", "grad_norm", "step_length", "effective_step"):
            if getattr(a, field) is None:
                assert getattr(b, field) is None
            else:
                torch.testing.assert_close(
                    getattr(b, field), getattr(a, field), rtol=1e-9, atol=1e-11
                )
        assert torch.equal(a.steps_to_target, b.steps_to_target)
        assert torch.equal(a.diverged_at, b.diverged_at)


def test_a_diverging_compiled_run_is_marked_as_the_eager_one_is():
    f = landscapes.get("rosenbrock")
    kw = dict(starts=[[-1.2, 1.0], [2.0, 2.0]], steps=80, lr=[0.001, 0.5])
    eager, fast = run(f, "gd", **kw), run(f, "gd", **kw, compile=True)
    assert fast.meta["rule"] == "compiled"
    assert (eager.diverged_at[1] >= 0).all()  # α = 0.5 leaves the finite numbers
    assert torch.equal(eager.diverged_at, fast.diverged_at)
    torch.testing.assert_close(fast.final_x, eager.final_x, rtol=1e-12, atol=0, equal_nan=True)


def test_a_rule_still_compiling_in_the_background_runs_eagerly(monkeypatch):
    rule = rules.get("momentum")
    release = threading.Event()
    slow = Deferred(lambda: release.wait() and None, "a slow kernel")  # builds until released
    monkeypatch.setitem(engine_kernels._ENGINE, (rule.name, torch.float64, ()), slow)
    f = landscapes.get("canyon")
    compiled_observer(f).warm_up(f.dim, wait=True)  # the run need not compile (or wait) for it
    slow.warm_up()
    try:  # released whatever happens: the slow build holds the lock every build takes
        result = run(f, "momentum", lr=0.01, steps=20, compile=True)
        assert result.meta["rule"] == "eager"
        eager = run(f, "momentum", lr=0.01, steps=20)
        torch.testing.assert_close(result.x, eager.x, rtol=0, atol=0)
    finally:
        release.set()


def test_a_kernel_that_cannot_be_built_warns_once_and_is_none():
    def fails():
        raise RuntimeError("no C++ compiler")

    deferred = Deferred(fails, "the test rule")
    with pytest.warns(
        RuntimeWarning, match="the test rule could not be compiled.*no C\\+\\+ compiler"
    ):
        assert deferred.get() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert deferred.get() is None and not deferred.ready


EPS64 = torch.finfo(torch.float64).eps


@pytest.mark.parametrize(
    "optimizer,hyper,steps",
    [
        ("adam", {"lr": [1e-3, 0.01, 0.05], "rho1": [0.0, 0.9]}, 203),  # runs to the budget
        ("gd", {"lr": [1e-3, 2e-3, 0.5]}, 85),  # α = 0.5 diverges, the others run on
        ("gd", {"lr": [0.4, 0.5]}, 300),  # every trajectory diverges: the run ends early
        ("momentum", {"lr": 2e-3, "rho": [0.5, 0.9]}, 400),  # some reach f − f* < 1e-3
    ],
)
def test_a_run_in_chunks_of_steps_is_the_eager_run(optimizer, hyper, steps):
    f = landscapes.get("rosenbrock")
    kw = dict(starts=[[-1.2, 1.0], [0.5, 2.0], [1.1, 1.2]], steps=steps, tol_f=1e-3)
    eager = run(f, optimizer, **kw, **hyper, record="final")
    fast = run(f, optimizer, **kw, **hyper, record="final", compile=True)
    assert fast.meta["rule"] == "compiled"
    assert fast.steps == eager.steps
    assert torch.equal(fast.steps_to_target, eager.steps_to_target)
    assert torch.equal(fast.diverged_at, eager.diverged_at)
    # each step, compiled and eager differ by a few roundings (inductor orders the sums of ∇f
    # and fuses 1 − ρᵏ differently): at most ~16 eps relative a step, added over the steps of
    # these runs, which do not amplify them (no trajectory here is near a chaotic edge)
    tol = eager.steps * 16 * EPS64
    torch.testing.assert_close(fast.final_x, eager.final_x, rtol=tol, atol=tol, equal_nan=True)


def test_the_chunked_run_is_used_and_its_outcomes_are_all_there():
    f = landscapes.get("rosenbrock")
    r = run(f, "gd", starts=[[-1.2, 1.0], [1.1, 1.2]], steps=300, lr=[0.4, 0.5], record="final",
            tol_f=1e-3, compile=True)  # fmt: skip
    assert (r.diverged_at >= 0).all() and r.steps == int(r.diverged_at.max()) < 300
    assert any(key[1] == "gd" for key in engine_kernels._STEPS)


def test_warm_up_builds_the_chunk_kernel_for_final_runs_only():
    f = landscapes.get("canyon")
    before = set(engine_kernels._STEPS)
    warm_up(f, [("momentum", {})], wait=True)
    assert set(engine_kernels._STEPS) == before  # a recording run steps one by one
    warm_up(f, [("momentum", {})], wait=True, record="final")
    built = [d for key, d in engine_kernels._STEPS.items() if key[0][0] == "canyon"]
    assert built and all(d.ready for d in built)
