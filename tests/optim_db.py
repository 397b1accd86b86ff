"""firstorder's optimizers described for PyTorch's generic optimizer tests: ``OptimizerInfo``
entries, as ``torch.testing._internal.common_optimizers.optim_db`` describes torch.optim's own.

Each entry gives the constructor arguments in our names (``rho``, ``rho1``, ``rho2``, ``eps``,
``bias_correction``, ``weight_decay`` for AdamW), says which of torch's flags we do not offer
(``supported_impls=()``: no ``foreach``, ``fused`` or ``differentiable``; no ``maximize``,
``capturable``, and no ``weight_decay`` but AdamW's), and skips, each with its reason, the
generic tests that do not apply.
``compile=True`` (the flat-buffer compiled path) gets entries of its own.

Importing torch's testing module needs ``expecttest`` (a dev dependency); it also calls
``torch.backends.disable_global_flags()``, which nothing in firstorder depends on.
"""

import copy
import unittest

import pytest
import torch
from torch.testing._internal.common_methods_invocations import DecorateInfo
from torch.testing._internal.common_optimizers import (
    ErrorOptimizerInput,
    OptimizerErrorEnum,
    OptimizerInfo,
    OptimizerInput,
)

from firstorder.kernels import step
from firstorder.optim import GD, AdaGrad, Adam, AdamW, Momentum, Nesterov, Newton, RMSProp

SCHEDULERS = (
    [lambda opt: torch.optim.lr_scheduler.StepLR(opt, gamma=0.9, step_size=10)],
    [lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt)],
    [
        lambda opt: torch.optim.lr_scheduler.ConstantLR(opt, factor=0.4, total_iters=4),
        lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9),
    ],
)
# α falling to 0 within 4 steps, as torch's database schedules SGD and Adam. Not for Momentum
# (nor Nesterov, which keeps α inside its velocity the same way):
# E2 keeps α inside the velocity (s ← ρ s − α g), so when α drops to 0 the velocity built with
# the old α coasts on for about 1/(1 − ρ) steps and overshoots the minimum of this test's
# quadratic (torch's SGD scales the whole velocity by the new α and stops); README, "How the
# notes' rules map to other libraries".
TO_ZERO = ([lambda opt: torch.optim.lr_scheduler.PolynomialLR(opt, power=0.9, total_iters=4)],)


def inputs(*configs):
    """``optim_inputs_func``: one OptimizerInput per (kwargs, desc); ``params`` is left to the
    test, as in torch's database. The kwargs are fresh copies at each call: a scheduler writes
    a tensor α in place."""

    def optim_inputs_func(device=None, dtype=None):
        return [
            OptimizerInput(params=None, kwargs=copy.deepcopy(kw), desc=desc) for kw, desc in configs
        ]

    return optim_inputs_func


def compiled(optim_inputs_func):
    """The same inputs with ``compile=True``."""

    def optim_inputs_func_compiled(device=None, dtype=None):
        found = optim_inputs_func(device, dtype)
        for optim_input in found:
            optim_input.kwargs["compile"] = True
            optim_input.desc += ", compile"
        return found

    return optim_inputs_func_compiled


