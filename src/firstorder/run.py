"""Batched trajectories: any rule, any landscape, B starts × a grid of hyperparameters at once.

Every configuration of the grid and every start point is one trajectory; all of them live in one
tensor x of shape [C, B, d] (C configurations, B starts, d dimensions) and are updated by the
same line of :mod:`firstorder.rules` that updates a network's weights, with each hyperparameter
a tensor of shape [C, 1, 1]. There is no Python loop over configurations: 10,000 trajectories
cost one tensor program per step.

Each trajectory stops on its own: when it reaches the target (f − f* < tol_f, or ‖x − x*‖ <
tol_x for the nearest global minimum x*), or when it diverges (a non-finite value, or |x| past
``bound``, by default the landscape's: 100 × its window). On a surface unbounded below (the
saddle x² − y²), a finite trajectory past ``bound`` has escaped, not diverged: f → −∞ is that
surface's way down. A stopped trajectory is frozen where it stopped while the others go on.

The result, :class:`~firstorder.trajectories.Trajectories`, and :func:`summarize` are in
:mod:`firstorder.trajectories` (importable from here as well).
"""

from __future__ import annotations

import itertools
import math
import numbers
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from firstorder import curvature, rules
from firstorder.errors import UserValueError
from firstorder.files import write_atomic
from firstorder.kernels import engine as engine_kernels
from firstorder.observe import Observer, compiled_observer, value_and_grad
from firstorder.trajectories import Trajectories, final_gap, summarize


def grid(**hyper: float | bool | Sequence[float] | Tensor) -> tuple[dict[str, Tensor], int]:
    """The Cartesian product of the hyperparameters that are lists, as flat tensors of length C.

    A number is one value shared by every configuration; a list, tuple, range or 1-D tensor is
    an axis of the grid. ``grid(lr=[0.1, 0.2], rho=[0.5, 0.9, 0.99])`` has C = 6.
    """
    axes = {}
    for name, value in hyper.items():
        axes[name] = _axis(value)
        if not axes[name]:
            raise ValueError(f"{name} must have at least one value, got an empty list.")
    for name, values in axes.items():  # each axis value once, not once per configuration
        for v in values:
            rules.check(name, v)
    combos = list(itertools.product(*axes.values()))
    columns = {name: [c[i] for c in combos] for i, name in enumerate(axes)}
    return {n: v for n, v in columns.items()}, len(combos)  # type: ignore[return-value]


def _axis(value: object) -> list:
    """A hyperparameter's values as :func:`grid` reads them: a number (or a string, which the
    rule's check then refuses) is one value; a tensor, list, tuple, range, NumPy array or any
    other iterable is an axis of the grid."""
    if isinstance(value, Tensor):
        return value.flatten().tolist()
    if isinstance(value, str | numbers.Number) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def run(
    landscape: Callable[[Tensor], Tensor],
    optimizer: str,
    *,
    starts: Tensor | Sequence[Sequence[float]] | None = None,
    steps: int = 1000,
    tol_f: float | None = None,
    tol_x: float | None = None,
    bound: float | None = None,
    record: str = "full",
    dtype: torch.dtype = torch.float64,
    observer: Observer | None = None,
    compile: bool = False,
    **hyper: float | bool | Sequence[float] | Tensor,
) -> Trajectories:
    """Run rule ``optimizer`` on ``landscape`` from every start, for every grid configuration.

    ``hyper`` are the rule's hyperparameters (defaults from :mod:`firstorder.rules`); any of
    them may be a list, which becomes an axis of the grid. ``record`` is ``"full"`` (x and the
    effective steps at every step), ``"curves"`` (f, ‖g‖ and step length only) or ``"final"``.
    ``observer`` evaluates f and ∇f (default: eagerly). ``compile=True`` runs the observation
    and the rule as compiled kernels, for many steps of small batches: seconds to compile, once
    per process for each landscape and rule, then a fraction of each step's fixed cost; the
    same trajectories to float64 rounding.
    """
    (result,) = run_many(
        landscape,
        [(optimizer, hyper)],
        starts=starts,
        steps=steps,
        tol_f=tol_f,
        tol_x=tol_x,
        bound=bound,
        record=record,
        dtype=dtype,
        observer=observer,
        compile=compile,
    )
    return result


@dataclass
class _Block:
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


