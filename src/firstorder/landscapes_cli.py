"""``firstorder landscapes``, ``run`` and ``sweep``: the obstacle course at the command line.

``landscapes`` lists the course; ``run`` prints where each start of one optimizer ended;
``sweep`` prints one row per configuration of a hyperparameter grid. Each prints a table (or
JSON with ``--json``) and, with ``--plot``, draws the paths or the sweep's heatmap.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from firstorder.cli_options import HYPER, UsageError, hyper_values
from firstorder.files import to_json

# summarize()'s keys as the sweep table's column titles; the fractions print as percentages
SWEEP_COLUMNS = {
    "success": "reached",
    "median_steps": "median steps",
    "diverged": "diverged",
    "escaped": "escaped",
    "median_escape_steps": "median steps to escape",
    "median_gap": "median f − f*",
}
PERCENT = ("success", "diverged", "escaped")


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> Table:
    table = Table(title=title)
    for c in columns:
        table.add_column(c, overflow="fold")  # long text wraps at 80 columns, none is cut
    for row in rows:
        table.add_row(*(_fmt(v) for v in row))
    return table


def _percent(v: float) -> str:
    """A fraction of the starts as a percentage: 0.3333 -> "33%"."""
    return f"{100 * v:.0f}%"


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "—" if v is None else str(v)


def cmd_landscapes(args: argparse.Namespace, console: Console) -> int:
    from firstorder import landscapes

    rows = []
    for name in landscapes.names():
        f = landscapes.get(name)
        minima = "; ".join(
            f"({', '.join(f'{v:.3g}' for v in m.x)}) f={m.f:.3g}" for m in f.minima[:3]
        ) + (f" +{len(f.minima) - 3}" if len(f.minima) > 3 else "")
        rows.append(
            {
                "name": name,
                "obstacles": list(f.obstacles),
                "dim": f.dim,
                "minima": [{"x": list(m.x), "f": m.f} for m in f.minima],
                "description": f.description,
                "_minima": minima or "none (unbounded below)",
            }
        )
    if args.json:
        print(to_json([{k: v for k, v in r.items() if k[0] != "_"} for r in rows], indent=1))
        return 0
    console.print(
        _table(
            "The obstacle course",
            ("name", "obstacles", "dim", "minima", "description"),
            [
                (r["name"], ", ".join(r["obstacles"]), r["dim"], r["_minima"], r["description"])
                for r in rows
            ],
        )
    )
    return 0


def _run(args: argparse.Namespace, *, log_lr: bool, plot_needs_2d: bool = False):
    from firstorder import landscapes, plots
    from firstorder.run import run

    f = landscapes.get(args.landscape)
    if not (math.isfinite(args.tol) and args.tol > 0):
        raise UsageError(f"--tol must be a finite number > 0, got {args.tol:g}.")
    if args.steps < 0:
        raise UsageError(f"--steps must be an integer >= 0, got {args.steps}.")
    if args.plot:  # checked before the run, which may take a while
        plots.check_suffix(args.plot, "--plot")
        if plot_needs_2d and f.dim != 2:
            raise UsageError(f"--plot draws 2-D landscapes, got {f.name} with dim {f.dim}.")
    starts = None
    if args.start:
        typed = " ".join(args.start)  # as the user typed them, not as a Python list
        try:
            starts = [[float(v) for v in s.split(",")] for s in args.start]
        except ValueError:
            raise UsageError(f"--start must be comma-separated numbers, got {typed}.") from None
        if not all(math.isfinite(v) for s in starts for v in s):
            raise UsageError(f"--start must be finite numbers, got {typed}.")
        if any(len(s) != f.dim for s in starts):
            raise UsageError(f"--start must have {f.dim} numbers for {f.name}, got {typed}.")
    return f, run(
        f,
        args.optimizer,
        starts=starts,
        steps=args.steps,
        tol_f=args.tol,
        record="full" if args.plot and f.dim == 2 and not log_lr else "curves",
        **hyper_values(args, log_lr=log_lr),
    )


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from firstorder import plots

    f, result = _run(args, log_lr=False, plot_needs_2d=True)
    rows = result.records()
    if args.json:
        print(to_json(rows, indent=1))
    else:
        console.print(
            _table(
                f"{result.optimizer} on {f.name}, up to {args.steps} steps"
                + (
                    f", target f − f* < {args.tol:g}"
                    if f.minima
                    else f", escape: |x| > {f.bound:g}"
                ),
                ("config", "start", "final f", "f − f*", "ended"),
                [
                    (
                        ", ".join(f"{k}={v:g}" for k, v in result.config(c).items()),
                        ", ".join(f"{v:.3g}" for v in result.starts[b].tolist()),
                        float(result.final_f[c, b]),
                        float(result.final_f[c, b] - f.f_star) if f.minima else None,
                        _ended(*result.outcome(c, b), args.steps),
                    )
                    for c in range(result.configs)
                    for b in range(result.starts.shape[0])
                ],
            )
        )
    if args.plot:
        path = plots.save(plots.trajectories_figure(result, f), args.plot)
        console.print(f"plot: {path}")
    return 0


def _ended(status: str, step: int | None, steps: int) -> str:
    """How a trajectory ended, in words: "reached at step 12", "diverged at step 3", …"""
    if status == "budget":
        return f"still going at step {steps}"
    return f"{status} at step {step}"


def cmd_sweep(args: argparse.Namespace, console: Console) -> int:
    from firstorder import plots
    from firstorder.trajectories import summarize

    swept = [n for n in HYPER if isinstance(hyper_values(args, log_lr=True).get(n), list)]
    if args.plot and not swept:
        raise UsageError("--plot needs at least one swept hyperparameter (A:B:N), got none.")
    f, result = _run(args, log_lr=True)
    rows = summarize(result)
    if args.json:
        print(to_json(rows, indent=1))
    else:
        swept_keys = [k for k in rows[0] if k in HYPER]
        shown = {**{k: k for k in swept_keys}, **SWEEP_COLUMNS}
        no_target = ("success", "median_steps")  # a surface unbounded below has no target
        keys = [k for k in shown if k in rows[0] and (f.minima or k not in no_target)]
        console.print(
            _table(
                f"{result.optimizer} on {f.name}: {result.configs} configurations × "
                f"{result.starts.shape[0]} starts, up to {args.steps} steps"
                + (
                    f", target f − f* < {args.tol:g}"
                    if f.minima
                    else f", escape: |x| > {f.bound:g}"
                ),
                [shown[k] for k in keys],
                [[_percent(r[k]) if k in PERCENT else r[k] for k in keys] for r in rows],
            )
        )
    if args.plot:
        x, y = swept[0], (swept[1] if len(swept) > 1 else None)
        value = "steps" if (result.steps_to_target >= 0).any() else "loss"
        path = plots.save(plots.sweep_heatmap(result, x, y, value), args.plot)
        console.print(f"plot: {path}")
    return 0
