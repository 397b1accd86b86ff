"""PyTorch's generic optimizer tests, run against firstorder's optimizers.

Ported from ``TestOptimRenewed`` in pytorch/pytorch ``test/test_optim.py`` (BSD-3-Clause; the
file is not in the wheel): each test keeps torch's name and checks what torch's checks, with
the optimizer described by an entry of ``optim_db.OPTIM_DB`` (torch's own ``OptimizerInfo``
class). Adapted for pytest on the CPU: no device/dtype instantiation, ``assertEqual`` written
as ``torch.equal`` where both sides run the same operations in the same order on this machine
(a reload, a copy) and with a derived tolerance elsewhere. The tests for ``foreach``, ``fused``,
``capturable``, CUDA, MPS and several GPUs, and those for sparse gradients or weight decay, do
not apply (README, "PyTorch's own optimizer tests"); entries skip the rest with a reason.
"""

import copy
import functools

import optim_db
import pytest
import torch
from optim_db import all_inputs, applies, compile_small_tensors, every, fwd_bwd  # noqa: F401
from torch.nn import Parameter
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torch.testing._internal.common_optimizers import OptimizerErrorEnum

DTYPE = torch.float32


def weight_bias(contiguous=True, seed=0):
    torch.manual_seed(seed)
    if contiguous:
        return Parameter(torch.randn(10, 5)), Parameter(torch.randn(10)), torch.randn(5)
    return (
        Parameter(torch.randn(10, 5, 2)[..., 0]),
        Parameter(torch.randn(10, 2)[..., 0]),
        torch.randn(5),
    )


def step_schedulers(schedulers, loss):
    for scheduler in schedulers:
        if isinstance(scheduler, ReduceLROnPlateau):
            scheduler.step(loss.item())
        else:
            scheduler.step()


@every
def test_optim_infos_do_not_specify_global_cliquey_kwargs(optim_info):
    for optim_input in optim_info.optim_inputs_func(device="cpu"):
        assert not {"foreach", "fused", "differentiable"} & set(optim_input.kwargs)


@every
def test_errors(optim_info):
    for error_input in optim_info.optim_error_inputs_func(device="cpu", dtype=DTYPE):
        optim_input = error_input.optimizer_error_input
        make = functools.partial(optim_info.optim_cls, optim_input.params, **optim_input.kwargs)
        with pytest.raises(error_input.error_type, match=error_input.error_regex):
            if error_input.error_on == OptimizerErrorEnum.CONSTRUCTION_ERROR:
                make()
            else:
                make().step()


@every
@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "strided"])
@pytest.mark.parametrize("with_lrsched", [False, True], ids=["constant", "scheduled"])
def test_forloop_goes_right_direction(optim_info, contiguous, with_lrsched):
    applies(optim_info, "test_forloop_goes_right_direction")
    for schedulers_c in optim_info.scheduler_inputs if with_lrsched else [[]]:
        for optim_input in optim_info.optim_inputs_func(device="cpu"):
            weight, bias, x = weight_bias(contiguous)
            optimizer = optim_info.optim_cls([weight, bias], **optim_input.kwargs)
            schedulers = [make(optimizer) for make in schedulers_c]
            closure = functools.partial(fwd_bwd, optimizer, weight, bias, x)
            initial = closure().item()
            for _ in range(20):
                loss = closure()
                optimizer.step()
                step_schedulers(schedulers, loss)
            assert closure().item() < initial, optim_input.desc


@every
def test_param_group_with_lrscheduler_goes_right_direction(optim_info):
    applies(optim_info, "test_param_group_with_lrscheduler_goes_right_direction")
    # adapted: GD, Momentum, AdaGrad and RMSProp have no default α (torch's SGD has 1e-3)
    kwargs = {**optim_info.optim_inputs_func(device="cpu")[0].kwargs, "lr": 0.01}
    for schedulers_c in optim_info.scheduler_inputs:
        weight, bias, x = weight_bias()
        optimizer = optim_info.optim_cls(
            [{"params": [weight]}, {"params": [bias], "lr": 0.01}], **kwargs
        )
        schedulers = [make(optimizer) for make in schedulers_c]
        closure = functools.partial(fwd_bwd, optimizer, weight, bias, x)
        initial = closure().item()
        for _ in range(20):
            step_schedulers(schedulers, optimizer.step(closure))
        assert closure().item() < initial


