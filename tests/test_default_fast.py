"""The default (compile=None): the fast path where it pays, with the numbers of compile=False.

With compile=None a param group of at least ``optim.min_numel`` values gets flat buffers and a
kernel built in the background; the plain rule runs on the flat buffers until the kernel is
ready, then the kernel. Here the threshold is lowered so small tensors take that path, and the
build is held back (``trace._building``, the lock every build takes) or waited for
(``_wait_for_kernels``), so that which steps run which path is known. Every run is held to the
per-tensor plain run (compile=False), itself checked against float64 NumPy and torch.optim in
test_rules.py, within the rounding bound of test_compile.
"""

import subprocess
import sys
import warnings

import pytest
import torch
from test_compile import MAKERS, assert_same_run, frozen_then_unfrozen, problem
from test_rules import U32

from firstorder import optim
from firstorder.kernels import step, trace

STEPS = 50


@pytest.fixture(autouse=True)
def low_threshold(monkeypatch):
    """Every param group of these tests takes the fast path, with a fresh registry of
    kernels (a test that holds a build back needs its own)."""
    monkeypatch.setattr(optim, "min_numel", 1)
    monkeypatch.setattr(step, "_COMPILED", {})


def rounding_bound(magnitude, u=U32, steps=STEPS):
    """test_compile.rounding_bound for ``steps`` steps: each step of either run rounds at most
    OPS_COMPILED times relative to the magnitudes of its terms, and a rounding made at one
    step is carried to the end unchanged (the gradients here do not depend on θ), so the two
    runs differ by at most (OPS_COMPILED + 3·steps)·2u times the run on magnitudes."""
    from test_compile import OPS_COMPILED

    return (OPS_COMPILED + 3 * steps) * 2 * u * magnitude.abs()


def run(
    make, *, held_until=None, reload_at=None, schedule=False, magnitudes=False, tensor_lr=False
):
    """STEPS steps of fixed gradients (some None), two param groups. ``held_until``: the kernel
    build is held back until that step (None: waited for before the first step)."""
    gen = torch.Generator().manual_seed(0)
    params, _ = problem(magnitudes=magnitudes)
    grads = [[torch.randn(p.shape, generator=gen) for p in params] for _ in range(STEPS)]
    if magnitudes:
        grads = [[g.abs() for g in gs] for gs in grads]
    lr = torch.tensor(0.002) if tensor_lr else 0.002
    groups = [{"params": params[:2]}, {"params": params[2:], "lr": lr}]
    held = held_until is not None and trace._building.acquire()
    compiled = []  # at each step, whether a kernel was ready (it runs from the next step on)
    try:
        opt = make(groups)
        if not held and opt.compile is None:
            opt._wait_for_kernels()
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.95) if schedule else None
        for k, gs in enumerate(grads):
            if held and k == held_until:
                trace._building.release()
                held = False
                opt._wait_for_kernels()
            for i, (p, g) in enumerate(zip(params, gs)):
                p.grad = None if (k % 4 == 1 and i == 1) else g.clone()
            opt.step()
            compiled.append(any(c.deferred.ready for c in step._COMPILED.values()))
            if sched:
                sched.step()
            if k == reload_at:
                saved = opt.state_dict()
                opt = make(groups)
                opt.load_state_dict(saved)
                if sched:
                    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.95, last_epoch=k)
    finally:
        if held:
            trace._building.release()
    opt.compiled_steps = compiled
    return params, opt


def default(name):
    """The optimizer ``name`` as a user makes it: no compile argument."""
    return lambda groups: MAKERS[name](groups, None)


def plain(name):
    return lambda groups: MAKERS[name](groups, False)


def assert_fast_path_taken(opt):
    assert opt._flat and all(opt._auto.values())
    for group in opt.param_groups:
        for p in group["params"]:
            assert opt._kernel(group, p.dtype, p.device).deferred.ready


def assert_agree(name, fast, **how):
    reference = run(plain(name), **how)
    magnitude = run(plain(name), magnitudes=True, **how)
    assert_same_run(reference, fast, magnitude)


@pytest.mark.parametrize("name", MAKERS)
def test_default_agrees_with_compile_false_over_50_steps(name):
    fast = run(default(name))
    assert_fast_path_taken(fast[1])
    assert_agree(name, fast)


