"""Flat buffers: the parameters of a param group that share a dtype and device, their gradients
and a rule's state, each kept as one contiguous tensor.

A rule then updates all of them with one call, one pass over memory, however many tensors the
model has: the per-tensor overhead of a step (a kernel launch, a Python call) disappears. The
parameters keep their identity (a module still holds the same ``nn.Parameter``); their data
become views into the flat buffer, as DeepSpeed and Megatron-LM do for their optimizers. Each
view keeps its parameter's shape and strides, so a channels-last weight stays channels-last,
and the optimizer's state (``optimizer.state[p]``) holds views of the same layout, so
``state_dict()`` is unchanged.

Gradients come in two ways. A gradient that is already the parameter's view into the flat
gradient buffer is used as it is: after the first step this holds whenever gradients are
zeroed in place (``zero_grad(set_to_none=False)``) and backward accumulates into them. A new
gradient tensor (``zero_grad()`` sets gradients to None, so backward makes new ones) is first
copied in, 8 bytes per float32 parameter, and the parameter's ``.grad`` then becomes the view.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

_GRAD = operator.attrgetter("grad")


def _segment(flat: Tensor, offset: int, like: Tensor) -> Tensor:
    """The view of ``flat`` from ``offset`` on with the shape of ``like`` and the strides it would
    have from ``empty_like`` (its own where it is dense, contiguous otherwise)."""
    strides = torch.empty_like(like, device="meta").stride()
    return flat.as_strided(like.shape, strides, offset)


class FlatGroup:
    """Parameters of one dtype and device, with their gradients and the rule's ``buffers``
    (``s``, ``r``, …) as flat tensors. Building one copies the current values in: the
    parameters' data and every state tensor already in ``state``; missing state starts at 0."""

    def __init__(
        self, params: list[Tensor], state: dict[Tensor, dict[str, Any]], names: tuple[str, ...]
    ) -> None:
        self.params = params
        self.offsets = list(itertools.accumulate([p.numel() for p in params], initial=0))
        first = params[0]
        self.theta = torch.empty(self.offsets[-1], dtype=first.dtype, device=first.device)
        self.grad = torch.zeros_like(self.theta)
        self.buffers = {name: torch.zeros_like(self.theta) for name in names}
        self._grads = [_segment(self.grad, o, p) for o, p in zip(self.offsets, params)]
        with torch.no_grad():
            for o, p in zip(self.offsets, params):
                view = _segment(self.theta, o, p)
                view.copy_(p)
                p.data = view  # same Parameter object, its data now in the flat buffer
                for name, flat in self.buffers.items():
                    buffer = _segment(flat, o, p)
                    if state[p].get(name) is not None:
                        buffer.copy_(state[p][name])
                    state[p][name] = buffer
        self.states = [state[p] for p in params]  # each parameter's state, without hashing
        self._all = (True,) * len(params)
        self._theta_ptrs = [p.data_ptr() for p in params]

    def intact(self) -> bool:
        """False once a parameter's data were replaced (``module.to(...)``, ``p.data = …``)."""
        return list(map(Tensor.data_ptr, self.params)) == self._theta_ptrs  # map: no Python loop

    def gather_gradients(self) -> Sequence[bool]:
        """Bring each parameter's gradient into the flat gradient buffer; say which have one.

        The check is by identity (a gradient left in place is the view this method assigned),
        so the common case, every gradient in place, costs no Python loop over parameters."""
        grads = list(map(_GRAD, self.params))
        if all(map(operator.is_, grads, self._grads)):
            return self._all
        fresh = [
            i for i, (g, v) in enumerate(zip(grads, self._grads)) if g is not v and g is not None
        ]
        if fresh:
            for i in fresh:
                if grads[i].layout != torch.strided:
                    raise ValueError(
                        f"gradients must be dense, got a {grads[i].layout} gradient for a "
                        f"parameter of shape {tuple(self.params[i].shape)}."
                    )
            torch._foreach_copy_([self._grads[i] for i in fresh], [grads[i] for i in fresh])
            for i in fresh:
                self.params[i].grad = self._grads[i]
        return [g is not None for g in grads]

    def runs(
        self, has_grad: Sequence[bool], k: list[int] | None = None
    ) -> Iterator[tuple[int, int]]:
        """Stretches [i, j) of ``params`` to update with one call: consecutive parameters that
        have a gradient and, for a rule that counts steps, the same step counter k."""
        i, n = 0, len(self.params)
        if all(has_grad) and (k is None or k.count(k[0]) == n):
            yield 0, n  # the usual step: one stretch, found without a Python loop
            return
        while i < n:
            if not has_grad[i]:
                i += 1
                continue
            j = i + 1
            while j < n and has_grad[j] and (k is None or k[j] == k[i]):
                j += 1
            yield i, j
            i = j


def any_gradient(params: list[Tensor]) -> bool:
    """Whether any of ``params`` has a gradient (found without a Python loop)."""
    return list(map(_GRAD, params)).count(None) != len(params)


def flat_groups(
    params: list[Tensor], state: dict[Tensor, dict[str, Any]], names: tuple[str, ...]
) -> list[FlatGroup]:
    """One :class:`FlatGroup` for each (device, dtype) among ``params``, in order of appearance."""
    by_kind: dict[tuple, list[Tensor]] = {}
    for p in params:
        by_kind.setdefault((p.device, p.dtype), []).append(p)
    return [FlatGroup(ps, state, names) for ps in by_kind.values()]
