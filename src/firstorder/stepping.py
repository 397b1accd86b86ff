"""The batched engine's loop: observe, mark who stops, record, step every rule's block, freeze.

:func:`firstorder.run.run_many` sets up the trajectory tensor x [C, B, d] and one
:class:`Block` per rule; :func:`loop` then runs the steps. At each recorded point k (the start
included) the observation gives f, ∇f and who must stop (:class:`Stops` marks when and why),
the :class:`Record` keeps what was asked for, and every rule updates its slice of x in place;
a stopped trajectory is put back where it stopped, so it stays frozen while the others go on.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor

from firstorder import curvature, rules
from firstorder.kernels import engine as engine_kernels
from firstorder.observe import Observer

# Below this many numbers in x [C, B, d], the engine's torch operations run on one thread. An
# operation on a few hundred values opens a multi-threaded region whose start costs more than
# the work (torch.sqrt on a hundred values: 15–21 ms a call on a busy 2-core machine, issue 23).
# Measured once (Adam on Rosenbrock, eager, 50 steps, the 2-core VM loaded by other jobs), ms a
# step with 1 / 2 threads: 256 numbers 0.56 / 9.8, 4,096 1.3 / 4.0, 65,536 7.2 / 89, 262,144
# 11 / 69: one thread won at every size there; 2¹⁶ keeps the threads for the large sweeps,
# where an idle machine gains from them.
SINGLE_THREAD_BELOW = 65_536


@contextmanager
def threads_for(numbers: int) -> Iterator[None]:
    """Run the body on one torch thread if ``numbers`` < :data:`SINGLE_THREAD_BELOW`, and put
    the thread count back after, whatever happens. Only on the main thread: the count is the
    process's, and another thread (a server's) must not change it under the main one."""
    before = torch.get_num_threads()
    if numbers >= SINGLE_THREAD_BELOW or before == 1:
        yield
        return
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class Block:
    """One rule's slice x[c0:c1] of the shared trajectory tensor, with its state."""

    rule: rules.Rule
    values: dict[str, list]
    c0: int
    c1: int
    hyper: dict[str, object]
    state: dict[str, Tensor]
    history: list[Tensor] = field(default_factory=list)  # α/(√r̂ + ε) after each step
    compiled: engine_kernels.Deferred | None = None  # the rule's kernel, with compile=True
    tensors: dict[str, Tensor] = field(default_factory=dict)  # hyper as [C, 1, 1], for it


@dataclass
class Targets:
    """What stops a trajectory: ``bound`` (leaving it: a divergence, or an escape where the
    surface ``escapes`` downwards), f − f* < tol_f, and ‖x − x*‖ < tol_x for the nearest of the
    global minima ``x_star`` [M, d] (None where not asked or not known)."""

    bound: float | None
    escapes: bool
    f_star: float | None = None
    tol_f: float | None = None
    x_star: Tensor | None = None
    tol_x: float | None = None

    def observe(self, observer: Observer, x: Tensor) -> tuple[Tensor, ...]:
        """f, ∇f, ‖∇f‖, out (must stop) and reached (the target) at x [C, B, d]."""
        check_f = self.tol_f is not None and self.f_star is not None
        target = (self.f_star, self.tol_f) if check_f else ()
        fx, g, g_norm, out, reached = observer(x, self.bound, *target)
        if self.tol_x is not None and self.x_star is not None:
            near = near_minimum(x, self.x_star, self.tol_x)
            reached, out = reached | near, out | near
        return fx, g, g_norm, out, reached


def near_minimum(x: Tensor, x_star: Tensor, tol_x: float | Tensor) -> Tensor:
    """Where ‖x − x*‖ < tol_x for the nearest x* of ``x_star`` [M, d], for x [C, B, d]."""
    C = x.shape[0]
    return torch.cdist(x, x_star.expand(C, *x_star.shape)).min(-1).values < tol_x


class Stops:
    """When each trajectory stopped, and why: ``steps_to_target``, ``diverged_at`` and
    ``escaped_at`` [C, B] hold the step k (−1: not that way); ``active`` who still runs."""

    def __init__(self, C: int, B: int, escapes: bool) -> None:
        self.steps_to_target = torch.full((C, B), -1, dtype=torch.long)
        self.diverged_at = torch.full((C, B), -1, dtype=torch.long)
        self.escaped_at = torch.full((C, B), -1, dtype=torch.long)
        self.active = torch.ones(C, B, dtype=torch.bool)
        self.all_active = True  # nothing stopped yet: no masking needed (the common case)
        self.escapes = escapes

    def mark(self, k: int, fx: Tensor, g: Tensor, out: Tensor, reached: Tensor) -> None:
        """Stop, at step k, the active trajectories that are ``out``: at the target where they
        ``reached`` it, else diverged (or escaped: finite, past the bound of a surface
        unbounded below)."""
        stopped = out if self.all_active else self.active & out
        if not stopped.any():
            return
        gone = stopped & ~reached
        if self.escapes:
            escaped = gone & torch.isfinite(fx) & torch.isfinite(g).all(-1)
            self.escaped_at[escaped] = k
            gone &= ~escaped
        self.diverged_at[gone] = k
        self.steps_to_target[stopped & reached] = k
        self.active &= ~out
        self.all_active = False

    @property
    def done(self) -> bool:
        """Whether every trajectory has stopped."""
        return not self.all_active and not self.active.any()


