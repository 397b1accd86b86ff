"""The optimizers' compiled step: a rule's :meth:`~firstorder.rules.Rule.apply` traced and
compiled (:func:`~.trace.trace`, :func:`~.hoist.hoisted`), called on the flat buffers of
:mod:`firstorder.flat`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from firstorder.kernels.hoist import _scalar, hoisted
from firstorder.kernels.trace import Deferred, trace
from firstorder.rules import Rule

Switches = tuple[tuple[str, bool], ...]


def step_function(rule: Rule, switches: Switches) -> Callable[..., tuple]:
    """``rule.apply`` as a function of tensors only, as :func:`~.trace.trace` takes it:
    θ, g, the state buffers in the rule's order, then k (rules that count steps) and the
    numeric hyperparameters as 0-d tensors. ``switches`` (bias_correction) are fixed in it."""
    numbers, n_state, fixed = rule.numbers, len(rule.state), dict(switches)

    def update(theta, g, *rest):  # no annotations: traced, they would be globals of the graph
        state, rest = dict(zip(rule.state, rest[:n_state])), rest[n_state:]
        k = rest[0] if rule.counts_steps else None
        hyper = dict(zip(numbers, rest[rule.counts_steps :]))
        rule.apply(theta, g, state, {**hyper, **fixed}, k=k)
        return ()

    return update


class CompiledRule:
    """A rule compiled for one dtype, device and setting of its switches, called like
    :meth:`~firstorder.rules.Rule.apply`.

    The numbers (hyperparameters and the step counter k) reach the kernel as 0-d float64
    tensors, so a scheduler's new α or the next k reuse it; sizes are symbolic, so one kernel
    serves every length. The kernel is built once (:class:`~.trace.Deferred`), now or in the
    background; until it is ready, or where it could not be built, the plain rule runs. A
    failing call of a built kernel raises: that is a bug to see, not a reason to stop compiling.
    """

    # compile=True stretches shorter than this run the plain rule. 0: compile=True compiles
    # every size, as asked (compile=None decides by a param group's size, optim.min_numel).
    min_numel: int = 0

    def __init__(self, rule: Rule, dtype: torch.dtype, device: torch.device, switches: Switches):
        self.rule, self.dtype, self.device, self.switches = rule, dtype, device, switches
        self.deferred = Deferred(self._build, f"the {rule.name} rule")

    def _build(self) -> Callable[..., None]:
        n = 11  # unlike 0 and 1 (see trace)
        tensors = [torch.rand(n, dtype=self.dtype, device=self.device) for _ in self.rule.state]
        first = [torch.rand(n, dtype=self.dtype, device=self.device) for _ in range(2)]
        count = int(self.rule.counts_steps) + len(self.rule.numbers)
        numbers = [  # distinct tensor objects: one object passed twice would become one input
            torch.tensor(0.5 + i / 64, dtype=torch.float64, device=self.device)
            for i in range(count)
        ]
        return hoisted(trace(step_function(self.rule, self.switches), *first, *tensors, *numbers))

    def __call__(
        self,
        theta: Tensor,
        g: Tensor,
        state: dict[str, Tensor],
        hyper: dict[str, Any],
        k: int | None = None,
        *,
        wait: bool = True,
    ) -> bool:
        """One step on θ (a stretch of a flat buffer); True if the kernel ran, False if the plain
        rule did (``wait=False`` and the kernel still building, or it could not be built)."""
        kernel = self.deferred.get(wait=wait) if theta.numel() >= self.min_numel else None
        if kernel is None:
            self.rule.apply(theta, g, state, hyper, k=k)
            return False
        numbers = [k] if self.rule.counts_steps else []
        numbers += [hyper[name] for name in self.rule.numbers]
        kernel(
            theta,
            g,
            *(state[name] for name in self.rule.state),
            *(_scalar(float(v), self.device) for v in numbers),
        )
        return True


_COMPILED: dict[tuple, CompiledRule] = {}


def compiled(
    rule: Rule, dtype: torch.dtype, device: torch.device, switches: Switches = ()
) -> CompiledRule:
    """The compiled form of ``rule`` for ``dtype``, ``device`` and ``switches``: one per process,
    built at its first call or when its ``deferred.warm_up()`` starts it."""
    key = (rule.name, dtype, torch.device(device), switches)
    if key not in _COMPILED:  # setdefault: two threads asking at once get the same one
        _COMPILED.setdefault(key, CompiledRule(rule, dtype, torch.device(device), switches))
    return _COMPILED[key]
