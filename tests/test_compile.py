"""compile=True: flat buffers and the compiled rule must compute what the plain path computes.

The plain path (compile=False) is itself checked against float64 NumPy copies of the notes'
equations and against torch.optim (test_rules.py); here every fast path is held to it, within
a bound on the rounding of the steps taken (the analysis of test_rules.rounding_bound).
"""

import warnings

import pytest
import torch
from test_rules import OPS, U32, U64

from firstorder import rules
from firstorder.kernels import hoist, step, trace
from firstorder.optim import GD, AdaGrad, Adam, Momentum, RMSProp

MAKERS = {
    "gd": lambda p, c: GD(p, lr=0.05, compile=c),
    "momentum": lambda p, c: Momentum(p, lr=0.05, rho=0.9, compile=c),
    "adagrad": lambda p, c: AdaGrad(p, lr=0.05, compile=c),
    "rmsprop": lambda p, c: RMSProp(p, lr=0.01, compile=c),
    "adam": lambda p, c: Adam(p, lr=0.01, compile=c),
}

STEPS = 20
# The compiled rule rounds differently from the plain one: inductor may fuse a multiply and an
# add (FMA) and multiplies by the reciprocal of 1 − ρᵏ where the plain rule divides: OPS + 1
# roundings of a step at most, on each side (test_rules.OPS counts the plain rule's).
OPS_COMPILED = OPS + 1


def rounding_bound(magnitude, u, steps=STEPS):
    """test_rules.rounding_bound for two float computations of the same ``steps`` steps:
    ``magnitude`` is the same run on magnitudes (``problem(magnitudes=True)``)."""
    return (OPS_COMPILED + 3 * steps) * 2 * u * magnitude.abs()


@pytest.fixture(autouse=True)
def compile_everything(monkeypatch):
    """Compile even the small tensors of these tests (by default they run the plain rule), with
    a fresh registry of compiled rules, so no test sees another's fallback."""
    monkeypatch.setattr(step.CompiledRule, "min_numel", 0)
    monkeypatch.setattr(step, "_COMPILED", {})


@pytest.fixture
def compilations(monkeypatch):
    """A list that grows by one each time a traced graph is compiled."""
    seen = []
    backend = hoist.hoisted

    def counting(gm):
        compiled = backend(gm)
        seen.append(gm)
        return compiled

    monkeypatch.setattr(step, "hoisted", counting)
    return seen


def traced_rule(rule, n=50, **switches):
    """``rule`` traced as the optimizers trace it, on float32 θ of ``n`` values."""
    tensors = [torch.rand(n) for _ in range(2 + len(rule.state))]
    count = int(rule.counts_steps) + len(rule.numbers)
    numbers = [torch.tensor(0.5 + i / 64, dtype=torch.float64) for i in range(count)]
    return trace.trace(step.step_function(rule, tuple(switches.items())), *tensors, *numbers)


def problem(dtype=torch.float32, magnitudes=False):
    """Parameters and 20 steps of gradients. ``magnitudes=True`` gives −|θ₀| and |g|: from
    there every rule only adds up magnitudes (each step −α|g|/…, each velocity ρ s − α|g| ≤ 0),
    so the run ends at minus the scale against which its rounding is measured."""
    gen = torch.Generator().manual_seed(0)
    shapes = [(7, 5), (13,), (0,), (3, 4, 2), (2, 3, 4, 5)]
    params = [torch.randn(s, generator=gen, dtype=dtype) for s in shapes]
    grads = [[torch.randn(s, generator=gen, dtype=dtype) for s in shapes] for _ in range(STEPS)]
    if magnitudes:
        params = [-p.abs() for p in params]
        grads = [[g.abs() for g in gs] for gs in grads]
    params[-1] = params[-1].to(memory_format=torch.channels_last)  # non-contiguous strides
    params = [p.requires_grad_() for p in params]
    return params, grads


def steps(make, compiled, *, schedule=False, reload_at=None, dtype=torch.float32, magnitudes=False):
    params, grads = problem(dtype, magnitudes)
    groups = [{"params": params[:2]}, {"params": params[2:], "lr": 0.002}]
    opt = make(groups, compiled)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9) if schedule else None
    for k, gs in enumerate(grads):
        for i, (p, g) in enumerate(zip(params, gs)):
            p.grad = None if (k % 4 == 1 and i == 1) else g.clone()  # some gradients None
        opt.step()
        if sched:
            sched.step()  # a new α every step
        if k == reload_at:
            state = opt.state_dict()
            opt = make(groups, compiled)
            opt.load_state_dict(state)
            if sched:
                sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9, last_epoch=k)
    return params, opt


def assert_within(got, want, bound):
    excess = ((got.detach() - want.detach()).abs() / bound).nan_to_num(0.0)  # 0/0: both exact
    assert excess.numel() == 0 or excess.max() <= 1, f"{excess.max():.3g} times the rounding bound"


