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
:mod:`firstorder.trajectories` (``summarize`` importable from here as well); the loop of steps
is :mod:`firstorder.stepping`, the memory check :mod:`firstorder.memory`.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Iterable, Iterator, Sequence

import torch
from torch import Tensor

from firstorder import memory, rules, stepping
from firstorder.errors import UserError, UserValueError
from firstorder.kernels import engine as engine_kernels
from firstorder.observe import Observer, compiled_observer, landscape_key, value_and_grad
from firstorder.stepping import Block, Record, Stops, Targets
from firstorder.trajectories import Trajectories, summarize


def grid(**hyper: float | bool | Sequence[float] | Tensor) -> tuple[dict[str, Tensor], int]:
    """The Cartesian product of the hyperparameters that are lists, as flat tensors of length C.

    A number is one value shared by every configuration; a list, tuple, range or 1-D tensor is
    an axis of the grid. ``grid(lr=[0.1, 0.2], rho=[0.5, 0.9, 0.99])`` has C = 6.
    """
    axes = {}
    for name, value in hyper.items():
        axes[name] = _axis(value)
        if not axes[name]:
            raise UserValueError(f"{name} must have at least one value, got an empty list.")
    for name, values in axes.items():  # each axis value once, not once per configuration
        _check_axis(name, values)
    combos = list(itertools.product(*axes.values()))
    columns = {name: [c[i] for c in combos] for i, name in enumerate(axes)}
    return {n: v for n, v in columns.items()}, len(combos)  # type: ignore[return-value]


def _check_axis(name: str, values: list) -> None:
    """Check every value of an axis: all at once where they are numbers (one tensor test, not
    one per value), and one by one where that fails, so that the error names the bad one."""
    if len(values) > 1 and all(_is_number(v) for v in values):
        try:
            rules.check(name, torch.tensor(values, dtype=torch.float64))
            return
        except (UserError, OverflowError, RuntimeError):
            pass  # found below, by value
    for v in values:
        rules.check(name, v)


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
    and the rule as compiled kernels: seconds to compile, once per process for each landscape
    and rule, then a fraction of each step's cost; the same trajectories to float64 rounding.
    With ``record="final"`` (float64, no ``tol_x``, a surface with minima) the whole run is one
    C++ loop per trajectory (:mod:`firstorder.kernels.lanes`), faster than JAX + Optax on the
    sweeps of ``benchmarks/sweep_speed.py``; otherwise the kernels run a step at a time.
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


