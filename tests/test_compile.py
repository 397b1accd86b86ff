"""compile=True runs the same rule through torch.compile: it must agree with the plain path."""

import pytest
import torch

from firstorder.optim import GD, AdaGrad, Adam, Momentum, RMSProp

MAKERS = {
    "gd": lambda p, c: GD(p, lr=0.05, compile=c),
    "momentum": lambda p, c: Momentum(p, lr=0.05, rho=0.9, compile=c),
    "adagrad": lambda p, c: AdaGrad(p, lr=0.05, compile=c),
    "rmsprop": lambda p, c: RMSProp(p, lr=0.01, compile=c),
    "adam": lambda p, c: Adam(p, lr=0.01, compile=c),
}


def problem():
    gen = torch.Generator().manual_seed(0)
    shapes = [(7, 5), (13,), (3, 4, 2)]
    params = [torch.randn(s, generator=gen).requires_grad_() for s in shapes]
    grads = [[torch.randn(s, generator=gen) for s in shapes] for _ in range(20)]
    return params, grads


def steps(make, compiled, *, schedule=False, reload_at=None):
    params, grads = problem()
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
    return [p.detach() for p in params], opt


@pytest.mark.parametrize("name", MAKERS)
def test_compiled_rule_agrees_with_plain_rule(name):
    plain, opt_plain = steps(MAKERS[name], False)
    fast, opt_fast = steps(MAKERS[name], True)
    for a, b in zip(plain, fast):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)  # float32 rounding
    for p_plain, p_fast in zip(
        (p for g in opt_plain.param_groups for p in g["params"]),
        (p for g in opt_fast.param_groups for p in g["params"]),
    ):
        for key, value in opt_plain.state[p_plain].items():
            other = opt_fast.state[p_fast][key]
            if isinstance(value, torch.Tensor):
                torch.testing.assert_close(other, value, rtol=1e-5, atol=1e-6)
            else:
                assert other == value


def test_compiled_adam_with_scheduler_and_reload_does_not_recompile_per_lr(monkeypatch):
    import torch._dynamo

    plain, _ = steps(MAKERS["adam"], False, schedule=True, reload_at=9)
    # warm up: the first steps compile (k = 1, then k symbolic); after that no new graph
    torch._dynamo.reset()
    params, grads = problem()
    opt = Adam(params, lr=0.01, compile=True)
    for k in range(3):
        for p, g in zip(params, grads[k]):
            p.grad = g
        opt.step()
    monkeypatch.setattr(torch._dynamo.config, "error_on_recompile", True)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
    for k in range(3, 20):
        for p, g in zip(params, grads[k]):
            p.grad = g
        opt.step()  # raises if a new α or k forced a recompilation
        sched.step()
    monkeypatch.undo()
    fast, _ = steps(MAKERS["adam"], True, schedule=True, reload_at=9)
    for a, b in zip(plain, fast):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_compile_flag_is_checked():
    with pytest.raises(TypeError, match="compile must be True or False"):
        Adam([torch.zeros(2, requires_grad=True)], compile="yes")