def _block(
    optimizer: str, hyper: dict, c0: int, B: int, d: int, dtype: torch.dtype, compile: bool
) -> _Block:
    rule = rules.get(optimizer)
    unknown = set(hyper) - set(rule.hyper)
    if unknown:
        raise ValueError(
            f"{sorted(unknown)[0]} is not a hyperparameter of {rule.name}; "
            f"allowed: {', '.join(rule.hyper)}."
        )
    missing = [n for n, default in rule.hyper.items() if default is None and n not in hyper]
    if missing:
        raise UserValueError(f"{missing[0]} must be given for {rule.name}, got nothing.")
    # the grid's axes in the rule's order, defaults where the user gave nothing
    values, C = grid(
        **{n: hyper.get(n, d) for n, d in rule.hyper.items() if n in hyper or d is not None}
    )
    # hyperparameters that vary as [C, 1, 1] tensors: the same rule line updates the block
    hyper_t: dict[str, object] = {}
    for name, column in values.items():
        if name in rule.switches:
            if len(set(column)) > 1:
                raise ValueError(f"{name} must be one value per run, got both.")
            hyper_t[name] = bool(column[0])
        elif len(set(column)) == 1:
            hyper_t[name] = float(column[0])  # shared by every configuration: a plain number
        else:
            hyper_t[name] = torch.tensor(column, dtype=dtype).view(C, 1, 1)
    state = rule.initial_state(torch.empty(C, B, d, dtype=dtype))
    blk = _Block(rule, values, c0, c0 + C, hyper_t, state)
    blk.compiled = _engine_kernel(rule, hyper_t, dtype) if compile else None
    if blk.compiled is not None:
        # the kernel takes every hyperparameter as a [C, 1, 1] tensor: one kernel, any values
        blk.tensors = {
            n: torch.as_tensor(hyper_t[n], dtype=dtype).expand(C, 1, 1).contiguous()
            for n in engine_kernels.engine_hyper(rule)
        }
    return blk


def _engine_kernel(
    rule: rules.Rule, hyper: dict, dtype: torch.dtype
) -> engine_kernels.Deferred | None:
    """The engine kernel of ``rule`` for these hyperparameters (Newton's has none)."""
    if rule.needs_hessian:
        return None
    return engine_kernels.engine_rule(
        rule, dtype, {n: hyper[n] for n in rule.switches if n in hyper}
    )