def errors(cls, needs_lr, *, compile=False):
    """``optim_error_inputs_func``: what each constructor and step must refuse, and how. The
    unknown keyword is one of torch's that ``cls`` does not take (weight_decay, but AdamW's
    own decay is called that too: maximize for it)."""
    newton = cls is Newton
    unknown = "weight_decay" if "weight_decay" not in cls.rule.hyper else "maximize"
    lr = {"lr": 0.1} if needs_lr else {}
    if compile:
        lr["compile"] = True

    def optim_error_inputs_func(device, dtype):
        p = torch.nn.Parameter(torch.randn(1, 1, device=device, dtype=dtype))
        q = torch.nn.Parameter(torch.randn(1, 1, device=device, dtype=dtype))
        sparse = torch.nn.Parameter(torch.zeros(2, device=device, dtype=dtype))
        sparse.grad = torch.zeros(2, device=device, dtype=dtype).to_sparse()
        cases = [
            (p, {}, TypeError, "should be an iterable of Tensors or dicts"),
            ([p, p], {}, ValueError, "each parameter once, got the parameter at position 1"),
            (
                [{"params": p}, {"params": p}],
                {},
                ValueError,
                "must be a single group" if newton else "more than one parameter group",
            ),
            ([("weight", p), q], {}, ValueError, "all optimizer params should be with/without"),
            ([p], {"lr": -1.0}, ValueError, r"lr must be a finite number >= 0, got -1.0"),
            ([p], {unknown: 0.1}, TypeError, f"unexpected keyword argument '{unknown}'"),
            ([{"params": [p], unknown: 0.1}], {}, ValueError, f"got '{unknown}'"),
        ]
        if compile:
            cases.append(([p], {"lr": torch.ones(2)}, ValueError, "one-element tensor"))
        found = [
            ErrorOptimizerInput(
                OptimizerInput(params=params, kwargs={**lr, **kw}, desc=regex),
                error_type=error,
                error_regex=regex,
            )
            for params, kw, error, regex in cases
        ]
        if newton:  # Newton differentiates the closure's loss itself: it never reads .grad
            return found
        found.append(
            ErrorOptimizerInput(
                OptimizerInput(params=[sparse], kwargs=lr, desc="sparse gradient"),
                error_on=OptimizerErrorEnum.STEP_ERROR,
                error_type=ValueError,
                error_regex="dense",
            )
        )
        return found

    return optim_error_inputs_func


def skip(test_name, reason):
    return DecorateInfo(unittest.skip(reason), "TestOptimRenewed", test_name)


NO_STATE = skip("test_non_empty_state", "E1 keeps no state: gradient descent has none")
NEWTON_CLOSURE = (
    "Newton's closure returns the loss without calling backward() (it differentiates the loss "
    "twice itself); the generic closures call backward() or return a constant"
)
NEWTON_SKIPS = [
    skip(name, NEWTON_CLOSURE)
    for name in (
        "test_forloop_goes_right_direction",
        "test_param_group_with_lrscheduler_goes_right_direction",
        "test_tensor_lr",
        "test_param_groups_lr",
        "test_step_is_noop_when_params_have_no_grad",
        "test_step_is_noop_for_zero_grads",
        "test_state_dict_deterministic",
        "test_can_load_older_state_dict",
        "test_can_load_from_to_named_state_dict",
        "test_save_load_equality_with_weights_only",
        "test_load_nontensor_step",
        "test_step_post_hook",
        "test_step_pre_hook",
        "test_step_all_hooks",
        "test_deepcopy_copies_all_public_attrs",
        "test_non_empty_state",
    )
] + [
    skip(
        "test_second_order_optims_return_consistent_types",
        "written for LBFGS: it sets LBFGS's tolerance_grad, which Newton does not have",
    )
]


def info(cls, configs, *, needs_lr=True, compile=False, **kw):
    schedulers = SCHEDULERS if cls in (Momentum, Nesterov) else SCHEDULERS + TO_ZERO
    optim_inputs_func = inputs(*configs)
    return OptimizerInfo(
        cls,
        optim_inputs_func=compiled(optim_inputs_func) if compile else optim_inputs_func,
        optim_error_inputs_func=errors(cls, needs_lr, compile=compile),
        scheduler_inputs=schedulers,
        supported_impls=(),
        not_og_supported_flags=(),
        supports_sparse=False,
        # complex parameters are real pairs; the flat buffers and Newton's H hold reals only
        supports_complex=not compile and cls is not Newton,
        **kw,
    )


