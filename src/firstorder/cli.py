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

This module is the parser (every command and its options) and ``main``, which turns a user's
mistake into that one line. The commands' work is in ``tour_cli`` (tour, claims, cards),
``landscapes_cli`` (landscapes, run, sweep) and ``train_cli`` (train); the options several
commands share, and the reading of ranges and lists, in ``cli_options``.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Sequence

from rich.console import Console

from firstorder.cli_options import (
    UsageError,
    add_jobs,
    add_run_options,
    parse_values,
    train_lr_help,
)
from firstorder.errors import UserError
from firstorder.landscapes_cli import cmd_landscapes, cmd_run, cmd_sweep
from firstorder.tour_cli import cmd_cards, cmd_claims, cmd_tour

# what other modules and the tests import from here; the commands live in the modules above
__all__ = ["UsageError", "build_parser", "main", "parse_values"]


# --- the commands whose work is in a module of their own -------------------------------------


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
    _add_tour(sub)
    _add_claims(sub)
    _add_landscapes(sub)
    _add_run(sub)
    _add_sweep(sub)
    _add_cards(sub)
    _add_serve(sub)
    _add_train(sub)
    return p


# The options of the commands that run the experiments (tour, claims, cards): one wording each.
def _quick(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="small sizes: about half a minute")


def _only(p: argparse.ArgumentParser) -> None:
    p.add_argument("--only", help="comma-separated ids, for example C6,C8a (default: all)")


def _seed(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="the seed of every random draw")


# --- one builder per command, in the order of `firstorder --help` ------------------------------


def _add_tour(sub: argparse._SubParsersAction) -> None:
    p = _sub(
        sub,
        "tour",
        "run every experiment and write the HTML report",
        "Run the experiment of every claim of the notes and write report.html (the verdicts, "
        "figures and numbers), results.json and figures/ into --out.",
        "firstorder tour --quick               # about half a minute on 2 cores",
        "firstorder tour --only C6,C8a --out c6",
    )
    _quick(p)
    p.add_argument("--out", default="out", help="output folder")
    _seed(p)
    _only(p)
    add_jobs(p)
    p.set_defaults(func=cmd_tour)


def _add_claims(sub: argparse._SubParsersAction) -> None:
    p = _sub(
        sub,
        "claims",
        "the verdict table in the terminal",
        "Print the table of claims and verdicts: measured now, or read from a tour's "
        "results.json with --from (nothing reruns).",
        "firstorder claims --from out/results.json",
        "firstorder claims --quick --only C6,C8a",
        "firstorder claims --quick --json",
    )
    p.add_argument(
        "--from",
        dest="from_results",
        help="a tour's results.json: print it, run nothing (default: run the experiments)",
    )
    _quick(p)
    p.add_argument(
        "--json", action="store_true", help='print [{"id","claim","verdict","evidence"}]'
    )
    _only(p)
    _seed(p)
    p.add_argument("--out", help="keep figures and results here (default: discarded)")
    add_jobs(p)
    p.set_defaults(func=cmd_claims)