def run_many(
    landscape: Callable[[Tensor], Tensor],
    optimizers: Sequence[tuple[str, dict]],
    *,
    starts: Tensor | Sequence[Sequence[float]] | None = None,
    steps: int = 1000,
    tol_f: float | None = None,
    tol_x: float | None = None,
    bound: float | None = None,
    record: str = "full",
    dtype: torch.dtype = torch.float64,
    observer: Observer | None = None,
    compile: bool = False,
) -> list[Trajectories]:
    """Several rules at once, ``[(optimizer, hyper), ...]``, from the same starts.

    Every rule's grid is a slice of one trajectory tensor, so f and ∇f are evaluated once per
    step for all of them; each rule then updates its own slice in place. The trajectories are
    those of :func:`run` called once per rule; the recording runs until the last one stops.
    ``compile`` as for :func:`run`; each result's ``meta["rule"]`` says whether its rule ran
    compiled or (its kernel still compiling in the background, or impossible) eagerly.
    """
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}.")
    if record not in ("full", "curves", "final"):
        raise ValueError(f"record must be 'full', 'curves' or 'final', got {record!r}.")
    # tol_f = 0 is a target too: "f < f*", for a landscape shifted so that f* = 0 marks a level
    for name, tol, least in (("tol_f", tol_f, ">= 0"), ("tol_x", tol_x, "> 0")):
        ok = _is_number(tol) and math.isfinite(tol) and (tol >= 0 if name == "tol_f" else tol > 0)
        if tol is not None and not ok:
            raise ValueError(f"{name} must be a finite number {least} or None, got {tol!r}.")
    if starts is None:
        starts = getattr(landscape, "starts", None)
        if starts is None:
            raise ValueError("starts must be given: this landscape lists no start points.")
    try:
        x0 = torch.as_tensor(starts, dtype=dtype)
    except (OverflowError, RuntimeError, TypeError, ValueError):
        raise ValueError(f"starts must be rows of numbers, got {str(starts)[:40]}.") from None
    if x0.dim() == 1:
        x0 = x0.unsqueeze(0)
    if not x0.isfinite().all():
        b = int((~x0.isfinite()).any(-1).nonzero()[0, 0])
        raise ValueError(f"starts must be finite numbers, got {x0[b].tolist()} as start {b}.")
    B, d = x0.shape
    # an iterator (a generator of α) can be read only once: as a list, it is counted, then used
    optimizers = [
        (name, {n: list(v) if isinstance(v, Iterator) else v for n, v in dict(hyper).items()})
        for name, hyper in optimizers
    ]
    _check_memory(optimizers, B, d, steps, record, dtype)
    blocks: list[_Block] = []
    for optimizer, hyper in optimizers:
        c0 = blocks[-1].c1 if blocks else 0
        blocks.append(_block(optimizer, dict(hyper), c0, B, d, dtype, compile))
    C = blocks[-1].c1
    x = x0.expand(C, B, d).clone()
    if bound is None:
        bound = getattr(landscape, "bound", None)  # every Landscape carries one
    escapes = bool(getattr(landscape, "unbounded_below", False))  # leaving bound: an escape

    f_star = _f_star(landscape)
    x_star = _global_minima(landscape, dtype)
    check_f = tol_f is not None and f_star is not None
    check_x = tol_x is not None and x_star is not None
    keep_x, keep_curves = record == "full", record in ("full", "curves")
    fs, gnorms, lengths, xs = [], [], [], []
    steps_to_target = torch.full((C, B), -1, dtype=torch.long)
    diverged_at = torch.full((C, B), -1, dtype=torch.long)
    escaped_at = torch.full((C, B), -1, dtype=torch.long)
    active = torch.ones(C, B, dtype=torch.bool)
    all_active = True

    if observer is None:
        observer = compiled_observer(landscape) if compile else Observer(landscape)
    views = [x[blk.c0 : blk.c1] for blk in blocks]  # each rule updates its slice of x in place
    # a compiled rule, if ready now, for the whole run (one that is still compiling: the eager
    # rule), and its step counters k as [1, 1, 1] tensors
    updates = [blk.compiled.get() if blk.compiled is not None else None for blk in blocks]
    ks = torch.arange(1, steps + 1, dtype=dtype).view(-1, 1, 1, 1) if any(updates) else None
    for k in range(steps + 1):
        # stopping criteria, checked at every recorded point, the start included
        fx, g, g_norm, out, reached = observer(x, bound, *((f_star, tol_f) if check_f else ()))
        if check_x:
            near = torch.cdist(x, x_star.expand(C, *x_star.shape)).min(-1).values < tol_x
            reached, out = reached | near, out | near
        stopped = out if all_active else active & out
        if stopped.any():
            gone = stopped & ~reached
            if escapes:  # finite but past bound: escaped down the unbounded surface
                escaped = gone & torch.isfinite(fx) & torch.isfinite(g).all(-1)
                escaped_at[escaped] = k
                gone &= ~escaped
            diverged_at[gone] = k
            steps_to_target[stopped & reached] = k
            active &= ~out
            all_active = False
        if keep_curves:
            fs.append(fx)
            gnorms.append(g_norm)
        if keep_x:
            xs.append(x.clone())
        if k == steps or (not all_active and not active.any()):
            break

        # x before this step: the copy just recorded, or a new one where it is needed
        if keep_x:
            x_before = xs[-1]
        else:
            x_before = x.clone() if keep_curves or not all_active else None
        for blk, xb, update in zip(blocks, views, updates):
            gb = g[blk.c0 : blk.c1]
            if update is not None:
                k_t = {"k": ks[k]} if blk.rule.counts_steps else {}
                update(xb, gb, *blk.state.values(), **k_t, **blk.tensors)
            else:
                H = curvature.batch_hessian(landscape, xb) if blk.rule.needs_hessian else None
                blk.rule.apply(xb, gb, blk.state, blk.hyper, k=k + 1, H=H)
            if keep_x and blk.rule.adaptive:
                blk.history.append(blk.rule.effective_step(blk.state, blk.hyper, k + 1))
        if not all_active:  # a stopped trajectory stays where it stopped
            x.copy_(torch.where(active.unsqueeze(-1), x, x_before))
        if keep_curves and not keep_x:
            lengths.append((x - x_before).norm(dim=-1))

    fx, _ = value_and_grad(landscape, x)
    f = _stack(fs, (0, C, B), dtype)
    grad_norm = _stack(gnorms, (0, C, B), dtype)
    x_all = _stack(xs, (0, C, B, d), dtype) if keep_x else None
    # with every x recorded, the step lengths ‖x_{k+1} − x_k‖ come out of them at once
    step_length = (
        (x_all[1:] - x_all[:-1]).norm(dim=-1) if keep_x else _stack(lengths, (0, C, B), dtype)
    )
    name = getattr(landscape, "name", type(landscape).__name__)
    results = []
    for blk, update in zip(blocks, updates):
        s = slice(blk.c0, blk.c1)
        adaptive = keep_x and blk.rule.adaptive
        results.append(
            Trajectories(
                optimizer=blk.rule.name,
                landscape=name,
                hyper={n: list(v) for n, v in blk.values.items()},
                starts=x0,
                steps=k,
                f=f[:, s],
                grad_norm=grad_norm[:, s],
                step_length=step_length[:, s],
                x=x_all[:, s] if keep_x else None,
                effective_step=_effective_steps(blk, B, d, dtype) if adaptive else None,
                steps_to_target=steps_to_target[s],
                diverged_at=diverged_at[s],
                escaped_at=escaped_at[s] if escapes else None,
                final_x=x[s],
                final_f=fx[s],
                f_star=f_star,
                meta={"rule": "compiled" if update is not None else "eager"},
            )
        )
    return results


