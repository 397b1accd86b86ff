"""PyTorch's generic optimizer tests of state dicts and hooks, run against firstorder's
optimizers: the second half of the port of ``TestOptimRenewed`` (pytorch/pytorch
``test/test_optim.py``, BSD-3-Clause) that ``test_torch_suite.py`` begins; the same entries
(``optim_db.OPTIM_DB``), the same adaptations.
"""

import copy
import functools
import io

import pytest
import torch
from optim_db import all_inputs, applies, compile_small_tensors, every, fwd_bwd  # noqa: F401
from torch.nn import Parameter
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)

named = pytest.mark.parametrize("is_named", [False, True], ids=["unnamed", "named"])


def with_names(params, is_named):
    return [(f"name{i}", p) for i, p in enumerate(params)] if is_named else params


def without_param_names(state_dict):
    state_dict = copy.deepcopy(state_dict)
    for group in state_dict["param_groups"]:
        group.pop("param_names", None)
    return state_dict


def assert_same_state_dict(a, b):
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys()
    for key, state in a["state"].items():
        assert state.keys() == b["state"][key].keys()
        for name, value in state.items():
            other = b["state"][key][name]
            assert torch.equal(value, other) if torch.is_tensor(value) else value == other


@every
@pytest.mark.parametrize("is_named_optim0", [False, True])
@pytest.mark.parametrize("is_named_optim1", [False, True])
def test_state_dict_deterministic(optim_info, is_named_optim0, is_named_optim1):
    applies(optim_info, "test_state_dict_deterministic")
    torch.manual_seed(0)
    weight, bias = Parameter(torch.randn(2, 3)), Parameter(torch.randn(2))
    x = torch.randn(3)
    for optim_input in all_inputs(optim_info):
        optimizer = optim_info.optim_cls(
            with_names([weight, bias], is_named_optim0), **optim_input.kwargs
        )
        closure = functools.partial(fwd_bwd, optimizer, weight, bias, x)
        for _ in range(10):
            optimizer.step(closure)
        with torch.no_grad():
            weight_c, bias_c = Parameter(weight.clone()), Parameter(bias.clone())
        optimizer_c = optim_info.optim_cls(
            with_names([weight_c, bias_c], is_named_optim1), **optim_input.kwargs
        )
        closure_c = functools.partial(fwd_bwd, optimizer_c, weight_c, bias_c, x)
        optimizer_c.load_state_dict(copy.deepcopy(optimizer.state_dict()))
        for _ in range(10):
            optimizer.step(closure)
            optimizer_c.step(closure_c)
            # a reloaded copy runs the same operations on the same numbers: bit for bit
            assert torch.equal(weight, weight_c) and torch.equal(bias, bias_c)
        assert_same_state_dict(
            without_param_names(optimizer.state_dict()),
            without_param_names(optimizer_c.state_dict()),
        )
        # repeated parameters have the same representation (pytorch#36831)
        optimizer_c.param_groups.extend(optimizer_c.param_groups)
        assert (
            without_param_names(optimizer.state_dict())["param_groups"][-1]
            == without_param_names(optimizer_c.state_dict())["param_groups"][-1]
        )


def conv_bn(optim_info, optim_input, params_of=lambda m: m.parameters()):
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Conv2d(4, 2, 1, stride=2), torch.nn.BatchNorm2d(2))
    x = torch.rand(1, 4, 16, 16)
    optimizer = optim_info.optim_cls(params_of(model), **optim_input.kwargs)

    def step(opt):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()

    for _ in range(3):
        step(optimizer)
    return model, optimizer, step


@every
def test_can_load_older_state_dict(optim_info):
    applies(optim_info, "test_can_load_older_state_dict")
    assert optim_info.not_og_supported_flags == ()  # no flag was added after the first release
    for optim_input in all_inputs(optim_info):
        _, optimizer, step = conv_bn(optim_info, optim_input)
        optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))
        step(optimizer)


@every
@pytest.mark.parametrize("is_named_optim0", [False, True])
@pytest.mark.parametrize("is_named_optim1", [False, True])
def test_can_load_from_to_named_state_dict(optim_info, is_named_optim0, is_named_optim1):
    applies(optim_info, "test_can_load_from_to_named_state_dict")
    for optim_input in all_inputs(optim_info):
        model, optimizer, step = conv_bn(
            optim_info,
            optim_input,
            lambda m: m.named_parameters() if is_named_optim0 else m.parameters(),
        )
        state = copy.deepcopy(optimizer.state_dict())
        optimizer2 = optim_info.optim_cls(
            model.named_parameters() if is_named_optim1 else model.parameters(),
            **optim_input.kwargs,
        )
        optimizer2.load_state_dict(state)
        step(optimizer2)
        if is_named_optim0 or is_named_optim1:
            names = optimizer2.state_dict()["param_groups"][0]["param_names"]
            assert names == ["0.weight", "0.bias", "1.weight", "1.bias"]


@every
@named
def test_save_load_equality_with_weights_only(optim_info, is_named):
    applies(optim_info, "test_save_load_equality_with_weights_only")
    torch.manual_seed(0)
    weight, bias, x = Parameter(torch.randn(2, 3)), Parameter(torch.randn(2)), torch.randn(3)
    for optim_input in all_inputs(optim_info):
        optimizer = optim_info.optim_cls(with_names([weight, bias], is_named), **optim_input.kwargs)
        for _ in range(3):
            optimizer.step(functools.partial(fwd_bwd, optimizer, weight, bias, x))
        state = optimizer.state_dict()
        for weights_only in (False, True):
            buffer = io.BytesIO()
            torch.save(state, buffer)
            buffer.seek(0)
            assert_same_state_dict(torch.load(buffer, weights_only=weights_only), state)


