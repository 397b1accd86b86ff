"""The ``firstorder`` command.

    firstorder tour [--quick] [--out DIR]
    firstorder claims [--quick] [--json] [--only C6,C8a]
    firstorder landscapes [--json]
    firstorder run LANDSCAPE --optimizer NAME [--lr A] [--rho R] ... [--plot FILE] [--json]
    firstorder sweep LANDSCAPE --optimizer NAME --lr A:B:N [--rho A:B:N] [--plot FILE] [--json]
    firstorder train --data NAME --layers 64,128,10 --activation relu --optimizer NAME [...]
    firstorder cards [--quick] [--out DIR] [--format obsidian|apkg|both] [--from results.json]
    firstorder serve [--port 8765] [--open]

A user's mistake (an unknown name, a value out of range, a malformed range) prints one line
and exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

HYPER = ("lr", "rho", "rho1", "rho2", "eps", "damping")


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
        table.add_column(c)
    for row in rows:
        table.add_row(*(_fmt(v) for v in row))
    return table


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
    from firstorder.tour import run_tour

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


def _only(args: argparse.Namespace) -> list[str] | None:
    return args.only.split(",") if getattr(args, "only", None) else None


def _print_verdicts(findings, console: Console) -> None:
    colours = {"holds": "green", "partly": "yellow", "fails": "red"}
    table = Table(title="The notes' claims, measured", show_lines=False)
    for c in ("id", "statement", "verdict", "evidence"):
        table.add_column(c, overflow="fold")
    for f in findings:
        style = colours.get(f.verdict, "magenta")
        table.add_row(f.id, f.title, f"[{style}]{f.verdict}[/{style}]", f.evidence)
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
                f"{result.optimizer} on {f.name}, {result.steps} steps, target f−f* < {args.tol:g}",
                ("config", "start", "final f", "f − f*", "steps to target", "diverged at"),
                [
                    (
                        ", ".join(f"{k}={v:g}" for k, v in result.config(c).items()),
                        ", ".join(f"{v:.3g}" for v in result.starts[b].tolist()),
                        float(result.final_f[c, b]),
                        float(result.final_f[c, b] - f.f_star) if f.minima else None,
                        _count(result.steps_to_target[c, b]),
                        _count(result.diverged_at[c, b]),
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


def _count(v) -> int | None:
    v = int(v)
    return v if v >= 0 else None


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
        keys = [k for k in rows[0] if k not in ("bias_correction",)]
        console.print(
            _table(
                f"{result.optimizer} on {f.name}: {result.configs} configurations × "
                f"{result.starts.shape[0]} starts, {args.steps} steps",
                keys,
                [[r[k] for k in keys] for r in rows],
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
        findings, results_dir = load(results), results.parent
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


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="firstorder", description="The notes' optimizers, obstacles and claims.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("tour", help="run every experiment and write the HTML report")
    t.add_argument("--quick", action="store_true", help="small sizes: about a minute")
    t.add_argument("--out", default="out", help="output folder (default: out)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--only", help="comma-separated ids, for example C6,C8a")
    _add_jobs(t)
    t.set_defaults(func=cmd_tour)

    c = sub.add_parser("claims", help="the verdict table")
    c.add_argument("--quick", action="store_true")
    c.add_argument("--json", action="store_true", help='[{"id","claim","verdict","evidence"}]')
    c.add_argument("--only", help="comma-separated ids, for example C6,C8a")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", help="keep figures and results here (default: discarded)")
    _add_jobs(c)
    c.set_defaults(func=cmd_claims)

    la = sub.add_parser("landscapes", help="the obstacle course")
    la.add_argument("--json", action="store_true")
    la.set_defaults(func=cmd_landscapes)

    for name, func, helptext in (
        ("run", cmd_run, "run one optimizer on a landscape"),
        ("sweep", cmd_sweep, "sweep hyperparameters A:B:N on a landscape"),
    ):
        r = sub.add_parser(name, help=helptext)
        r.add_argument("landscape")
        r.add_argument(
            "--optimizer", required=True, help="gd, momentum, adagrad, rmsprop, adam, newton"
        )
        r.add_argument("--lr", help="α (sweep: A:B:N is log-spaced)")
        r.add_argument("--rho", help="ρ of momentum or RMSProp")
        r.add_argument("--rho1", help="ρ₁ of Adam")
        r.add_argument("--rho2", help="ρ₂ of Adam")
        r.add_argument("--eps", help="ε")
        r.add_argument("--damping", help="Newton's damping λ")
        r.add_argument("--no-bias-correction", action="store_true", help="Adam without ŝ, r̂")
        r.add_argument("--steps", type=int, default=500 if name == "run" else 300)
        r.add_argument("--tol", type=float, default=1e-6, help="target: f − f* < tol")
        r.add_argument("--start", action="append", help="start point 'x,y' (repeatable)")
        r.add_argument("--plot", help="draw to this file (.png, .pdf, .svg, …)")
        r.add_argument("--json", action="store_true")
        r.set_defaults(func=func)

    ca = sub.add_parser("cards", help="Anki cards of the findings, in the notes' format")
    ca.add_argument("--quick", action="store_true")
    ca.add_argument("--out", default="cards", help="output folder (default: cards)")
    ca.add_argument("--format", default="both", help="obsidian, apkg or both (default)")
    ca.add_argument("--from", dest="from_results", help="an existing results.json of a tour")
    ca.add_argument("--only", help="comma-separated ids, for example C6,C8a")
    ca.add_argument("--seed", type=int, default=0)
    _add_jobs(ca)
    ca.set_defaults(func=cmd_cards)

    se = sub.add_parser("serve", help="the playground: watch the optimizers in the browser")
    se.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default: 8765)")
    se.add_argument("--open", action="store_true", help="open the page in the web browser")
    se.set_defaults(func=cmd_serve)

    tr = sub.add_parser("train", help="train the notes' network on an offline data set")
    tr.add_argument("--data", default="digits", help="digits, mnist1d, xor, spirals, teacher")
    tr.add_argument("--layers", default="64,128,10", help="widths n₀,n₁,…,n_L")
    tr.add_argument("--activation", default="relu", help="identity, relu, tanh, sigmoid")
    tr.add_argument("--optimizer", action="append", help="repeat to compare (default: adam)")
    tr.add_argument("--lr", type=float, help="α (default: each optimizer's usual value)")
    tr.add_argument("--epochs", type=int, default=20)
    tr.add_argument("--batch-size", type=int, default=64, help="0 for full batch")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--plot", help="draw the loss curves to this file (.png, .pdf, .svg, …)")
    tr.add_argument("--json", action="store_true")
    tr.add_argument("--no-progress", action="store_true")
    tr.set_defaults(func=cmd_train)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(stderr=bool(getattr(args, "json", False)))
    try:
        return args.func(args, console)
    except (UsageError, ValueError, TypeError) as err:
        print(f"firstorder {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; what finished is kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