def _is_number(v: object) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


# numbers kept per configuration, start and step: f, ‖∇f‖, the step length ‖x_{k+1} − x_k‖ and
# a spare for the temporaries of the stacking (record="full" keeps x and, for adaptive rules, r:
# 2d more, and the effective steps α/(√r̂ + ε) made from them: d more). Doubled, they bound the
# peak measured for 400 configurations × 100 starts × 1000 steps of Adam on a 2-D surface:
# 7.8 numbers a step with "curves" (bound 8), 18.2 with "full" (bound 20).
RECORDED = {"final": lambda d: 0, "curves": lambda d: 4, "full": lambda d: 4 + 3 * d}
WORKING = 16  # d-vectors per configuration and start while stepping: x, ∇f, state, temporaries


def _check_memory(
    optimizers: Sequence[tuple[str, dict]],
    B: int,
    d: int,
    steps: int,
    record: str,
    dtype: torch.dtype,
) -> None:
    """Refuse up front a run whose recording cannot fit in memory (rather than run for minutes
    and then be killed): about C·B·((T+1)·n·2 + 16·d) numbers, n numbers recorded per step,
    twice (the list of steps, then the stacked tensor), against half the memory available."""
    C = sum(math.prod(len(_axis(v)) for v in hyper.values()) for _, hyper in optimizers)
    need = C * B * ((steps + 1) * RECORDED[record](d) * 2 + WORKING * d) * dtype.itemsize
    allowed = memory_available() // 2
    if need > allowed:
        raise UserValueError(
            f"the grid must fit in memory: {C} configurations × {B} starts × {steps + 1} "
            f"steps recorded as {record!r} need about {need / 1e9:.3g} GB, and at most "
            f"{allowed / 1e9:.3g} GB (half the memory available) is allowed; use fewer "
            f"configurations, starts or steps (or, from Python, record='final')."
        )


def memory_available() -> int:
    """Bytes of memory available to a new allocation: Linux's MemAvailable (free memory plus
    caches it can drop), else the free pages as ``os.sysconf`` counts them."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: no bound known
        return 2**63


def warm_up(
    landscape: Callable[[Tensor], Tensor],
    optimizers: Sequence[tuple[str, dict]],
    *,
    dtype: torch.dtype = torch.float64,
    wait: bool = False,
) -> None:
    """Compile what ``run_many(landscape, optimizers, compile=True)`` uses, in the background
    unless ``wait``: the observation of ``landscape`` and each optimizer's rule (the playground
    starts this when a page shows a landscape or asks for an optimizer). Until a kernel is
    ready, such runs use the eager form, the same numbers to float64 rounding."""
    compiled_observer(landscape).warm_up(landscape.dim, dtype, wait=wait)
    for name, hyper in optimizers:
        engine = _engine_kernel(rules.get(name), hyper, dtype)
        if engine is not None:
            engine.warm_up(wait=wait)


def _effective_steps(blk: _Block, B: int, d: int, dtype: torch.dtype) -> Tensor:
    """α/(√r̂ + ε) after each step k = 1 … T, as recorded, as [T, C, B, d]."""
    C = blk.c1 - blk.c0
    if not blk.history:
        return torch.empty((0, C, B, d), dtype=dtype)
    return torch.stack([h.expand(C, B, d) for h in blk.history])


def _stack(items: list[Tensor], empty_shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
    return torch.stack(items) if items else torch.empty(empty_shape, dtype=dtype)


def _f_star(landscape: object) -> float | None:
    minima = getattr(landscape, "minima", None) or []
    values = [m.f for m in minima]
    return min(values) if values else None


def _global_minima(landscape: object, dtype: torch.dtype) -> Tensor | None:
    """Every listed minimum whose value equals f* (Himmelblau has four) as [M, d]."""
    minima = getattr(landscape, "minima", None) or []
    if not minima:
        return None
    f_star = min(m.f for m in minima)
    best = [m.x for m in minima if math.isclose(m.f, f_star, rel_tol=1e-9, abs_tol=1e-9)]
    return torch.tensor(best, dtype=dtype)


__all__ = [
    "Trajectories",
    "final_gap",
    "grid",
    "run",
    "run_many",
    "summarize",
    "value_and_grad",
    "warm_up",
    "write_atomic",
]