def _block(
    optimizer: str, hyper: dict, c0: int, B: int, d: int, dtype: torch.dtype, compile: bool
) -> Block:
    """Rule ``optimizer``'s block of configurations from ``c0`` on: its grid of ``hyper``
    (defaults where the user gave none), the hyperparameters that vary as [C, 1, 1] tensors
    (the same rule line then updates the whole block) and its state."""
    rule = rules.get(optimizer)
    unknown = set(hyper) - set(rule.hyper)
    if unknown:
        raise UserValueError(
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
    hyper_t: dict[str, object] = {}
    for name, column in values.items():
        if name in rule.switches:
            if len(set(column)) > 1:
                raise UserValueError(f"{name} must be one value per run, got both.")
            hyper_t[name] = bool(column[0])
        elif len(set(column)) == 1:
            hyper_t[name] = float(column[0])  # shared by every configuration: a plain number
        else:
            hyper_t[name] = torch.tensor(column, dtype=dtype).view(C, 1, 1)
    state = rule.initial_state(torch.empty(C, B, d, dtype=dtype))
    blk = Block(rule, values, c0, c0 + C, hyper_t, state)
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
    _check_options(steps, record, tol_f, tol_x)
    x0 = _starts(landscape, starts, dtype)
    B, d = x0.shape
    # an iterator (a generator of α) can be read only once: as a list, it is counted, then used
    optimizers = [
        (name, {n: list(v) if isinstance(v, Iterator) else v for n, v in dict(hyper).items()})
        for name, hyper in optimizers
    ]
    C = sum(math.prod(len(_axis(v)) for v in hyper.values()) for _, hyper in optimizers)
    memory.check(C, B, d, steps, record, dtype)
    blocks: list[Block] = []
    for optimizer, hyper in optimizers:
        c0 = blocks[-1].c1 if blocks else 0
        blocks.append(_block(optimizer, dict(hyper), c0, B, d, dtype, compile))
    C = blocks[-1].c1
    x = x0.expand(C, B, d).clone()
    if bound is None:
        bound = getattr(landscape, "bound", None)  # every Landscape carries one
    escapes = bool(getattr(landscape, "unbounded_below", False))  # leaving bound: an escape
    f_star = _f_star(landscape)
    targets = Targets(bound, escapes, f_star, tol_f, _global_minima(landscape, dtype), tol_x)
    chunked = compile and observer is None and record == "final" and tol_x is None
    if observer is None:
        observer = compiled_observer(landscape) if compile else Observer(landscape)
    # a compiled rule, if ready now, for the whole run (one still compiling: the eager rule)
    updates = [blk.compiled.get() if blk.compiled is not None else None for blk in blocks]
    chunked &= not escapes and dtype == torch.float64
    kernels = _chunk_kernels(landscape, blocks, dtype) if chunked else None
    stops, rec = Stops(C, B, escapes), Record(record)
    with stepping.threads_for(x.numel()):
        if kernels:
            k = stepping.chunks(x, blocks, kernels, targets, stops, rec, steps)
        else:
            k = stepping.loop(landscape, x, blocks, updates, observer, targets, stops, rec, steps)
        return _results(landscape, x0, x, k, blocks, updates, stops, rec, f_star)


def _chunk_kernels(
    landscape: Callable[[Tensor], Tensor], blocks: list[Block], dtype: torch.dtype
) -> list | None:
    """Each block's kernel of many steps (:func:`~firstorder.kernels.engine.engine_steps`),
    or None unless every block has one ready (a landscape without ``dim``, Newton's rule, a
    kernel still compiling in the background or impossible: the run steps one by one)."""
    if getattr(landscape, "dim", None) is None:
        return None
    kernels = []
    for blk in blocks:
        if blk.compiled is None:
            return None
        switches = {n: blk.hyper[n] for n in blk.rule.switches if n in blk.hyper}
        key = landscape_key(landscape)
        kernel = engine_kernels.engine_steps(landscape, key, blk.rule, dtype, switches).get()
        if kernel is None:
            return None
        kernels.append(kernel)
    return kernels


def _check_options(steps: object, record: object, tol_f: float | None, tol_x: float | None) -> None:
    """Refuse a bad ``steps``, ``record``, ``tol_f`` or ``tol_x`` with one sentence."""
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0:
        raise UserValueError(f"steps must be an integer >= 0, got {steps!r}.")
    if record not in ("full", "curves", "final"):
        raise UserValueError(f"record must be 'full', 'curves' or 'final', got {record!r}.")
    # tol_f = 0 is a target too: "f < f*", for a landscape shifted so that f* = 0 marks a level
    for name, tol, least in (("tol_f", tol_f, ">= 0"), ("tol_x", tol_x, "> 0")):
        ok = _is_number(tol) and math.isfinite(tol) and (tol >= 0 if name == "tol_f" else tol > 0)
        if tol is not None and not ok:
            raise UserValueError(f"{name} must be a finite number {least} or None, got {tol!r}.")


def _starts(
    landscape: object, starts: Tensor | Sequence[Sequence[float]] | None, dtype: torch.dtype
) -> Tensor:
    """The start points as [B, d]: those given, else the landscape's own."""
    if starts is None:
        starts = getattr(landscape, "starts", None)
        if starts is None:
            raise UserValueError("starts must be given: this landscape lists no start points.")
    try:
        x0 = torch.as_tensor(starts, dtype=dtype)
    except (OverflowError, RuntimeError, TypeError, ValueError):
        raise UserValueError(f"starts must be rows of numbers, got {str(starts)[:40]}.") from None
    if x0.dim() == 1:
        x0 = x0.unsqueeze(0)
    if not x0.isfinite().all():
        b = int((~x0.isfinite()).any(-1).nonzero()[0, 0])
        raise UserValueError(f"starts must be finite numbers, got {x0[b].tolist()} as start {b}.")
    return x0


def _results(
    landscape: Callable[[Tensor], Tensor],
    x0: Tensor,
    x: Tensor,
    k: int,
    blocks: list[Block],
    updates: list,
    stops: Stops,
    rec: Record,
    f_star: float | None,
) -> list[Trajectories]:
    """One :class:`Trajectories` per rule, from the run's recording after k steps."""
    C, B, d = x.shape
    dtype = x.dtype
    # f at the final x: the loop's last observation (the kernel's, for a run in one kernel)
    fx = rec.last_f if rec.last_f is not None else value_and_grad(landscape, x)[0]
    f = _stack(rec.fs, (0, C, B), dtype)
    grad_norm = _stack(rec.gnorms, (0, C, B), dtype)
    x_all = _stack(rec.xs, (0, C, B, d), dtype) if rec.keep_x else None
    # with every x recorded, the step lengths ‖x_{k+1} − x_k‖ come out of them at once
    step_length = (
        (x_all[1:] - x_all[:-1]).norm(dim=-1)
        if rec.keep_x
        else _stack(rec.lengths, (0, C, B), dtype)
    )
    name = getattr(landscape, "name", type(landscape).__name__)
    results = []
    for blk, update in zip(blocks, updates):
        s = slice(blk.c0, blk.c1)
        adaptive = rec.keep_x and blk.rule.adaptive
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
                x=x_all[:, s] if rec.keep_x else None,
                effective_step=_effective_steps(blk, B, d, dtype) if adaptive else None,
                steps_to_target=stops.steps_to_target[s],
                diverged_at=stops.diverged_at[s],
                escaped_at=stops.escaped_at[s] if stops.escapes else None,
                final_x=x[s],
                final_f=fx[s],
                f_star=f_star,
                meta={"rule": "compiled" if update is not None else "eager"},
            )
        )
    return results


