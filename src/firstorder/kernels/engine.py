"""Kernels for the batched engine: many steps of a few values, compiled without dynamo.

The engine's steps are the opposite case of an optimizer step over a network's weights: a few
hundred values, hundreds of steps, each step's cost the fixed overhead of its small operations.
:func:`engine_rule` gives each rule of :mod:`firstorder.rules` compiled by
:func:`~firstorder.kernels.trace.traced`, once per process, in the background if asked
(:class:`~firstorder.kernels.trace.Deferred`); :func:`engine_steps` the kernel of a whole
run's steps, each trajectory's in a C++ loop of its own (:mod:`~firstorder.kernels.lanes`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor

from firstorder.kernels.lanes import LaneKernel, NotScalar
from firstorder.kernels.trace import Deferred, traced
from firstorder.rules import Rule


def engine_hyper(rule: Rule) -> list[str]:
    """The hyperparameters an engine kernel of ``rule`` takes as tensors, in the rule's order
    (switches such as ``bias_correction`` are compiled into the kernel)."""
    return rule.numbers


def _build_engine_rule(rule: Rule, dtype: torch.dtype, switches: tuple) -> Callable:
    names = engine_hyper(rule)
    n_state = len(rule.state)
    fixed = dict(switches)

    def update(theta, g, *rest):  # no annotations: traced, they would be globals of the graph
        state, rest = dict(zip(rule.state, rest[:n_state])), rest[n_state:]
        k = rest[0] if rule.counts_steps else None
        hyper = dict(zip(names, rest[rule.counts_steps :]))
        rule.apply(theta, g, state, {**hyper, **fixed}, k=k)
        return ()

    C, B, d = 5, 4, 3  # unlike each other, 0 and 1; the hyperparameters' C is the block's C
    block = [torch.ones(C, B, d, dtype=dtype) for _ in range(2 + n_state)]
    k = [torch.ones(1, 1, 1, dtype=dtype)] if rule.counts_steps else []
    hyper = [torch.full((C, 1, 1), 0.5, dtype=dtype) for _ in names]  # in every domain
    kernel = traced(update, *block, *k, *hyper)

    def call(theta: Tensor, g: Tensor, *state: Tensor, **hyper: Tensor) -> None:
        steps = [hyper["k"]] if rule.counts_steps else []
        kernel(theta, g, *state, *steps, *(hyper[n] for n in names))

    return call


_ENGINE: dict[tuple[str, torch.dtype, bool], Deferred] = {}


def engine_rule(
    rule: Rule, dtype: torch.dtype, switches: dict[str, bool] | None = None
) -> Deferred:
    """The kernel of ``rule`` for the batched engine, one per rule, dtype and switch values in
    the process.

    It is called as ``kernel(theta, g, *state, k=…, **hyper)`` on a block θ, g, state of shape
    [C, B, d] (the state in the order of ``rule.state``), but every numeric hyperparameter must
    be a [C, 1, 1] tensor and the step counter k a [1, 1, 1] tensor, so that one kernel serves
    every value; the switches (``bias_correction``) are fixed by the kernel, their defaults
    where ``switches`` does not say.
    """
    fixed = tuple((n, bool((switches or {}).get(n, rule.hyper[n]))) for n in rule.switches)
    key = (rule.name, dtype, fixed)
    if key not in _ENGINE:  # setdefault: two threads asking at once get the same one
        build = functools.partial(_build_engine_rule, rule, dtype, fixed)
        _ENGINE.setdefault(key, Deferred(build, f"the {rule.name} rule"))
    return _ENGINE[key]


def _build_engine_steps(f: Callable, rule: Rule, dtype: torch.dtype, switches: tuple) -> Callable:
    """Many steps of ``rule`` on ``f`` as one C++ loop per trajectory (:mod:`.lanes`)."""
    if dtype != torch.float64:
        raise NotScalar(f"the lanes kernel computes in float64, not {dtype}")
    return LaneKernel(f, rule, dict(switches), f.dim)


_STEPS: dict[tuple, Deferred] = {}


def engine_steps(
    f: Callable, key: object, rule: Rule, dtype: torch.dtype, switches: dict | None = None
) -> Deferred:
    """The kernel of many steps of ``rule`` on landscape ``f`` (``key`` names it), a
    :class:`~firstorder.kernels.lanes.LaneKernel`, one per landscape, rule, dtype and switch
    values in the process (float64 only: another dtype fails to build, and the engine steps
    one by one)."""
    fixed = tuple((n, bool((switches or {}).get(n, rule.hyper[n]))) for n in rule.switches)
    whole = (key, rule.name, dtype, fixed)
    if whole not in _STEPS:  # setdefault: two threads asking at once get the same one
        build = functools.partial(_build_engine_steps, f, rule, dtype, fixed)
        _STEPS.setdefault(whole, Deferred(build, f"the steps of the {rule.name} rule"))
    return _STEPS[whole]