def _add_landscapes(sub: argparse._SubParsersAction) -> None:
    p = _sub(
        sub,
        "landscapes",
        "the obstacle course: names, obstacles, minima",
        "List the landscapes of the obstacle course (canyons, flat areas, saddles, local "
        "minima): their names for run and sweep, dimension, minima and what each shows.",
        "firstorder landscapes",
        "firstorder landscapes --json",
    )
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=cmd_landscapes)


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = _sub(
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
    add_run_options(p, sweep=False)
    p.set_defaults(func=cmd_run)


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    p = _sub(
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
    add_run_options(p, sweep=True)
    p.set_defaults(func=cmd_sweep)


def _add_cards(sub: argparse._SubParsersAction) -> None:
    p = _sub(
        sub,
        "cards",
        "Anki cards of the findings, in the notes' format",
        "Write one study card per finding: Markdown in the notes' Obsidian_to_Anki syntax "
        "and an Anki package, figures beside them.",
        "firstorder cards --from out/results.json",
        "firstorder cards --quick --out cards --format obsidian",
    )
    _quick(p)
    p.add_argument("--out", default="cards", help="output folder")
    p.add_argument("--format", default="both", help="obsidian, apkg or both")
    p.add_argument(
        "--from", dest="from_results", help="an existing results.json of a tour (default: run one)"
    )
    _only(p)
    _seed(p)
    add_jobs(p)
    p.set_defaults(func=cmd_cards)


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = _sub(
        sub,
        "serve",
        "the playground: watch the optimizers in the browser",
        "Serve the playground on 127.0.0.1: pick a landscape, switch optimizers on, move "
        "their sliders and watch the paths. Ctrl-C stops it.",
        "firstorder serve --open",
        "firstorder serve --port 9000",
    )
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1")
    p.add_argument("--open", action="store_true", help="open the page in the web browser")
    p.set_defaults(func=cmd_serve)


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = _sub(
        sub,
        "train",
        "train the notes' network on an offline data set",
        "Train the network of the notes (E8) with one or more optimizers from the same "
        "initialization and data order, and print the final risks and accuracy.",
        "firstorder train --data digits --optimizer adam --epochs 20",
        "firstorder train --optimizer adam --optimizer momentum --optimizer gd --plot curves.png",
    )
    p.add_argument("--data", default="digits", help="digits, mnist1d, xor, spirals or teacher")
    p.add_argument("--layers", default="64,128,10", help="widths n₀,n₁,…,n_L")
    p.add_argument("--activation", default="relu", help="identity, relu, tanh or sigmoid")
    p.add_argument("--optimizer", action="append", help="repeat to compare (default: adam)")
    p.add_argument(
        "--lr",
        type=float,
        help=train_lr_help(),
    )
    p.add_argument("--epochs", type=int, default=20, help="passes over the training set")
    p.add_argument(
        "--batch-size",
        type=int,
        default=64,
        help="minibatch size; 0, or the training set's size or more, is the full batch",
    )
    p.add_argument("--seed", type=int, default=0, help="the seed of the weights and the order")
    p.add_argument(
        "--plot", help="draw the loss curves to this file (.png, .pdf, .svg; default: none)"
    )
    p.add_argument("--json", action="store_true", help="print every record as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)


def _check_outputs(args: argparse.Namespace) -> None:
    """``--out`` and ``--plot`` can be written: checked before any work, not after it."""
    from firstorder.files import check_writable
    from firstorder.plots import check_suffix

    if getattr(args, "out", None) is not None:  # "" too: it is not a folder anyone means
        check_writable(args.out, "--out", folder=True)
    if getattr(args, "plot", None) is not None:
        check_suffix(args.plot, "--plot")
        check_writable(args.plot, "--plot", folder=False)


def _figures_to_files() -> None:
    """The commands write figures to files and never show them: matplotlib's Agg backend,
    which needs no display, for this process and the tour's worker processes (they inherit
    MPLBACKEND). Chosen here, not on importing :mod:`firstorder.plots`; a backend the user set
    in MPLBACKEND is kept."""
    if os.environ.get("MPLBACKEND"):
        return
    os.environ["MPLBACKEND"] = "agg"
    if "matplotlib" in sys.modules:  # imported already: it read MPLBACKEND before it was set
        sys.modules["matplotlib"].use("agg")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status.

    A user's mistake (:class:`firstorder.errors.UserError`, or a malformed option value) is one
    line and status 2; a file that cannot be written or read (``OSError``, with
    :class:`firstorder.files.WriteError` naming the file) one line and status 1. Any other
    exception is a bug in firstorder and keeps its traceback, so that it can be reported.
    """
    args = build_parser().parse_args(argv)
    console = Console(stderr=bool(getattr(args, "json", False)))
    _figures_to_files()
    try:
        _check_outputs(args)
        return args.func(args, console)
    except (UserError, UsageError) as err:
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