def assert_same_run(plain, fast, magnitude, u=U32):
    """Parameters and state of two runs agree within the rounding bound of ``magnitude``, the
    plain run from −|θ₀| with |g|."""
    (params_plain, opt_plain), (params_fast, opt_fast), (params_mag, opt_mag) = (
        plain,
        fast,
        magnitude,
    )
    for a, b, m in zip(params_plain, params_fast, params_mag):
        assert_within(b, a, rounding_bound(m, u))
        for key, value in opt_plain.state[a].items():
            other = opt_fast.state[b][key]
            if isinstance(value, torch.Tensor):
                assert_within(other, value, rounding_bound(opt_mag.state[m][key], u))
            else:
                assert other == value, key


@pytest.mark.parametrize("name", MAKERS)
def test_compiled_rule_agrees_with_plain_rule(name):
    make = MAKERS[name]
    assert_same_run(steps(make, False), steps(make, True), steps(make, False, magnitudes=True))


def test_float64_parameters_agree_to_float64_rounding():
    make, f64 = MAKERS["adam"], torch.float64
    assert_same_run(
        steps(make, False, dtype=f64),
        steps(make, True, dtype=f64),
        steps(make, False, dtype=f64, magnitudes=True),
        U64,
    )


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_scheduler_every_step_and_reload_mid_run_without_recompiling(name, compilations):
    plain = steps(MAKERS[name], False, schedule=True, reload_at=9)
    fast = steps(MAKERS[name], True, schedule=True, reload_at=9)
    magnitude = steps(MAKERS[name], False, schedule=True, reload_at=9, magnitudes=True)
    assert_same_run(plain, fast, magnitude)
    # one graph for the float32 buffers: 20 values of α and k, 3 lengths, 2 optimizers
    assert len(compilations) == 1


def test_parameters_keep_their_identity_and_layout():
    params, _ = problem()
    before = [p for p in params]
    opt = Adam(params, lr=0.01, compile=True)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    assert all(a is b for a, b in zip(before, params))
    assert params[-1].is_contiguous(memory_format=torch.channels_last)
    (buffers,), _ = opt._flat[0]
    # each parameter, its gradient and its state are views into the flat buffers
    for p in params[:1]:
        assert p.untyped_storage().data_ptr() == buffers.theta.untyped_storage().data_ptr()
        assert p.grad.untyped_storage().data_ptr() == buffers.grad.untyped_storage().data_ptr()
        assert opt.state[p]["s"].untyped_storage().data_ptr() == (
            buffers.buffers["s"].untyped_storage().data_ptr()
        )


def frozen_then_unfrozen(optimizer, frozen=1, unfreeze_at=10, magnitudes=False):
    """20 steps in which parameter ``frozen`` has requires_grad=False until step
    ``unfreeze_at``, as in fine-tuning; returns the parameters, the optimizer and its
    state_dict just before the unfreezing."""
    params, grads = problem(magnitudes=magnitudes)
    params[frozen].requires_grad_(False)
    opt = optimizer(params)
    for k, gs in enumerate(grads):
        if k == unfreeze_at:
            params[frozen].requires_grad_(True)
            before = opt.state_dict()
        for p, g in zip(params, gs):
            p.grad = g.clone() if p.requires_grad else None
        opt.step()
    return params, opt, before


def test_a_frozen_parameter_gets_no_state_until_it_has_a_gradient():
    runs = {
        "torch": frozen_then_unfrozen(lambda ps: torch.optim.Adam(ps, lr=0.01)),
        "plain": frozen_then_unfrozen(lambda ps: MAKERS["adam"](ps, False)),
        "compiled": frozen_then_unfrozen(lambda ps: MAKERS["adam"](ps, True)),
    }
    # torch.optim keeps state only for parameters that had a gradient: 1 is frozen
    expected = [0, 2, 3, 4]
    assert sorted(runs["torch"][2]["state"]) == expected
    for name in ("plain", "compiled"):
        assert sorted(runs[name][2]["state"]) == expected, name
    params, opt, _ = runs["compiled"]
    (buffers,), outside = opt._flat[0]
    assert outside == []  # unfrozen: in the flat buffers now, with the others
    assert buffers.theta.numel() == sum(p.numel() for p in params)
    magnitude = frozen_then_unfrozen(lambda ps: MAKERS["adam"](ps, False), magnitudes=True)
    assert_same_run(runs["plain"][:2], runs["compiled"][:2], magnitude[:2])
    assert sorted(opt.state_dict()["state"]) == list(range(len(params)))