@every
def test_tensor_lr(optim_info):
    applies(optim_info, "test_tensor_lr")
    for optim_input in all_inputs(optim_info):
        weight, bias, x = weight_bias()
        weight_c = weight.detach().clone().requires_grad_()
        bias_c = bias.detach().clone().requires_grad_()
        kwargs = {**optim_input.kwargs, "lr": 1e-3}
        optimizer_r = optim_info.optim_cls([weight, bias], **kwargs)
        optimizer = optim_info.optim_cls([weight_c, bias_c], **{**kwargs, "lr": torch.tensor(1e-3)})
        for _ in range(5):
            # adapted: torch's version calls only the closures here, never step()
            optimizer_r.step(functools.partial(fwd_bwd, optimizer_r, weight, bias, x))
            optimizer.step(functools.partial(fwd_bwd, optimizer, weight_c, bias_c, x))
        # α as 1e-3 or as a float32 0-d tensor of it: float32 kernels round the Python number
        # to float32 as well, so the same operations see the same numbers
        assert torch.equal(weight, weight_c) and torch.equal(bias, bias_c), optim_input.desc


def complex_and_real_params():
    torch.manual_seed(0)
    # the last one is real: real and complex mix in one optimizer
    complex_params = [
        torch.randn(10, 5, dtype=torch.complex64, requires_grad=True),
        torch.randn(10, dtype=torch.complex64, requires_grad=True),
        torch.randn(10, 5, dtype=torch.float32, requires_grad=True),
    ]
    real_params = [
        (torch.view_as_real(p) if p.is_complex() else p).detach().clone().requires_grad_()
        for p in complex_params
    ]
    return complex_params, real_params


@pytest.mark.parametrize(
    "optim_info", [o for o in optim_db.OPTIM_DB if o.supports_complex], ids=optim_db.name
)
def test_complex(optim_info):
    for optim_input in all_inputs(optim_info):
        complex_params, real_params = complex_and_real_params()
        complex_opt = optim_info.optim_cls(complex_params, **optim_input.kwargs)
        real_opt = optim_info.optim_cls(real_params, **optim_input.kwargs)
        for _ in range(3):
            for c, r in zip(complex_params, real_params):
                r.grad = torch.randn_like(r)
                c.grad = torch.view_as_complex(r.grad) if c.is_complex() else r.grad.clone()
            real_opt.step()
            complex_opt.step()
            for c, r in zip(complex_params, real_params):
                # a complex number is updated as its (real, imaginary) pair: the same operations
                assert torch.equal(torch.view_as_real(c) if c.is_complex() else c, r)


def rosenbrock(t):
    x, y = t
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


@pytest.mark.parametrize(
    "optim_info", [o for o in optim_db.OPTIM_DB if o.supports_complex], ids=optim_db.name
)
def test_complex_2d(optim_info):
    for optim_input in all_inputs(optim_info):
        torch.manual_seed(2024)
        a1 = torch.randn(2, dtype=torch.complex64, requires_grad=True)
        a1_real = a1.real.detach().clone().requires_grad_()
        a1_imag = a1.imag.detach().clone().requires_grad_()
        optim1 = optim_info.optim_cls([a1], **optim_input.kwargs)
        optim2 = optim_info.optim_cls([a1_real, a1_imag], **optim_input.kwargs)
        for _ in range(3):
            optim1.zero_grad()
            optim2.zero_grad()
            rosenbrock(a1).abs().backward()
            rosenbrock(torch.complex(a1_real, a1_imag)).abs().backward()
            # the two graphs compute |f| by the same operations in the same order
            assert torch.equal(a1.grad.real, a1_real.grad)
            assert torch.equal(a1.grad.imag, a1_imag.grad)
            optim1.step()
            optim2.step()
            assert torch.equal(a1.real, a1_real) and torch.equal(a1.imag, a1_imag)


