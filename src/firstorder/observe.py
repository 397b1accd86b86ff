"""What the batched engine sees at each step: f(x), ∇f(x), ‖∇f(x)‖ and who must stop.

A trajectory must stop when it has left the finite numbers (f or ∇f not finite) or the
landscape's ``bound``. Eagerly, autograd computes ∇f. On the small batches of the playground
(a few starts, hundreds of steps) that costs more than everything else in a step: twenty tiny
operations and a backward pass, each a few microseconds of overhead. ``Observer(f,
compile=True)`` compiles the whole observation, forward and backward, into one kernel with
``torch.compile`` (``torch.func.grad`` for the gradient, dynamic sizes so that one compilation
serves every batch). Compiling takes seconds per landscape; until it is done, or where it
fails, the eager observation serves.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable

import torch
from torch import Tensor

from firstorder.kernel import warn_not_compiled

Observation = tuple[Tensor, Tensor, Tensor, Tensor]  # f, ∇f, ‖∇f‖, out


def value_and_grad(f: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """f(x) and ∇f(x) for a batch of points x [..., d] (each point's f depends on it alone)."""
    with torch.enable_grad():
        xr = x.detach().requires_grad_()
        fx = f(xr)
        (g,) = torch.autograd.grad(fx.sum(), xr)
    return fx.detach(), g


def stops(x: Tensor, fx: Tensor, g: Tensor, bound: float | None) -> Tensor:
    """Where a trajectory must stop: f or ∇f not finite (a non-finite x gives both), or x past
    ``bound`` in some coordinate."""
    out = ~(torch.isfinite(fx) & torch.isfinite(g).all(-1))
    if bound is not None:
        out |= (x.abs() > bound).any(-1)
    return out


def observe(f: Callable[[Tensor], Tensor], x: Tensor, bound: float | None) -> Observation:
    """f(x), ∇f(x), ‖∇f(x)‖ and :func:`stops` for points x [..., d], eagerly."""
    fx, g = value_and_grad(f, x)
    return fx, g, g.norm(dim=-1), stops(x, fx, g, bound)


def _observe_traceable(f: Callable[[Tensor], Tensor], x: Tensor, bound: float | None):
    """:func:`observe` in the form torch.compile traces: torch.func.grad, not autograd.grad."""

    def total(x: Tensor) -> tuple[Tensor, Tensor]:
        fx = f(x)
        return fx.sum(), fx

    g, fx = torch.func.grad(total, has_aux=True)(x)
    return fx, g, g.norm(dim=-1), stops(x, fx, g, bound)


def _own_copy(fn: types.FunctionType) -> types.FunctionType:
    """``fn`` with a code object of its own. Dynamo keeps its compiled versions per code object,
    at most 8 of them, and tries each one's guards in turn; a copy per landscape keeps one."""
    return types.FunctionType(
        fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__
    )


class Observer:
    """The observation of one landscape, eager or compiled (``compile=True``).

    The compiled form compiles at the first call, or earlier in a background thread with
    :meth:`warm_up` (the playground starts it when a landscape is first shown); until that
    thread is done, calls use the eager form. Compiled and eager observations agree to float64
    rounding (inductor may order a sum differently) on every landscape of the course
    (tests/test_observe.py).
    """

    def __init__(self, f: Callable[[Tensor], Tensor], *, compile: bool = False) -> None:
        self.f = f
        self._compiled: Callable[..., Observation] | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._started = False
        if compile:
            self._compiled = torch.compile(
                _own_copy(_observe_traceable), dynamic=True, fullgraph=True
            )

    def warm_up(self, dim: int, dtype: torch.dtype = torch.float64, *, wait: bool = False) -> None:
        """Compile for points of ``dim`` coordinates, in a background thread unless ``wait``."""
        with self._lock:
            if self._compiled is None or self._started:
                if wait:
                    self._ready.wait()
                return
            self._started = True

        def compile_now() -> None:
            try:
                # the landscape's own bound, the one runs use; dim + 1 points, since a batch
                # size equal to dim would be assumed to stay equal
                points = torch.zeros(dim + 1, dim, dtype=dtype)
                self._compiled(self.f, points, getattr(self.f, "bound", None))
            except Exception as err:  # no C++ compiler, an operation dynamo cannot trace
                name = getattr(self.f, "name", self.f)
                warn_not_compiled(f"the observation of {name}", err, "running it eagerly")
                self._compiled = None
            finally:
                self._ready.set()

        if wait:
            compile_now()
        else:
            threading.Thread(target=compile_now, name="firstorder-compile", daemon=True).start()

    @property
    def ready(self) -> bool:
        """Whether calls now use the compiled observation."""
        return self._compiled is not None and self._ready.is_set()

    def __call__(self, x: Tensor, bound: float | None) -> Observation:
        """f, ∇f, ‖∇f‖ and :func:`stops` for points x [..., d]."""
        if self._compiled is not None and not self._started:
            self.warm_up(x.shape[-1], x.dtype, wait=True)  # first use: compile now
        if self._compiled is not None and self._ready.is_set():
            compiled = self._compiled
            if compiled is not None:  # read once: a failed compilation may clear it
                points = x.reshape(-1, x.shape[-1])  # one symbolic size for every batch shape
                fx, g, norm, out = compiled(self.f, points, bound)
                batch = x.shape[:-1]
                return fx.view(batch), g.view(x.shape), norm.view(batch), out.view(batch)
        return observe(self.f, x, bound)
