"""The optimizers' compiled step: a rule compiled with :func:`~.hoist.hoist_scalars`,
called on the flat buffers of :mod:`firstorder.flat`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from firstorder.kernels.hoist import _scalar, hoist_scalars
from firstorder.kernels.trace import warn_not_compiled


class CompiledRule:
    """A rule of :mod:`firstorder.rules` compiled with :func:`hoist_scalars`, called like the rule.

    Number hyperparameters and the step counter k become 0-d float64 tensors on θ's device,
    so that new values (a scheduler's α, the next k) reuse the compiled kernel; sizes are
    dynamic, so one kernel serves every length. If compiling fails, one ``RuntimeWarning``
    says why and the plain rule runs from then on.
    """

    def __init__(self, update: Callable[..., None]) -> None:
        self.update = update
        self.compiled: Callable[..., None] | None = None
        try:
            self.compiled = torch.compile(
                update, backend=hoist_scalars, dynamic=True, fullgraph=True
            )
        except Exception as err:  # torch.compile itself unsupported here (a new Python)
            self._give_up(err)

    def _give_up(self, err: Exception) -> None:
        warn_not_compiled(f"the {self.update.__name__} rule", err, "running the plain rule")
        self.compiled = None

    # A call of the compiled rule costs about 0.25 ms before its loop starts (dynamo's guards
    # and wrappers, the prelude); the eager rule's passes over memory cost more only above
    # about this many values (benchmarks/step_speed.py, 2 CPU threads), so a smaller θ runs
    # the plain rule.
    min_numel: int = 1 << 18

    def __call__(self, theta: Tensor, *tensors: Tensor, **hyper: Any) -> None:
        if self.compiled is not None and theta.numel() >= self.min_numel:
            # The views come in as detached aliases: the same memory without ``_base``, so dynamo
            # guards nothing on the flat buffer a stretch is cut from (one kernel for every
            # stretch); state buffers arrive among the keywords.
            theta, *tensors = (t.detach() for t in (theta, *tensors))
            as_tensors = {
                name: _scalar(float(v), theta.device)
                if isinstance(v, int | float) and not isinstance(v, bool)
                else v.detach()
                if isinstance(v, Tensor)
                else v
                for name, v in hyper.items()
            }
            try:
                self.compiled(theta, *tensors, **as_tensors)
                return
            except Exception as err:  # no C++ compiler, an unsupported platform or dtype
                self._give_up(err)
        self.update(theta, *tensors, **hyper)


_COMPILED: dict[Callable[..., None], CompiledRule] = {}


def compiled(update: Callable[..., None]) -> CompiledRule:
    """The compiled form of rule ``update``, one per rule and process (compiled on first use)."""
    if update not in _COMPILED:
        _COMPILED[update] = CompiledRule(update)
    return _COMPILED[update]