@every
def test_param_groups_lr(optim_info):
    applies(optim_info, "test_param_groups_lr")
    for optim_input in all_inputs(optim_info):
        kwargs = dict(optim_input.kwargs)
        if not kwargs.get("lr"):
            kwargs["lr"] = 1e-3
        weight, bias, x = weight_bias()
        irrelevant = Parameter(torch.randn(2))
        irrelevant_clone = irrelevant.detach().clone()
        optimizer = optim_info.optim_cls(
            [dict(params=[weight, bias], **kwargs), dict(params=[irrelevant])],
            **{"lr": 1e-28, "compile": kwargs.get("compile", False)},
        )
        initial = fwd_bwd(optimizer, weight, bias, x).item()
        for _ in range(20):
            loss = fwd_bwd(optimizer, weight, bias, x)
            irrelevant.grad = torch.rand_like(irrelevant)
            optimizer.step()
        assert loss.item() < initial
        # α = 1e-28 moves a parameter by at most α|g|/(1 − ρ) a step (momentum; GD α|g|; the
        # adaptive rules about α, as |g|/(√r + ε) stays near 1), with |g| < 1: 20 steps move
        # it by under 1e-25, far below half an ulp of these N(0, 1) numbers: it stays as it was
        assert torch.equal(irrelevant, irrelevant_clone)


@every
def test_step_is_noop_when_params_have_no_grad(optim_info):
    applies(optim_info, "test_step_is_noop_when_params_have_no_grad")
    params = [torch.randn(2, 3) for _ in range(2)]
    old = [p.clone() for p in params]
    for optim_input in all_inputs(optim_info):
        optim_info.optim_cls(params, **optim_input.kwargs).step(lambda: torch.tensor([1.0]))
        assert all(torch.equal(a, b) for a, b in zip(old, params))


@every
def test_step_is_noop_for_zero_grads(optim_info):
    applies(optim_info, "test_step_is_noop_for_zero_grads")
    param = torch.randn(5, 1, requires_grad=True)
    old = param.detach().clone()
    for optim_input in all_inputs(optim_info):
        kwargs = optim_input.kwargs
        if "weight_decay" in optim_info.optim_cls.rule.hyper:
            # as torch's own test: a decay θ ← θ − αδθ moves θ whatever g is (AdamW's default
            # δ is 1e-2), so δ = 0 here; that the decay itself is right, tests/test_rules.py
            kwargs = {**kwargs, "weight_decay": 0.0}
        optimizer = optim_info.optim_cls([param], **kwargs)
        param.grad = torch.zeros_like(param)
        optimizer.step(lambda: torch.tensor([1.0]))
        assert torch.equal(param.detach(), old), optim_input.desc  # every step is α·0 = 0


@every
def test_optimizer_can_be_printed(optim_info):
    params = [Parameter(torch.randn(2, 3)) for _ in range(2)]
    for optim_input in all_inputs(optim_info):
        text = repr(optim_info.optim_cls(params, **optim_input.kwargs))
        assert text.startswith(optim_info.name) and "lr" in text


@every
def test_deepcopy_copies_all_public_attrs(optim_info):
    applies(optim_info, "test_deepcopy_copies_all_public_attrs")
    params = [Parameter(torch.randn(2, 3)) for _ in range(2)]
    for p in params:
        p.grad = torch.rand_like(p)

    def public(obj):
        return {k for k in obj.__dict__ if not k.startswith("_")}

    for optim_input in all_inputs(optim_info):
        optimizer = optim_info.optim_cls(params, **optim_input.kwargs)
        for _ in range(3):
            optimizer.step()
        assert public(optimizer) == public(copy.deepcopy(optimizer))


@pytest.mark.parametrize(
    "optim_info", [o for o in optim_db.OPTIM_DB if o.step_requires_closure], ids=optim_db.name
)
def test_second_order_optims_return_consistent_types(optim_info):
    applies(optim_info, "test_second_order_optims_return_consistent_types")


@every
def test_non_empty_state(optim_info):
    applies(optim_info, "test_non_empty_state")
    model = torch.nn.Linear(5, 5)
    x = torch.rand(2, 5)
    for optim_input in optim_info.optim_inputs_func(device="cpu"):
        optim = optim_info.optim_cls(model.parameters(), **optim_input.kwargs)
        optim.zero_grad()
        model(x).sum().backward()
        optim.step()
        assert optim.state and all(len(state) > 0 for state in optim.state.values())