def _is_number(v: object) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def warm_up(
    landscape: Callable[[Tensor], Tensor],
    optimizers: Sequence[tuple[str, dict]],
    *,
    dtype: torch.dtype = torch.float64,
    wait: bool = False,
    record: str = "full",
) -> None:
    """Compile what ``run_many(landscape, optimizers, compile=True, record=record)`` uses, in
    the background unless ``wait``: the observation of ``landscape``, each optimizer's rule and,
    for ``record="final"``, its kernel of many steps (the playground starts this when a page
    shows a landscape or asks for an optimizer). Until a kernel is ready, such runs use the
    eager form, the same numbers to float64 rounding."""
    compiled_observer(landscape).warm_up(landscape.dim, dtype, wait=wait)
    for name, hyper in optimizers:
        rule = rules.get(name)
        engine = _engine_kernel(rule, hyper, dtype)
        if engine is None:
            continue
        engine.warm_up(wait=wait)
        if record == "final":  # only such runs go in chunks: seconds not spent for the others
            switches = {n: hyper[n] for n in rule.switches if n in hyper}
            key = landscape_key(landscape)
            engine_kernels.engine_steps(landscape, key, rule, dtype, switches).warm_up(wait=wait)


def _effective_steps(blk: Block, B: int, d: int, dtype: torch.dtype) -> Tensor:
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


# summarize is defined in firstorder.trajectories; it stays importable from here because the
# README's first example imports it with run
__all__ = ["grid", "run", "run_many", "summarize", "warm_up"]
