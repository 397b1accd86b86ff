"""What the batched engine sees at each step: f(x), ∇f(x), ‖∇f(x)‖ and who must stop.

A trajectory must stop when it has left the finite numbers (f or ∇f not finite) or the
landscape's ``bound`` (it diverged), or when it reached the target f − f* < tol_f. Eagerly,
autograd computes ∇f. On the small batches of the playground (a few starts, hundreds of steps)
that costs more than everything else in a step: twenty tiny operations and a backward pass,
each a few microseconds of overhead. ``Observer(f, compile=True)`` compiles the whole
observation, forward and backward, into one kernel with inductor (``torch.func.grad`` for the
gradient, traced once with symbolic sizes so that one compilation serves every batch).
Compiling takes seconds per landscape; until it is done, or where it fails, the eager
observation serves.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
from torch import Tensor

from firstorder.kernels.trace import Deferred, traced

# f, ∇f, ‖∇f‖, out (must stop: diverged or reached), reached (f − f* < tol_f)
Observation = tuple[Tensor, Tensor, Tensor, Tensor, Tensor]


def value_and_grad(f: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """f(x) and ∇f(x) for a batch of points x [..., d] (each point's f depends on it alone)."""
    with torch.enable_grad():
        xr = x.detach().requires_grad_()
        fx = f(xr)
        (g,) = torch.autograd.grad(fx.sum(), xr)
    return fx.detach(), g


def stops(x: Tensor, fx: Tensor, g: Tensor, bound: float | Tensor | None) -> Tensor:
    """Where a trajectory must stop: f or ∇f not finite (a non-finite x gives both), or x past
    ``bound`` in some coordinate."""
    out = ~(torch.isfinite(fx) & torch.isfinite(g).all(-1))
    if bound is not None:
        out |= (x.abs() > bound).any(-1)
    return out


def observe(
    f: Callable[[Tensor], Tensor],
    x: Tensor,
    bound: float | None,
    f_star: float | None = None,
    tol_f: float | None = None,
) -> Observation:
    """The :data:`Observation` of points x [..., d], eagerly: f(x), ∇f(x), ‖∇f(x)‖, where a
    trajectory must stop (:func:`stops`, or the target reached) and where it reached the target
    f(x) − f* < tol_f (nowhere without one)."""
    fx, g = value_and_grad(f, x)
    out = stops(x, fx, g, bound)
    if f_star is None or tol_f is None:
        return fx, g, g.norm(dim=-1), out, torch.zeros_like(out)
    reached = fx - f_star < tol_f
    return fx, g, g.norm(dim=-1), out | reached, reached


def observe_traceable(
    f: Callable[[Tensor], Tensor], x: Tensor, bound: Tensor, f_star: Tensor, tol_f: Tensor
) -> Observation:
    """:func:`observe` in the form a tracer follows: torch.func.grad, not autograd.grad, and
    every number a tensor."""

    def total(x: Tensor) -> tuple[Tensor, Tensor]:
        fx = f(x)
        return fx.sum(), fx

    g, fx = torch.func.grad(total, has_aux=True)(x)
    reached = fx - f_star < tol_f
    return fx, g, g.norm(dim=-1), stops(x, fx, g, bound) | reached, reached


def _kernel(f: Callable[[Tensor], Tensor], dim: int, dtype: torch.dtype) -> Callable:
    """:func:`observe_traceable` of ``f`` as one kernel (:func:`~.kernels.trace.traced`) for
    points [C, B, dim] (the engine's trajectory tensor, C and B any sizes) and ``bound``,
    ``f_star`` and ``tol_f`` as [1, 1] tensors (+inf, 0 and −inf for none), so that one kernel
    serves every batch, bound and target. (With f* and tol_f as 0-d tensors, the tracer of
    torch 2.13 gives up: TensorifyScalarRestartAnalysis.)"""

    def observation(x, bound, f_star, tol_f):  # no annotations: traced, they would be globals
        return observe_traceable(f, x, bound, f_star, tol_f)

    example = torch.zeros(dim + 2, dim + 1, dim, dtype=dtype)  # sizes unlike each other, 0, 1
    numbers = [torch.full((1, 1), v, dtype=dtype) for v in (math.inf, 0.0, -math.inf)]
    return traced(observation, example, *numbers)


class Observer:
    """The observation of one landscape, eager or compiled (``compile=True``).

    The compiled form compiles at the first call, or earlier in a background thread with
    :meth:`warm_up` (the playground starts it when a landscape is first shown); until that
    thread is done, calls use the eager form. It is compiled for each dimension and dtype of
    points it meets, on the CPU; other points are observed eagerly. Compiled and eager
    observations agree to float64 rounding (inductor may order a sum differently) on every
    landscape of the course (tests/test_observe.py).
    """

    def __init__(self, f: Callable[[Tensor], Tensor], *, compile: bool = False) -> None:
        self.f = f
        self.compile = compile
        self._kernels: dict[tuple[int, torch.dtype], Deferred] = {}
        self._numbers: dict[tuple[float, torch.dtype], Tensor] = {}

    def _deferred(self, dim: int, dtype: torch.dtype) -> Deferred:
        key = (dim, dtype)
        if key not in self._kernels:  # setdefault: two threads asking at once get the same one
            name = getattr(self.f, "name", self.f)
            build = functools.partial(_kernel, self.f, dim, dtype)
            self._kernels.setdefault(key, Deferred(build, f"the observation of {name}"))
        return self._kernels[key]

    def warm_up(self, dim: int, dtype: torch.dtype = torch.float64, *, wait: bool = False) -> None:
        """Compile for points of ``dim`` coordinates, in a background thread unless ``wait``."""
        if self.compile:
            self._deferred(dim, dtype).warm_up(wait=wait)

    def ready(self, dim: int, dtype: torch.dtype = torch.float64) -> bool:
        """Whether calls on points of ``dim`` coordinates now use the compiled observation."""
        return self.compile and self._deferred(dim, dtype).ready

    def __call__(
        self,
        x: Tensor,
        bound: float | None,
        f_star: float | None = None,
        tol_f: float | None = None,
    ) -> Observation:
        """As :func:`observe`, for points x [..., d]."""
        kernel = None
        if self.compile and x.device.type == "cpu":
            kernel = self._deferred(x.shape[-1], x.dtype).get()  # compiles now on first use
        if kernel is None:
            return observe(self.f, x, bound, f_star, tol_f)
        if f_star is None or tol_f is None:
            f_star, tol_f = 0.0, -math.inf  # no f − f* is below −inf: nothing reaches it
        points = x if x.dim() == 3 else x.reshape(1, -1, x.shape[-1])  # the kernel's [C, B, d]
        numbers = (math.inf if bound is None else bound, f_star, tol_f)
        result = kernel(points.contiguous(), *(self._number(v, x.dtype) for v in numbers))
        if points is not x:
            return tuple(v.view(*x.shape[:-1], *v.shape[2:]) for v in result)
        return tuple(result)

    def _number(self, value: float, dtype: torch.dtype) -> Tensor:
        """``value`` as one of the kernel's [1, 1] inputs, made once."""
        key = (value, dtype)
        if key not in self._numbers:
            self._numbers[key] = torch.full((1, 1), value, dtype=dtype)
        return self._numbers[key]


_COMPILED: dict[object, Observer] = {}


def landscape_key(f: Callable[[Tensor], Tensor]) -> object:
    """What names landscape ``f`` among compiled kernels: its name and parameters (the same
    landscape made twice is one), or ``f`` itself where it has no name."""
    name = getattr(f, "name", None)
    return (name, repr(sorted(getattr(f, "params", {}).items()))) if name else f


def compiled_observer(f: Callable[[Tensor], Tensor]) -> Observer:
    """The compiled :class:`Observer` of landscape ``f``, one per landscape (its name and
    parameters) in the process, so that each compiles once."""
    key = landscape_key(f)
    if key not in _COMPILED:  # setdefault: two threads asking at once get the same one
        _COMPILED.setdefault(key, Observer(f, compile=True))
    return _COMPILED[key]