def test_plain_flat_rule_until_the_kernel_is_ready_then_the_kernel():
    fast = run(default("adam"), held_until=20)
    assert fast[1].compiled_steps == [False] * 20 + [True] * 30
    assert_fast_path_taken(fast[1])
    assert_agree("adam", fast)


def test_state_dict_saved_and_loaded_while_the_build_is_pending():
    how = dict(reload_at=10)
    fast = run(default("adam"), held_until=30, **how)
    assert fast[1].compiled_steps == [False] * 30 + [True] * 20
    assert_fast_path_taken(fast[1])
    assert_agree("adam", fast, **how)


@pytest.mark.parametrize("tensor_lr", [False, True])
def test_a_scheduler_changing_lr_every_step(tensor_lr):
    how = dict(schedule=True, reload_at=25, tensor_lr=tensor_lr)
    fast = run(default("momentum"), **how)
    assert_fast_path_taken(fast[1])
    assert_agree("momentum", fast, **how)


def test_frozen_parameters_behave_as_with_compile_false():
    runs = {c: frozen_then_unfrozen(lambda ps, c=c: MAKERS["adam"](ps, c)) for c in (None, False)}
    assert sorted(runs[None][2]["state"]) == sorted(runs[False][2]["state"]) == [0, 2, 3, 4]
    magnitude = frozen_then_unfrozen(lambda ps: MAKERS["adam"](ps, False), magnitudes=True)
    assert_same_run(runs[False][:2], runs[None][:2], magnitude[:2])


def test_a_small_model_runs_the_per_tensor_plain_rule_bit_for_bit(monkeypatch):
    monkeypatch.setattr(optim, "min_numel", 65_536)  # the default threshold
    (a, opt_a), (b, _) = run(default("adam")), run(plain("adam"))
    assert not opt_a._flat and not any(opt_a._auto.values())
    assert not step._COMPILED  # nothing was even built
    for p, q in zip(a, b):
        assert torch.equal(p, q)


def test_compile_disabled_runs_the_plain_rule(monkeypatch):
    monkeypatch.setattr(trace, "_warned", set())
    # dynamo's own patch: monkeypatch would delete the config entry when undoing
    with torch._dynamo.config.patch(disable=True):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the default: no warning, the per-tensor plain rule
            params, opt = run(default("adam"))
        assert not opt._flat and not step._COMPILED
        with pytest.warns(RuntimeWarning, match="torch.compile is disabled") as record:
            fast = run(lambda groups: MAKERS["adam"](groups, True))
    assert len(record) == 1  # one warning, however many steps and groups
    assert not any(c.deferred._started for c in step._COMPILED.values())  # the flat plain rule
    assert_agree("adam", fast)


def test_the_interpreter_exits_cleanly_while_a_kernel_builds():
    """The build thread is not a daemon: exiting right after the step that starts it waits for
    it instead of tearing inductor down under it (a crash or a hang at exit)."""
    code = (
        "import torch; from firstorder import optim; optim.build_after = 0.0; "
        "m = torch.nn.Linear(512, 256); opt = optim.Adam(m.parameters()); "
        "m(torch.ones(512)).sum().backward(); opt.step(); opt.step(); "
        "assert opt._auto[0]"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"Warning" not in done.stderr, done.stderr.decode()[-2000:]


def test_the_build_starts_only_once_the_plain_steps_have_cost_build_after(monkeypatch):
    """Ski rental: no build while the plain steps have cost less than ``build_after`` seconds
    (a short script never shares its CPU with inductor), a build once they have."""
    params, _ = problem()
    opt = MAKERS["adam"]([{"params": params}], None)
    monkeypatch.setattr(optim, "build_after", float("inf"))
    for _ in range(3):
        for p in params:
            p.grad = torch.ones_like(p)
        opt.step()
    assert opt._flat and not any(c.deferred._started for c in step._COMPILED.values())
    monkeypatch.setattr(optim, "build_after", 0.0)
    opt.step()  # the rent paid now exceeds the price: this step starts the build
    assert any(c.deferred._started for c in step._COMPILED.values())
    opt._wait_for_kernels()
    assert_fast_path_taken(opt)