class Record:
    """What a run keeps of each step: ``"full"`` (x, and the effective steps of adaptive rules),
    ``"curves"`` (f, ‖∇f‖ and step length) or ``"final"`` (nothing)."""

    def __init__(self, record: str) -> None:
        self.keep_x, self.keep_curves = record == "full", record in ("full", "curves")
        self.fs: list[Tensor] = []
        self.gnorms: list[Tensor] = []
        self.lengths: list[Tensor] = []
        self.xs: list[Tensor] = []
        self.last_f: Tensor | None = None  # f at the last point observed: the run's final f

    def point(self, x: Tensor, fx: Tensor, g_norm: Tensor) -> None:
        """Keep the recorded point k: f and ‖∇f‖, and x itself with ``"full"``."""
        self.last_f = fx
        if self.keep_curves:
            self.fs.append(fx)
            self.gnorms.append(g_norm)
        if self.keep_x:
            self.xs.append(x.clone())

    def before_step(self, x: Tensor, stops: Stops) -> Tensor | None:
        """x before a step, where it is needed (step lengths, freezing): the copy just
        recorded, or a new one."""
        if self.keep_x:
            return self.xs[-1]
        return x.clone() if self.keep_curves or not stops.all_active else None

    def step(self, x: Tensor, x_before: Tensor | None) -> None:
        """Keep the step length ‖x_{k+1} − x_k‖ (with ``"full"``: made later, from the xs)."""
        if self.keep_curves and not self.keep_x:
            self.lengths.append((x - x_before).norm(dim=-1))


def step_blocks(
    landscape: Callable[[Tensor], Tensor],
    blocks: list[Block],
    updates: list,
    x: Tensor,
    g: Tensor,
    k: int,
    keep_history: bool,
) -> None:
    """Step k → k + 1 of every rule on its slice of x: its compiled kernel where ``updates``
    has one, else ``rule.apply``; keep α/(√r̂ + ε) of adaptive rules if ``keep_history``."""
    for blk, update in zip(blocks, updates):
        xb, gb = x[blk.c0 : blk.c1], g[blk.c0 : blk.c1]
        if update is not None:
            k_t = (
                {"k": torch.full((1, 1, 1), k + 1.0, dtype=x.dtype)}
                if blk.rule.counts_steps
                else {}
            )
            update(xb, gb, *blk.state.values(), **k_t, **blk.tensors)
        else:
            H = curvature.batch_hessian(landscape, xb) if blk.rule.needs_hessian else None
            blk.rule.apply(xb, gb, blk.state, blk.hyper, k=k + 1, H=H)
        if keep_history and blk.rule.adaptive:
            blk.history.append(blk.rule.effective_step(blk.state, blk.hyper, k + 1))


def chunks(
    x: Tensor,
    blocks: list[Block],
    kernels: list,
    targets: Targets,
    stops: Stops,
    record: Record,
    steps: int,
) -> int:
    """Run the whole loop, steps 0 … steps − 1 and the observation at ``steps``, of each block
    by its kernel of many steps (``kernels``, see :mod:`firstorder.kernels.lanes`): every
    trajectory's own loop, stop test and freezing inside. The number of steps taken, as
    :func:`loop` counts them (fewer where every trajectory stopped before); f at the final x
    is the record's ``last_f``."""
    numbers = (
        math.inf if targets.bound is None else targets.bound,
        0.0 if targets.tol_f is None or targets.f_star is None else targets.f_star,
        -math.inf if targets.tol_f is None or targets.f_star is None else targets.tol_f,
    )
    bounds = [torch.full((1, 1), v, dtype=x.dtype) for v in numbers]
    fs = []
    threads = torch.get_num_threads() if x.numel() >= SINGLE_THREAD_BELOW else 1
    for blk, kernel in zip(blocks, kernels):
        s = slice(blk.c0, blk.c1)
        # in the kernel's order, engine_hyper(rule); a value shared by every configuration as
        # one number (blk.hyper), so that the prelude computes its ρᵏ once, not C times
        hyper = [torch.as_tensor(blk.hyper[n], dtype=x.dtype) for n in blk.tensors]
        marks = stops.active[s], stops.steps_to_target[s], stops.diverged_at[s]
        state = list(blk.state.values())
        fs.append(kernel(x[s], state, 0, steps, hyper + bounds, *marks, threads))
    record.last_f = torch.cat(fs)
    running = int(stops.active.sum())
    stops.all_active = running == stops.active.numel()
    if running == 0:
        return int(torch.maximum(stops.steps_to_target, stops.diverged_at).max())
    return steps


def loop(
    landscape: Callable[[Tensor], Tensor],
    x: Tensor,
    blocks: list[Block],
    updates: list,
    observer: Observer,
    targets: Targets,
    stops: Stops,
    record: Record,
    steps: int,
) -> int:
    """Run up to ``steps`` steps on x in place; the number of steps taken (fewer where every
    trajectory stopped before)."""
    for k in range(steps + 1):
        # stopping criteria, checked at every recorded point, the start included
        fx, g, g_norm, out, reached = targets.observe(observer, x)
        stops.mark(k, fx, g, out, reached)
        record.point(x, fx, g_norm)
        if k == steps or stops.done:
            return k
        x_before = record.before_step(x, stops)
        step_blocks(landscape, blocks, updates, x, g, k, record.keep_x)
        if not stops.all_active:  # a stopped trajectory stays where it stopped
            x.copy_(torch.where(stops.active.unsqueeze(-1), x, x_before))
        record.step(x, x_before)
    return steps
