"""The engine's observation of a landscape: eager and compiled agree to float64 rounding."""

import pytest
import torch

from firstorder import landscapes
from firstorder.observe import Observer, observe
from firstorder.run import run


def points(f, n=9, seed=0):
    gen = torch.Generator().manual_seed(seed)
    (x0, x1), _ = f.window
    x = x0 + (x1 - x0) * torch.rand(n, f.dim, generator=gen, dtype=torch.float64)
    x[0] = float("nan")  # a diverged trajectory
    x[1, 0] = 1e200  # f overflows
    return x.view(3, 3, f.dim)


@pytest.mark.parametrize("name", landscapes.names())
def test_compiled_observation_agrees_with_the_eager_one(name):
    f = landscapes.get(name)
    compiled = Observer(f, compile=True)
    compiled.warm_up(f.dim, wait=True)
    assert compiled._compiled is not None  # it did compile
    x = points(f)
    for bound in (None, 3.0):
        want = observe(f, x, bound)
        got = compiled(x, bound)
        for a, b in zip(got, want):
            assert a.shape == b.shape
            # inductor may fuse or reorder a sum: at most a few roundings apart
            torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-14, equal_nan=True)


def test_a_run_with_the_compiled_observer_is_the_eager_run():
    f = landscapes.get("rosenbrock")
    compiled = Observer(f, compile=True)  # compiles on its first call
    eager = run(f, "adam", lr=0.05, steps=200, tol_f=1e-12)
    fast = run(f, "adam", lr=0.05, steps=200, tol_f=1e-12, observer=compiled)
    for field in ("x", "f", "grad_norm", "step_length", "effective_step"):
        torch.testing.assert_close(
            getattr(fast, field), getattr(eager, field), rtol=1e-9, atol=1e-12
        )
    assert torch.equal(fast.steps_to_target, eager.steps_to_target)


def test_until_the_background_compilation_is_ready_the_eager_observation_serves(monkeypatch):
    f = landscapes.get("canyon")
    obs = Observer(f, compile=True)
    started = []
    monkeypatch.setattr(obs, "warm_up", lambda *a, **k: started.append(a))
    obs._started = True  # as if warm_up(wait=False) were compiling in the background
    x = points(f)
    for a, b in zip(obs(x, None), observe(f, x, None)):
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)
    assert not obs._ready.is_set() and not started