def test_a_frozen_parameter_takes_no_flat_buffer_memory():
    params, _ = problem()
    params[0].requires_grad_(False)
    data = params[0].data_ptr()
    opt = Adam(params, lr=0.01, compile=True)
    for p in params[1:]:
        p.grad = torch.ones_like(p)
    opt.step()
    (buffers,), outside = opt._flat[0]
    assert outside == [params[0]] and params[0].data_ptr() == data
    assert buffers.theta.numel() == sum(p.numel() for p in params[1:])
    assert not opt.state[params[0]]


def train(compiled, *, set_to_none, replace_at=None, kick_at=None, kick=1e-4):
    """12 steps of Adam on a small network; at step ``kick_at`` θ and the state are perturbed
    by a random relative ``kick``."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    x, y = torch.randn(32, 6), torch.randn(32, 2)
    opt = Adam(model.parameters(), lr=0.01, compile=compiled)
    gen = torch.Generator().manual_seed(1)
    losses = []
    for i in range(12):
        if i == replace_at:
            for p in model.parameters():  # as model.to(...) or load_state_dict(assign=True)
                p.data = p.data.clone()  # new data for each parameter: rebuild the buffers
        if i == kick_at:
            with torch.no_grad():
                for p in model.parameters():
                    for t in [p, *(v for v in opt.state[p].values() if torch.is_tensor(v))]:
                        t.mul_(1 + kick * torch.randn(t.shape, generator=gen))
        opt.zero_grad(set_to_none=set_to_none)
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model, losses


def assert_same_training(plain, fast, **how):
    """Here the gradients follow θ, so a rounding difference made at step k (OPS_COMPILED
    roundings of a step, u relative, on each side) is carried to the end and magnified by the
    network's dynamics, by A at most; 12 such differences add up. A is measured: the growth
    of a relative kick of 1e-4 (far above float32 rounding, far below where the dynamics stop
    being linear) given to θ and the state at steps 0, 4 and 8 of the plain run."""
    (model_plain, losses_plain), (model_fast, losses_fast) = plain, fast
    theta = torch.cat([p.detach().flatten() for p in model_plain.parameters()])
    losses = torch.tensor(losses_plain)
    kick, amplify_theta, amplify_loss = 1e-4, 1.0, 1.0
    for k in (0, 4, 8):
        model_k, losses_k = train(False, kick_at=k, kick=kick, **how)
        theta_k = torch.cat([p.detach().flatten() for p in model_k.parameters()])
        moved = (theta_k - theta).abs().max() / theta.abs().max()
        moved_loss = ((torch.tensor(losses_k) - losses) / losses).abs().max()
        amplify_theta = max(amplify_theta, moved.item() / kick)
        amplify_loss = max(amplify_loss, moved_loss.item() / kick)
    rounding = 12 * OPS_COMPILED * 2 * U32
    rtol = rounding * amplify_loss
    torch.testing.assert_close(torch.tensor(losses_fast), losses, rtol=rtol, atol=0)
    bound = rounding * amplify_theta * theta.abs().max().item()
    for a, b in zip(model_plain.parameters(), model_fast.parameters()):
        torch.testing.assert_close(b, a, rtol=0, atol=bound)


@pytest.mark.parametrize("set_to_none", [True, False])
def test_training_a_module_agrees_with_plain(set_to_none):
    plain = train(False, set_to_none=set_to_none)
    assert_same_training(plain, train(True, set_to_none=set_to_none), set_to_none=set_to_none)


def test_gradients_zeroed_in_place_stay_in_the_flat_buffer():
    model = torch.nn.Linear(4, 3)
    opt = Adam(model.parameters(), lr=0.01, compile=True)
    x = torch.randn(8, 4)
    model(x).sum().backward()
    opt.step()
    views = [p.grad for p in model.parameters()]
    opt.zero_grad(set_to_none=False)
    model(x).sum().backward()  # accumulates into the existing views: nothing to copy in
    assert all(p.grad is v for p, v in zip(model.parameters(), views))
    opt.step()


def test_parameter_data_replaced_mid_run_rebuilds_the_buffers():
    how = dict(set_to_none=True, replace_at=6)
    assert_same_training(train(False, **how), train(True, **how), **how)


def test_prelude_takes_the_hyperparameter_arithmetic():
    gm = traced_rule(rules.RULES["adam"], bias_correction=True)
    prelude, loop = hoist.split_scalars(gm)
    kernel = hoist.hoisted(gm)
    theta, g, s, r = (torch.rand(1000) + 0.1 for _ in range(4))
    expected = [t.clone() for t in (theta, g, s, r)]
    h = dict(lr=1e-3, rho1=0.9, rho2=0.999, eps=1e-8)
    as_tensors = [torch.tensor(v, dtype=torch.float64) for v in (3.0, *h.values())]
    kernel(theta, g, s, r, *as_tensors)
    rules.adam(*expected, k=3, **h)
    # one float32 step, the same inputs: θ − step rounds once on each side (the step, ~1e-3 of
    # θ ≥ 0.1, adds little), s ≤ 3 roundings (lerp), r ≤ 4 (g⊙g, lerp), all of terms of one
    # sign: at most 8 roundings of u32 between the two
    for got, want in zip((theta, g, s, r), expected):
        torch.testing.assert_close(got, want, rtol=8 * U32, atol=0)
    aten = torch.ops.aten
    loop_ops = {n.target for n in loop.graph.nodes if n.op == "call_function"}
    prelude_ops = {n.target for n in prelude.graph.nodes}
    # 1 − ρᵏ is computed once in the prelude; the loop multiplies by its reciprocal
    assert aten.pow.Tensor_Tensor in prelude_ops and aten.reciprocal.default in prelude_ops
    assert not loop_ops & {aten.pow.Tensor_Tensor, aten.div.Tensor, aten.div_.Tensor}


def test_no_compiler_falls_back_to_the_plain_rule_with_one_warning(monkeypatch):
    # inductor's own patch: monkeypatch would delete these config entries when undoing
    no_compiler = {"cpp.cxx": (None, "/nonexistent/c++"), "force_disable_caches": True}
    monkeypatch.setattr(trace, "_warned", set())
    update = step.CompiledRule(rules.RULES["gd"], torch.float32, torch.device("cpu"), ())
    theta, g = torch.ones(10), torch.full((10,), 2.0)
    with (
        torch._inductor.config.patch(no_compiler),
        pytest.warns(RuntimeWarning, match="could not be compiled") as record,
    ):
        for _ in range(3):
            assert not update(theta, g, {}, {"lr": 0.5})
    assert sum("could not be compiled" in str(w.message) for w in record) == 1  # one warning
    torch.testing.assert_close(theta, torch.full((10,), -2.0))  # 1 − 3·0.5·2, never an error


def test_compile_flag_and_hyperparameters_are_checked():
    with pytest.raises(TypeError, match="compile must be True, False or None"):
        Adam([torch.zeros(2, requires_grad=True)], compile="yes")
    with pytest.raises(ValueError, match="lr must be a number or a one-element tensor"):
        Adam([torch.zeros(2, requires_grad=True)], lr=torch.ones(2), compile=True)
    opt = Adam([torch.zeros(2, requires_grad=True)], lr=torch.tensor(0.1), compile=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        opt.param_groups[0]["params"][0].grad = torch.ones(2)
        opt.step()  # a one-element tensor α is allowed
    torch.testing.assert_close(opt.param_groups[0]["params"][0].detach(), torch.full((2,), -0.1))


@pytest.mark.parametrize("name", MAKERS)
def test_prelude_on_floats_gives_the_numbers_of_the_tensor_prelude(name):
    """The prelude's arithmetic on Python floats is the same IEEE arithmetic as on 0-d float64
    tensors: the two must agree bit for bit, here over random hyperparameters and steps k."""
    rule = rules.get(name)
    gm = traced_rule(rule, bias_correction=True) if rule.switches else traced_rule(rule)
    gen = torch.Generator().manual_seed(1)
    prelude, _ = hoist.split_scalars(gm)
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    scalars = [i for i, n in enumerate(placeholders) if hoist._is_scalar(n)]
    floats = hoist.on_floats(prelude, scalars)
    assert floats is not None  # every rule's prelude has its float form
    for _ in range(20):
        args = []
        for i in range(len(placeholders)):
            if i in scalars:  # α, ρ, ε in their domains, k a whole number
                v = (
                    float(torch.randint(1, 10**6, (), generator=gen))
                    if rule.counts_steps and i == 2 + len(rule.state)
                    else torch.rand((), generator=gen, dtype=torch.float64).item()
                )
                args.append(torch.tensor(v, dtype=torch.float64))
            else:
                args.append(torch.rand(50, generator=gen))
        want = [t.item() for t in prelude(*args)]
        assert list(floats(*args)) == want


def test_a_division_by_zero_in_the_prelude_gives_what_the_plain_rule_gives():
    theta, g, s, r = (torch.rand(100) + 0.1 for _ in range(4))
    plain = [t.clone() for t in (theta, g, s, r)]
    h = dict(k=3, lr=1e-3, rho1=1.0, rho2=0.999, eps=1e-8)  # 1 − ρ₁ᵏ = 0: ŝ = s / 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the compiled rule ran: no fallback
        adam = step.compiled(
            rules.RULES["adam"], torch.float32, "cpu", (("bias_correction", True),)
        )
        k, h = h.pop("k"), {**h, "bias_correction": True}
        assert adam(theta, g, {"s": s, "r": r}, h, k=k)
    rules.adam(*plain, k=k, **h)
    assert torch.isinf(plain[0]).all()
    for got, want in zip((theta, g, s, r), plain):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=0, equal_nan=True)
