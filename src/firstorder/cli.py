"""The ``firstorder`` command.

    firstorder tour [--quick] [--out DIR]
    firstorder claims [--quick] [--json] [--only C6,C8a] [--from results.json]
    firstorder landscapes [--json]
    firstorder run LANDSCAPE --optimizer NAME [--lr A] [--rho R] ... [--plot FILE] [--json]
    firstorder sweep LANDSCAPE --optimizer NAME --lr A:B:N [--rho A:B:N] [--plot FILE] [--json]
    firstorder train --data NAME --layers 64,128,10 --activation relu --optimizer NAME [...]
    firstorder cards [--quick] [--out DIR] [--format obsidian|apkg|both] [--from results.json]
    firstorder serve [--port 8765] [--open]

A user's mistake (an unknown name, a value out of range, a malformed range) prints one line
and exits with status 2, never a traceback. ``firstorder COMMAND --help`` explains each
command with examples and every option's default.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

HYPER = ("lr", "rho", "rho1", "rho2", "eps", "damping")
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


class UsageError(ValueError):
    """A mistake in what the user typed."""


def parse_values(name: str, text: str, *, log: bool) -> list[float]:
    """``A:B:N`` (N values from A to B, log-spaced for α, linear otherwise), ``a,b,c`` or ``a``."""
    try:
        if ":" in text:
            a, b, n = text.split(":")
            a, b, n = float(a), float(b), int(n)
            if n < 1:
                raise ValueError
            if log:
                if a <= 0 or b <= 0:
                    raise ValueError
                return np.geomspace(a, b, n).tolist()
            return np.linspace(a, b, n).tolist()
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(
            f"--{name.replace('_', '-')} must be A:B:N (for example 1e-4:1:9"
            f"{', A and B > 0' if log else ''}), a comma list or a number, got {text!r}."
        ) from None


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


# --- subcommands ------------------------------------------------------------------------------


def cmd_tour(args: argparse.Namespace, console: Console) -> int:
    from firstorder.tour import run_tour

    t0 = time.perf_counter()
    findings = run_tour(
        args.out, quick=args.quick, seed=args.seed, only=_only(args), jobs=args.jobs
    )
    _print_verdicts(findings, console)
    slow = sorted(findings, key=lambda f: -f.seconds)
    console.print(
        "time per experiment: " + ", ".join(f"{f.id} {f.seconds:.1f}s" for f in slow),
        style="dim",
    )
    console.print(
        f"\n{len(findings)} findings in {time.perf_counter() - t0:.0f} s. "
        f"Report: [bold]{Path(args.out) / 'report.html'}[/bold]  "
        f"(numbers: {Path(args.out) / 'results.json'}, figures: {Path(args.out) / 'figures'})"
    )
    return 0


def cmd_claims(args: argparse.Namespace, console: Console) -> int:
    from firstorder.tour import load, run_tour

    if args.from_results:  # a tour's results, printed as they are: nothing reruns
        findings = [_finding(d) for d in load(args.from_results)]
        if args.only:
            wanted = [i.strip() for i in args.only.split(",") if i.strip()]
            findings = [f for f in findings if f.id in wanted]
    else:
        with tempfile.TemporaryDirectory() as tmp:
            out = args.out or tmp
            findings = run_tour(
                out,
                quick=args.quick,
                seed=args.seed,
                only=_only(args),
                progress=not args.json,
                jobs=args.jobs,
            )
    if args.json:
        rows = [
            {"id": f.id, "claim": f.claim, "verdict": f.verdict, "evidence": f.evidence}
            for f in findings
        ]
        print(json.dumps(rows, indent=1, ensure_ascii=False))
    else:
        _print_verdicts(findings, console)
    return 0


def _finding(d: dict):
    """A Finding from one entry of results.json (fields a newer version added are dropped)."""
    from dataclasses import fields

    from firstorder.experiments import Finding

    known = {f.name for f in fields(Finding)}
    return Finding(**{k: v for k, v in d.items() if k in known})


def _only(args: argparse.Namespace) -> list[str] | None:
    return args.only.split(",") if getattr(args, "only", None) else None


def _print_verdicts(findings, console: Console) -> None:
    colours = {"holds": "green", "partly": "yellow", "fails": "red"}
    table = Table(title="The notes' claims, measured", show_lines=False)
    for c in ("id", "statement", "verdict", "what was measured"):
        table.add_column(c, overflow="fold")
    for f in findings:
        style = colours.get(f.verdict, "magenta")
        said = f.takeaway or f.evidence  # the one plain sentence, where the finding has one
        table.add_row(f.id, f.title, f"[{style}]{f.verdict}[/{style}]", said)
    console.print(table)


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
        print(json.dumps([{k: v for k, v in r.items() if k[0] != "_"} for r in rows], indent=1))
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


def _hyper(args: argparse.Namespace, *, log_lr: bool) -> dict[str, object]:
    hyper: dict[str, object] = {}
    for name in HYPER:
        text = getattr(args, name, None)
        if text is not None:
            values = parse_values(name, text, log=log_lr and name == "lr")
            hyper[name] = values[0] if len(values) == 1 else values
    if getattr(args, "no_bias_correction", False):
        hyper["bias_correction"] = False
    return hyper


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
        try:
            starts = [[float(v) for v in s.split(",")] for s in args.start]
        except ValueError:
            raise UsageError(
                f"--start must be comma-separated numbers, got {args.start}."
            ) from None
        if any(len(s) != f.dim for s in starts):
            raise UsageError(f"--start must have {f.dim} numbers for {f.name}, got {args.start}.")
    return f, run(
        f,
        args.optimizer,
        starts=starts,
        steps=args.steps,
        tol_f=args.tol,
        record="full" if args.plot and f.dim == 2 and not log_lr else "curves",
        **_hyper(args, log_lr=log_lr),
    )


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from firstorder import plots

    f, result = _run(args, log_lr=False, plot_needs_2d=True)
    rows = result.records()
    if args.json:
        print(json.dumps(rows, indent=1))
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

    swept = [n for n in HYPER if isinstance(_hyper(args, log_lr=True).get(n), list)]
    if args.plot and not swept:
        raise UsageError("--plot needs at least one swept hyperparameter (A:B:N), got none.")
    f, result = _run(args, log_lr=True)
    rows = summarize(result)
    if args.json:
        print(json.dumps(rows, indent=1))
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


def cmd_cards(args: argparse.Namespace, console: Console) -> int:
    from firstorder import cards
    from firstorder.tour import load, run_tour

    out = Path(args.out)
    if args.from_results:
        results = Path(args.from_results)
        findings, results_dir = cards.check(load(results), results), results.parent
    else:
        results_dir = out / "tour"
        run_tour(results_dir, quick=args.quick, seed=args.seed, only=_only(args), jobs=args.jobs)
        findings = load(results_dir / "results.json")
    if not findings:
        raise UsageError("results must hold at least one finding, got none.")
    for path in cards.write_cards(findings, results_dir, out, args.format):
        console.print(f"{len(findings)} cards: {path}")
    return 0


def cmd_serve(args: argparse.Namespace, console: Console) -> int:
    from firstorder.serve import serve

    serve(args.port, open_browser=args.open)
    return 0


def cmd_train(args: argparse.Namespace, console: Console) -> int:
    from firstorder import train_cli

    return train_cli.main(args, console)


# --- the parser ----------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line and status 2, as argparse does, no usage dump
        self.exit(2, f"{self.prog}: error: {message}\n")


class _Help(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' line breaks; every option's help states its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or not action.option_strings or action.default is argparse.SUPPRESS:
            return text
        if action.default is None or action.default is False:
            return f"{text} (default: off)" if action.nargs == 0 else text
        return f"{text} (default: {action.default})"


def _jobs(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def _add_jobs(parser: argparse.ArgumentParser) -> None:
    cpus = os.cpu_count() or 1
    parser.add_argument(
        "--jobs",
        type=_jobs,
        default=cpus,
        help=f"experiments run at once, each in its own process (default: {cpus}, the CPUs)",
    )


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _sub(sub, name: str, summary: str, description: str, *examples: str) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=summary,
        description=textwrap.fill(description, 78),
        epilog=_examples(*examples),
        formatter_class=_Help,
    )


def _landscape_names() -> str:
    from firstorder import landscapes

    return ", ".join(landscapes.names())


def _rule_defaults(name: str) -> str:
    """ "default: …" of hyperparameter ``name`` in every rule that has it, from rules.py."""
    from firstorder import rules

    have = {r: rules.get(r).hyper[name] for r in rules.names() if name in rules.get(r).hyper}
    given = [f"{r} {v:g}" for r, v in have.items() if v is not None]
    needed = [r for r, v in have.items() if v is None]
    if len(set(have.values())) == 1 and not needed:
        return f"default: {next(iter(have.values())):g}"
    return "default: " + ", ".join(
        given + ([f"required for {', '.join(needed)}"] if needed else [])
    )


def _add_run_options(r: argparse.ArgumentParser, *, sweep: bool) -> None:
    r.add_argument("landscape", help=f"one of: {_landscape_names()}")
    r.add_argument(
        "--optimizer", required=True, help="gd, momentum, adagrad, rmsprop, adam or newton"
    )
    grid = "A:B:N (N values from A to B{}), a comma list a,b,c or one value"
    lr = grid.format(", log-spaced") if sweep else "one value or a comma list a,b,c"
    other = grid.format(", evenly spaced") if sweep else "one value or a comma list"
    r.add_argument("--lr", help=f"α: {lr} ({_rule_defaults('lr')})")
    r.add_argument("--rho", help=f"ρ of momentum or RMSProp: {other} ({_rule_defaults('rho')})")
    r.add_argument("--rho1", help=f"ρ₁ of Adam: {other} ({_rule_defaults('rho1')})")
    r.add_argument("--rho2", help=f"ρ₂ of Adam: {other} ({_rule_defaults('rho2')})")
    r.add_argument("--eps", help=f"ε: {other} ({_rule_defaults('eps')})")
    r.add_argument("--damping", help=f"Newton's damping λ: {other} ({_rule_defaults('damping')})")
    r.add_argument("--no-bias-correction", action="store_true", help="Adam without ŝ, r̂ (E5)")
    r.add_argument("--steps", type=int, default=300 if sweep else 500, help="the step budget T")
    r.add_argument("--tol", type=float, default=1e-6, help="the target: f − f* < tol")
    r.add_argument(
        "--start",
        action="append",
        help="a start point 'x,y', repeatable (default: the landscape's own starts)",
    )
    what = "a heatmap over the first two swept values" if sweep else "the paths on the contours"
    r.add_argument("--plot", help=f"draw {what} to this file (.png, .pdf, .svg; default: none)")
    r.add_argument(
        "--json",
        action="store_true",
        help="print the numbers as JSON: one row per configuration"
        if sweep
        else "print the numbers as JSON: one row per trajectory",
    )


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="firstorder",
        description="The notes' optimizers, obstacles and claims.\n"
        "`firstorder COMMAND --help` explains a command, with examples.",
        epilog=_examples(
            "firstorder tour --quick                 # every claim measured: out/report.html",
            "firstorder run canyon --optimizer gd --lr 0.4",
            "firstorder serve --open                 # the playground in the browser",
        ),
        formatter_class=_Help,
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    t = _sub(
        sub,
        "tour",
        "run every experiment and write the HTML report",
        "Run the experiment of every claim of the notes and write report.html (the verdicts, "
        "figures and numbers), results.json and figures/ into --out.",
        "firstorder tour --quick               # about half a minute on 2 cores",
        "firstorder tour --only C6,C8a --out c6",
    )
    t.add_argument("--quick", action="store_true", help="small sizes: about half a minute")
    t.add_argument("--out", default="out", help="output folder")
    t.add_argument("--seed", type=int, default=0, help="the seed of every random draw")
    t.add_argument("--only", help="comma-separated ids, for example C6,C8a (default: all)")
    _add_jobs(t)
    t.set_defaults(func=cmd_tour)

    c = _sub(
        sub,
        "claims",
        "the verdict table in the terminal",
        "Print the table of claims and verdicts: measured now, or read from a tour's "
        "results.json with --from (nothing reruns).",
        "firstorder claims --from out/results.json",
        "firstorder claims --quick --only C6,C8a",
        "firstorder claims --quick --json",
    )
    c.add_argument(
        "--from",
        dest="from_results",
        help="a tour's results.json: print it, run nothing (default: run the experiments)",
    )
    c.add_argument("--quick", action="store_true", help="small sizes: about half a minute")
    c.add_argument(
        "--json", action="store_true", help='print [{"id","claim","verdict","evidence"}]'
    )
    c.add_argument("--only", help="comma-separated ids, for example C6,C8a (default: all)")
    c.add_argument("--seed", type=int, default=0, help="the seed of every random draw")
    c.add_argument("--out", help="keep figures and results here (default: discarded)")
    _add_jobs(c)
    c.set_defaults(func=cmd_claims)

    la = _sub(
        sub,
        "landscapes",
        "the obstacle course: names, obstacles, minima",
        "List the landscapes of the obstacle course (canyons, flat areas, saddles, local "
        "minima): their names for run and sweep, dimension, minima and what each shows.",
        "firstorder landscapes",
        "firstorder landscapes --json",
    )
    la.add_argument("--json", action="store_true", help="print the list as JSON")
    la.set_defaults(func=cmd_landscapes)

    r = _sub(
        sub,
        "run",
        "one optimizer on a landscape: where each start ends",
        "Run one optimizer from each start point of a landscape and print, per trajectory, "
        "where it ended: the target reached at step k, diverged at step k (a non-finite value "
        "or far outside the map), escaped at step k (a surface unbounded below), or still "
        "going after --steps.",
        "firstorder run canyon --optimizer gd --lr 0.4",
        "firstorder run canyon --optimizer gd --lr 0.4,0.6 --plot paths.png",
        "firstorder run rosenbrock --optimizer momentum --lr 1e-3 --rho 0.9 --start=-1.2,1",
    )
    _add_run_options(r, sweep=False)
    r.set_defaults(func=cmd_run)

    sw = _sub(
        sub,
        "sweep",
        "a grid of hyperparameters: success and divergence per configuration",
        "Run every combination of the given hyperparameter values (A:B:N ranges or comma "
        "lists) from the landscape's starts and print one row per configuration: the share "
        "of starts that reached the target, their median steps, the share that diverged, and "
        "the median final gap f − f*.",
        "firstorder sweep canyon --optimizer gd --lr 0.1,0.5,0.99,1.1",
        "firstorder sweep rosenbrock --optimizer adam --lr 1e-3:0.5:9 --rho1 0,0.5,0.9,0.99 "
        "--steps 2000 --plot sweep.png",
    )
    _add_run_options(sw, sweep=True)
    sw.set_defaults(func=cmd_sweep)

    ca = _sub(
        sub,
        "cards",
        "Anki cards of the findings, in the notes' format",
        "Write one study card per finding: Markdown in the notes' Obsidian_to_Anki syntax "
        "and an Anki package, figures beside them.",
        "firstorder cards --from out/results.json",
        "firstorder cards --quick --out cards --format obsidian",
    )
    ca.add_argument("--quick", action="store_true", help="small sizes: about half a minute")
    ca.add_argument("--out", default="cards", help="output folder")
    ca.add_argument("--format", default="both", help="obsidian, apkg or both")
    ca.add_argument(
        "--from", dest="from_results", help="an existing results.json of a tour (default: run one)"
    )
    ca.add_argument("--only", help="comma-separated ids, for example C6,C8a (default: all)")
    ca.add_argument("--seed", type=int, default=0, help="the seed of every random draw")
    _add_jobs(ca)
    ca.set_defaults(func=cmd_cards)

    se = _sub(
        sub,
        "serve",
        "the playground: watch the optimizers in the browser",
        "Serve the playground on 127.0.0.1: pick a landscape, switch optimizers on, move "
        "their sliders and watch the paths. Ctrl-C stops it.",
        "firstorder serve --open",
        "firstorder serve --port 9000",
    )
    se.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1")
    se.add_argument("--open", action="store_true", help="open the page in the web browser")
    se.set_defaults(func=cmd_serve)

    tr = _sub(
        sub,
        "train",
        "train the notes' network on an offline data set",
        "Train the network of the notes (E8) with one or more optimizers from the same "
        "initialization and data order, and print the final risks and accuracy.",
        "firstorder train --data digits --optimizer adam --epochs 20",
        "firstorder train --optimizer adam --optimizer momentum --optimizer gd --plot curves.png",
    )
    tr.add_argument("--data", default="digits", help="digits, mnist1d, xor, spirals or teacher")
    tr.add_argument("--layers", default="64,128,10", help="widths n₀,n₁,…,n_L")
    tr.add_argument("--activation", default="relu", help="identity, relu, tanh or sigmoid")
    tr.add_argument("--optimizer", action="append", help="repeat to compare (default: adam)")
    tr.add_argument(
        "--lr",
        type=float,
        help="α (default: gd 0.1, momentum 0.01, adagrad 0.01, rmsprop 0.001, adam 0.001)",
    )
    tr.add_argument("--epochs", type=int, default=20, help="passes over the training set")
    tr.add_argument(
        "--batch-size",
        type=int,
        default=64,
        help="minibatch size; 0, or the training set's size or more, is the full batch",
    )
    tr.add_argument("--seed", type=int, default=0, help="the seed of the weights and the order")
    tr.add_argument(
        "--plot", help="draw the loss curves to this file (.png, .pdf, .svg; default: none)"
    )
    tr.add_argument("--json", action="store_true", help="print every record as JSON")
    tr.add_argument("--no-progress", action="store_true", help="no progress bars")
    tr.set_defaults(func=cmd_train)
    return p


def _check_outputs(args: argparse.Namespace) -> None:
    """``--out`` and ``--plot`` can be written: checked before any work, not after it."""
    from firstorder.files import check_writable
    from firstorder.plots import check_suffix

    if getattr(args, "out", None):
        check_writable(args.out, "--out", folder=True)
    if getattr(args, "plot", None):
        check_suffix(args.plot, "--plot")
        check_writable(args.plot, "--plot", folder=False)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(stderr=bool(getattr(args, "json", False)))
    try:
        _check_outputs(args)
        return args.func(args, console)
    except (UsageError, ValueError, TypeError) as err:
        print(f"firstorder {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a full disk, a read-only folder: files.WriteError names the file
        print(f"firstorder {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; what finished is kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