GD_INPUTS = [({"lr": 0.01}, "lr"), ({"lr": torch.tensor(0.01)}, "tensor lr")]
MOMENTUM_INPUTS = [
    ({"lr": 0.01}, "default rho"),
    ({"lr": 0.01, "rho": 0.5}, "rho"),
    ({"lr": torch.tensor(0.01), "rho": 0.0}, "tensor lr, rho = 0: gradient descent"),
]
NESTEROV_INPUTS = [
    ({"lr": 0.01}, "default rho"),
    ({"lr": 0.01, "rho": 0.5}, "rho"),
    ({"lr": torch.tensor(0.01), "rho": 0.0}, "tensor lr, rho = 0: gradient descent"),
]
ADAGRAD_INPUTS = [({"lr": 0.1}, "default eps"), ({"lr": 0.1, "eps": 1e-3}, "eps")]
RMSPROP_INPUTS = [
    ({"lr": 0.01}, "defaults"),
    ({"lr": 0.01, "rho": 0.5, "eps": 1e-4}, "rho, eps"),
    ({"lr": torch.tensor(0.01), "rho": 0.0}, "tensor lr, rho = 0"),
]
ADAM_INPUTS = [
    ({}, "defaults"),
    ({"lr": 0.01, "rho1": 0.5, "rho2": 0.9, "eps": 1e-6}, "rho1, rho2, eps"),
    ({"lr": torch.tensor(0.001), "rho1": 0.0}, "tensor lr, rho1 = 0"),
    ({"lr": 0.001, "bias_correction": False}, "no bias correction"),
]
ADAMW_INPUTS = [
    ({}, "defaults"),
    ({"lr": 0.01, "rho1": 0.5, "rho2": 0.9, "eps": 1e-6, "weight_decay": 0.1}, "all numbers"),
    ({"lr": torch.tensor(0.001), "weight_decay": 0.0}, "tensor lr, no decay: Adam"),
    ({"lr": 0.001, "bias_correction": False}, "no bias correction"),
]

PLAIN = [
    info(GD, GD_INPUTS, decorators=[NO_STATE]),
    info(Momentum, MOMENTUM_INPUTS),
    info(Nesterov, NESTEROV_INPUTS),
    info(AdaGrad, ADAGRAD_INPUTS),
    info(RMSProp, RMSPROP_INPUTS),
    info(Adam, ADAM_INPUTS, needs_lr=False),
    info(AdamW, ADAMW_INPUTS, needs_lr=False),
    info(
        Newton,
        [({}, "defaults"), ({"lr": 0.5, "damping": 1.0}, "damped")],
        needs_lr=False,
        supports_param_groups=False,
        step_requires_closure=True,
        decorators=NEWTON_SKIPS,
    ),
]
COMPILED = [
    info(GD, GD_INPUTS, compile=True, decorators=[NO_STATE]),
    info(Momentum, MOMENTUM_INPUTS, compile=True),
    info(Nesterov, NESTEROV_INPUTS, compile=True),
    info(AdaGrad, ADAGRAD_INPUTS, compile=True),
    info(RMSProp, RMSPROP_INPUTS, compile=True),
    info(Adam, ADAM_INPUTS, needs_lr=False, compile=True),
    info(AdamW, ADAMW_INPUTS, needs_lr=False, compile=True),
]
OPTIM_DB = PLAIN + COMPILED
"""Every entry: the plain path of every optimizer, and compile=True of those that have it
(Newton builds H and solves; it has no flat-buffer path)."""


def is_compiled(optim_info) -> bool:
    return optim_info in COMPILED


def name(optim_info) -> str:
    return optim_info.name + ("-compile" if is_compiled(optim_info) else "")


def skip_reason(optim_info, test_name):
    """The reason this entry gives for skipping ``test_name``, or None: it applies."""
    for decorator in optim_info.decorators:
        if decorator.is_active("TestOptimRenewed", test_name, "cpu", torch.float32, {}):
            (skipper,) = decorator.decorators
            return skipper(lambda: None).__unittest_skip_why__
    return None


# --- what the ported tests share ----------------------------------------------------------------

every = pytest.mark.parametrize("optim_info", OPTIM_DB, ids=name)


@pytest.fixture(scope="module", autouse=True)
def compile_small_tensors():
    """compile=True entries run the compiled rule even on these small tensors (by default
    those run the plain rule); each rule compiles once per process for the whole module. One
    thread: on tensors this small, waking a second one costs more than the step (10x here).
    Autouse in each test module that imports it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(step.CompiledRule, "min_numel", 0)
        yield
    torch.set_num_threads(threads)


def applies(optim_info, test_name):
    reason = skip_reason(optim_info, test_name)
    if reason:
        pytest.skip(reason)


def all_inputs(optim_info):
    """torch's ``_get_optim_inputs_including_global_cliquey_kwargs``: with no foreach, fused
    or differentiable flag (``supported_impls=()``), the entry's own inputs."""
    assert optim_info.supported_impls == ()
    return optim_info.optim_inputs_func(device="cpu")


def fwd_bwd(optimizer, weight, bias, x):
    optimizer.zero_grad()
    loss = (weight.mv(x) + bias).pow(2).sum()
    loss.backward()
    return loss
