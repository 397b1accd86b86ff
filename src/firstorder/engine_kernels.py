"""Kernels for the batched engine: many steps of a few values, compiled without dynamo.

The engine's steps are the opposite case of an optimizer step over a network's weights: a few
hundred values, hundreds of steps, each step's cost the fixed overhead of its small operations.
There :func:`traced` compiles without dynamo (whose guards cost more per call than such a
kernel's work), and :func:`engine_rule` gives each rule of :mod:`firstorder.rules` in that
form, compiled once per process, in the background if asked (:class:`Deferred`). The landscape
observations of :mod:`firstorder.observe` are compiled the same way.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.fx.experimental.proxy_tensor import make_fx

from firstorder.kernel import warn_not_compiled
from firstorder.rules import Rule


def traced(fn: Callable[..., Any], *example: Tensor) -> Callable[..., Any]:
    """``fn`` compiled by inductor for tensors shaped like ``example``, every size symbolic.

    Why not ``torch.compile``: dynamo checks its guards at every call, about 150 µs on this
    project's machine against 15 µs for the kernel of a small batch, and a 500-step run of the
    engine makes 500 calls. ``make_fx`` traces ``fn`` once (sizes symbolic, so one kernel serves
    every batch) and inductor compiles the graph; a call then runs the kernel with nothing to
    check but sizes and strides (contiguous inputs). The example sizes must differ from each
    other and from 0 and 1, where they are not always equal: sizes equal when traced are assumed
    equal forever. ``fn`` may write into its inputs.
    """
    gm = make_fx(fn, tracing_mode="symbolic", _allow_non_fake_inputs=True)(*example)
    fake_inputs = [n.meta["val"] for n in gm.graph.nodes if n.op == "placeholder"]
    return torch._inductor.compile(gm, fake_inputs)


_building = threading.Lock()  # one compilation at a time: they would share inductor's state


class Deferred:
    """A kernel that ``build()`` compiles once: at the first :meth:`get`, or earlier in a
    background thread with :meth:`warm_up` (the playground starts them when a page opens).

    :meth:`get` returns None while a background build runs and where the build failed (one
    ``RuntimeWarning`` naming ``what``): the caller then runs the eager form.
    """

    def __init__(self, build: Callable[[], Callable[..., Any]], what: str) -> None:
        self.build, self.what = build, what
        self._kernel: Callable[..., Any] | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._started = False

    def warm_up(self, *, wait: bool = False) -> None:
        """Start building, in a background thread unless ``wait``; once only."""
        with self._lock:
            first, self._started = not self._started, True
        if first and wait:
            self._build()
        elif first:
            threading.Thread(target=self._build, name="firstorder-compile", daemon=True).start()
        elif wait:
            self._done.wait()

    def _build(self) -> None:
        try:
            with _building:
                self._kernel = self.build()
        except Exception as err:  # no C++ compiler, an operation that cannot be traced
            warn_not_compiled(self.what, err, "running it eagerly")
        finally:
            self._done.set()

    @property
    def ready(self) -> bool:
        """Whether :meth:`get` returns the kernel now."""
        return self._kernel is not None and self._done.is_set()

    def get(self) -> Callable[..., Any] | None:
        """The kernel, built now if nobody started it; None while it builds in the background
        or if it could not be built."""
        if not self._started:
            self.warm_up(wait=True)
        return self._kernel if self._done.is_set() else None


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
