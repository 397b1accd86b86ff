"""Kernels for the batched engine: many steps of a few values, compiled without dynamo.

The engine's steps are the opposite case of an optimizer step over a network's weights: a few
hundred values, hundreds of steps, each step's cost the fixed overhead of its small operations.
:func:`engine_rule` gives each rule of :mod:`firstorder.rules` compiled by
:func:`~firstorder.kernels.trace.traced`, once per process, in the background if asked
(:class:`~firstorder.kernels.trace.Deferred`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor

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


# Steps per call of a chunk kernel: the host checks who is still running once per CHUNK steps
# instead of every step. Each step unrolled is more to compile (seconds); 8 cuts the fixed cost
# of a step, its Python calls and the host's stop test, by 8.
CHUNK = 8
# Only batches under this many numbers run in chunks: a chunk is one fused loop, which does
# about twice the work per number of the two kernels a step (its ∇f kept in buffers, see
# REALIZE), so the fixed cost it saves pays only on small batches. Adam on Rosenbrock, 1 thread,
# 200 steps, chunks against step by step: 220 numbers 4.9 / 7.6 ms, 880 6.7 / 8.4 ms, 2,200
# 10.8 / 10.6 ms, 4,400 18.6 / 13.6 ms.
CHUNK_BELOW = 2048


def _build_engine_steps(f: Callable, rule: Rule, dtype: torch.dtype, switches: tuple) -> Callable:
    """CHUNK steps of ``rule`` on ``f`` in one kernel: observe, mark who stops, step, freeze."""
    from firstorder.observe import observe_traceable  # observe imports this package

    names, n_state, fixed = engine_hyper(rule), len(rule.state), dict(switches)

    def steps(x_in, *rest):  # no annotations: traced, they would be globals of the graph
        x = x_in
        state = dict(zip(rule.state, rest[:n_state]))
        k0, *rest = rest[n_state:]
        hyper = {**dict(zip(names, rest[: len(names)])), **fixed}
        bound, f_star, tol_f, active, to_target, diverged = rest[len(names) :]
        for j in range(CHUNK):
            _, g, _, out, reached = observe_traceable(f, x, bound, f_star, tol_f)
            k = (k0 + j).view(1, 1).to(torch.long)
            stopped = active & out
            to_target = torch.where(stopped & reached, k, to_target)
            diverged = torch.where(stopped & ~reached, k, diverged)
            active = active & ~out
            x_next = x.clone()  # x itself written once, at the end: one pass, not one a step
            rule.apply(x_next, g, state, hyper, k=k0 + (j + 1))
            x = torch.where(active.unsqueeze(-1), x_next, x)  # the stopped stay put
        x_in.copy_(x)
        return active, to_target, diverged

    d = f.dim  # the landscape's dimension, fixed; C and B unlike each other, d, 0 and 1
    C, B = d + 2, d + 1
    example = [torch.ones(C, B, d, dtype=dtype) for _ in range(1 + n_state)]
    example += [torch.zeros(1, 1, 1, dtype=dtype)]
    example += [torch.full((C, 1, 1), 0.5, dtype=dtype) for _ in names]
    example += [torch.full((1, 1), v, dtype=dtype) for v in (float("inf"), 0.0, float("-inf"))]
    example += [torch.ones(C, B, dtype=torch.bool)]
    example += [torch.full((C, B), -1, dtype=torch.long) for _ in range(2)]
    # by default inductor inlines ∇f into every consumer and recomputes it per coordinate
    # written (10× slower per number); keeping each intermediate in its own buffer avoids that
    with torch._inductor.config.patch(REALIZE):
        return traced(steps, *example)


# inductor's thresholds for keeping an intermediate in a buffer rather than recomputing it
REALIZE = {
    "realize_reads_threshold": 1,
    "realize_cpu_opcount_threshold": 5,
    "realize_cpu_acc_reads_threshold": 2,
}


_STEPS: dict[tuple, Deferred] = {}


def engine_steps(
    f: Callable, key: object, rule: Rule, dtype: torch.dtype, switches: dict | None = None
) -> Deferred:
    """The kernel of CHUNK steps of ``rule`` on landscape ``f`` (``key`` names it), one per
    landscape, rule, dtype and switch values in the process.

    It is called as ``kernel(x, *state, k0, *hyper, bound, f_star, tol_f, active, to_target,
    diverged)`` on a block x [C, B, d] and its state, in place, for the steps k0 … k0 + CHUNK − 1
    (k0 a [1, 1, 1] tensor, hyperparameters [C, 1, 1], bound, f* and tol_f [1, 1] as for the
    compiled observation), and returns ``active``, ``to_target`` and ``diverged`` [C, B] after
    them, the step at which each trajectory reached the target or diverged (−1: not so)."""
    fixed = tuple((n, bool((switches or {}).get(n, rule.hyper[n]))) for n in rule.switches)
    whole = (key, rule.name, dtype, fixed)
    if whole not in _STEPS:  # setdefault: two threads asking at once get the same one
        build = functools.partial(_build_engine_steps, f, rule, dtype, fixed)
        _STEPS.setdefault(whole, Deferred(build, f"{CHUNK} steps of the {rule.name} rule"))
    return _STEPS[whole]
