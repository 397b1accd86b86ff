"""The engine's observation of a landscape: eager and compiled agree to float64 rounding."""

import threading

import pytest
import torch
from test_rules import U32, U64

from firstorder import landscapes
from firstorder import observe as observe_module
from firstorder.observe import Observer, _kernel, compiled_observer, observe
from firstorder.run import run


def points(f, n=9, seed=0):
    gen = torch.Generator().manual_seed(seed)
    (x0, x1), _ = f.window
    x = x0 + (x1 - x0) * torch.rand(n, f.dim, generator=gen, dtype=torch.float64)
    x[0] = float("nan")  # a diverged trajectory
    x[1, 0] = 1e200  # f overflows
    return x.view(3, 3, f.dim)


def assert_within_rounding(got, want, u):
    """Compiled and eager evaluate f and ∇f by the same formula, but inductor may fuse (FMA)
    and reorder: each value is a short sum (≤ 8 terms, ≤ 16 roundings on each side) of terms
    no larger than about the largest values at these points, so they differ by at most
    2 · 16 u times that; a wrong formula differs by far more."""
    if torch.is_floating_point(want) and want.numel():
        finite = want[want.isfinite()]
        scale = finite.abs().max().item() if finite.numel() else 0.0
        torch.testing.assert_close(got, want, rtol=0, atol=32 * u * scale, equal_nan=True)
    else:
        assert torch.equal(got, want)


@pytest.mark.parametrize("name", landscapes.names())
def test_compiled_observation_agrees_with_the_eager_one(name):
    f = landscapes.get(name)
    compiled = Observer(f, compile=True)
    compiled.warm_up(f.dim, wait=True)
    assert compiled.ready(f.dim)  # it did compile
    x = points(f)
    fx = observe(f, x, None)[0]
    target = (fx.nanmedian().item(), 1e-9)  # f − f* < tol_f: true at about half the points
    for bound, (f_star, tol_f) in ((None, (None, None)), (3.0, target)):
        want = observe(f, x, bound, f_star, tol_f)
        got = compiled(x, bound, f_star, tol_f)
        if f_star is not None:
            assert want[4].any() and not want[4].all()
            assert torch.equal(want[4], (fx - f_star < tol_f))  # reached: the definition
            assert torch.equal(want[3], want[3] | want[4])  # who reached it stops
        for a, b in zip(got, want):
            assert a.shape == b.shape
            assert_within_rounding(a, b, U64)


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
    built = threading.Event()
    release = threading.Event()

    def slow_kernel(*args):  # a compilation that takes until the test releases it
        built.set()
        release.wait()
        return _kernel(*args)

    monkeypatch.setattr(observe_module, "_kernel", slow_kernel)
    obs.warm_up(f.dim)  # returns at once
    assert built.wait(10) and not obs.ready(f.dim)
    x = points(f)
    for a, b in zip(obs(x, None), observe(f, x, None)):
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)  # eager: bit for bit
    release.set()
    obs.warm_up(f.dim, wait=True)
    assert obs.ready(f.dim)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (6, 1), (3,), (2, 3, 4)])
def test_one_kernel_serves_every_batch_shape(shape):
    f = landscapes.get("himmelblau")
    obs = compiled_observer(f)
    assert compiled_observer(landscapes.get("himmelblau")) is obs  # one per landscape
    x = torch.randn(*shape, f.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for a, b in zip(obs(x, 4.0), observe(f, x, 4.0)):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-14)
    assert obs.ready(f.dim)


def test_each_dtype_gets_its_own_kernel():
    f = landscapes.get("booth")
    obs = Observer(f, compile=True)
    obs.warm_up(f.dim, wait=True)
    x = torch.randn(4, 3, f.dim, dtype=torch.float32)  # compiled for float64 so far
    for a, b in zip(obs(x, None), observe(f, x, None)):
        assert a.dtype == b.dtype
        assert_within_rounding(a, b, U32)
    assert obs.ready(f.dim, torch.float32) and obs.ready(f.dim, torch.float64)