@every
def test_load_nontensor_step(optim_info):
    applies(optim_info, "test_load_nontensor_step")
    params = [Parameter(torch.randn(2, 3)) for _ in range(2)]
    for p in params:
        p.grad = torch.rand_like(p)
    for optim_input in all_inputs(optim_info):
        optimizer = optim_info.optim_cls(params, **optim_input.kwargs)
        for _ in range(3):
            optimizer.step()
        state = copy.deepcopy(optimizer.state_dict())
        for p_state in state["state"].values():  # ours is already a Python int, k
            assert not torch.is_tensor(p_state.get("k", 0))
        optimizer.load_state_dict(state)
        optimizer.step()


def one_param_optimizers(optim_info):
    for optim_input in all_inputs(optim_info):
        param = torch.rand(2, 3, requires_grad=True)
        yield optim_info.optim_cls([param], **optim_input.kwargs)


def state_dict_pre_hook(optimizer):
    optimizer.state["test"] = 1


def state_dict_post_hook(optimizer, state_dict):
    state_dict["ran_state_dict_pre_hook"] = "test" in state_dict["state"]
    state_dict["state"].pop("test", None)
    return state_dict


@every
def test_state_dict_pre_hook(optim_info):
    for optim in one_param_optimizers(optim_info):
        optim.register_state_dict_pre_hook(state_dict_pre_hook)
        assert optim.state_dict()["state"]["test"] == 1


@every
def test_state_dict_post_hook(optim_info):
    for optim in one_param_optimizers(optim_info):
        optim.register_state_dict_post_hook(state_dict_post_hook)
        assert optim.state_dict()["ran_state_dict_pre_hook"] is False


@every
def test_state_dict_pre_post_hook(optim_info):
    for optim in one_param_optimizers(optim_info):
        optim.register_state_dict_pre_hook(state_dict_pre_hook)
        optim.register_state_dict_post_hook(state_dict_post_hook)
        state_dict = optim.state_dict()
        assert "test" not in state_dict["state"] and state_dict["ran_state_dict_pre_hook"]


def load_pre_hook1(optimizer, state_dict):
    state_dict["param_groups"][0]["lr"] = 0.002


def load_pre_hook2(optimizer, state_dict):
    state_dict = copy.deepcopy(state_dict)  # a hook may return a new state dict
    state_dict["param_groups"][0]["lr"] = 0.003
    return state_dict


def load_post_hook(optimizer):
    optimizer.state["ran_load_state_dict_pre_hook2"] = optimizer.param_groups[0]["lr"] == 0.003
    optimizer.state["ran_load_state_dict_post_hook"] = True


@every
def test_load_state_dict_pre_hook_and_prepend(optim_info):
    for optim in one_param_optimizers(optim_info):
        state_dict = optim.state_dict()
        optim.register_load_state_dict_pre_hook(load_pre_hook1)
        optim.load_state_dict(state_dict)
        assert optim.param_groups[0]["lr"] == 0.002
        optim.register_load_state_dict_pre_hook(load_pre_hook2, prepend=True)
        optim.load_state_dict(state_dict)
        assert optim.param_groups[0]["lr"] == 0.002  # prepended: hook1 runs last


@every
def test_load_state_dict_post_hook(optim_info):
    for optim in one_param_optimizers(optim_info):
        optim.register_load_state_dict_post_hook(load_post_hook)
        optim.load_state_dict(optim.state_dict())
        assert not optim.state["ran_load_state_dict_pre_hook2"]  # α may be a tensor: no `is`
        assert optim.state["ran_load_state_dict_post_hook"] is True


@every
def test_load_state_dict_pre_post_hook(optim_info):
    for optim in one_param_optimizers(optim_info):
        optim.register_load_state_dict_pre_hook(load_pre_hook2)
        optim.register_load_state_dict_post_hook(load_post_hook)
        optim.load_state_dict(optim.state_dict())
        assert optim.state["ran_load_state_dict_pre_hook2"]
        assert optim.state["ran_load_state_dict_post_hook"] is True


@every
@pytest.mark.parametrize("when", ["pre", "post"])
def test_step_hook(optim_info, when):
    """torch's test_step_pre_hook and test_step_post_hook."""
    applies(optim_info, f"test_step_{when}_hook")
    params = [torch.tensor([1.0, 1.0])]
    for optim_input in all_inputs(optim_info):
        optim = optim_info.optim_cls(params, **optim_input.kwargs)
        calls = []
        register = getattr(optim, f"register_step_{when}_hook")
        handle = register(lambda opt, args, kwargs, calls=calls: calls.append(opt))
        optim.step()
        optim.step()
        assert calls == [optim, optim]
        handle.remove()
        optim.step()
        assert len(calls) == 2


@every
def test_step_all_hooks(optim_info):
    applies(optim_info, "test_step_all_hooks")
    params = [torch.tensor([1.0, 1.0])]
    for optim_input in all_inputs(optim_info):
        optim = optim_info.optim_cls(params, **optim_input.kwargs)
        optim2 = torch.optim.SGD(params)
        data = []

        def hook(value, data=data):
            return lambda *_: data.append(value)

        handles = [
            register_optimizer_step_pre_hook(hook(0)),
            register_optimizer_step_post_hook(hook(5)),
            optim.register_step_pre_hook(hook(1)),
            optim.register_step_post_hook(hook(2)),
            optim2.register_step_pre_hook(hook(1)),
            optim2.register_step_post_hook(hook(2)),
        ]
        try:
            optim.step()
            optim2.step()
            optim.step()
            assert data == [0, 1, 2, 5] * 3
        finally:
            for handle in handles:
                handle.remove()
        optim.step()
        optim2.step()
        assert data == [0, 1, 2, 5] * 3
