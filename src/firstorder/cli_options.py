"""The options more than one command shares, and the text the user typed read as values.

``--lr 1e-4:1:9`` (a range: N values from A to B), ``--rho 0,0.5,0.9`` (a comma list) or one
number become lists of floats for run and sweep; ``--jobs`` is a whole number >= 1. A mistake
raises :class:`UsageError`, one sentence that ``cli.main`` prints before it exits with status 2.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from firstorder import rules
from firstorder.errors import UserValueError

# the numeric hyperparameters (flags that take values) and the yes/no switches (flag pairs
# --NAME / --no-NAME), both read from rules.HYPERPARAMETERS: a new one gets its flag there
HYPER = tuple(n for n, h in rules.HYPERPARAMETERS.items() if not h.switch)
SWITCHES = tuple(n for n, h in rules.HYPERPARAMETERS.items() if h.switch)


class UsageError(UserValueError):
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


def hyper_values(args: argparse.Namespace, *, log_lr: bool) -> dict[str, object]:
    """The hyperparameter flags given, as run() takes them: one value a float, several a list."""
    hyper: dict[str, object] = {}
    for name in HYPER:
        text = getattr(args, name, None)
        if text is not None:
            values = parse_values(name, text, log=log_lr and name == "lr")
            hyper[name] = values[0] if len(values) == 1 else values
    for name in SWITCHES:
        value = getattr(args, name, None)
        if value is not None:  # None: not given, the rule's default holds
            hyper[name] = value
    return hyper


def _jobs(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def add_jobs(parser: argparse.ArgumentParser) -> None:
    cpus = os.cpu_count() or 1
    parser.add_argument(
        "--jobs",
        type=_jobs,
        default=cpus,
        help=f"experiments run at once, each in its own process (default: {cpus}, the CPUs)",
    )


def _landscape_names() -> str:
    from firstorder import landscapes

    return ", ".join(landscapes.names())


def _rule_defaults(name: str) -> str:
    """ "default: …" of hyperparameter ``name`` in every rule that has it, from rules.py."""
    have = {r: rules.get(r).hyper[name] for r in rules.names() if name in rules.get(r).hyper}
    given = [f"{r} {v:g}" for r, v in have.items() if v is not None]
    needed = [r for r, v in have.items() if v is None]
    if len(set(have.values())) == 1 and not needed:
        return f"default: {next(iter(have.values())):g}"
    return "default: " + ", ".join(
        given + ([f"required for {', '.join(needed)}"] if needed else [])
    )


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _used_by(name: str) -> str:
    """The labels of the rules that take hyperparameter ``name``, for its help text."""
    return ", ".join(r.label for r in rules.RULES.values() if name in r.hyper)


def add_hyper_options(parser: argparse.ArgumentParser, *, sweep: bool) -> None:
    """One flag for each hyperparameter of rules.HYPERPARAMETERS, its help from the spec:
    the notes' symbol, its meaning, the rules that take it and their defaults. A switch
    (Adam's bias correction) becomes the pair --NAME / --no-NAME."""
    grid = "A:B:N (N values from A to B{}), a comma list a,b,c or one value"
    for name, h in rules.HYPERPARAMETERS.items():
        if h.switch:
            continue
        if sweep:
            values = grid.format(", log-spaced" if name == "lr" else ", evenly spaced")
        else:
            values = "one value or a comma list a,b,c"
        parser.add_argument(
            _flag(name),
            help=f"{h.symbol}: {values}; {h.meaning} of {_used_by(name)}, "
            f"{h.allowed} ({_rule_defaults(name)})",
        )
    for name in SWITCHES:
        h = rules.HYPERPARAMETERS[name]
        defaults = {
            "on" if r.hyper[name] else "off" for r in rules.RULES.values() if name in r.hyper
        }
        parser.add_argument(
            _flag(name),
            action=argparse.BooleanOptionalAction,
            default=None,  # not given: each rule's own default
            help=f"{h.meaning} ({h.symbol}) on or off, for {_used_by(name)} "
            f"(default: {' or '.join(sorted(defaults))})",
        )


def train_lr_help() -> str:
    """The help of ``firstorder train --lr``: each rule's usual α for training (Rule.train_lr)."""
    usual = [f"{r.name} {r.train_lr:g}" for r in rules.RULES.values() if r.train_lr is not None]
    return f"α (default: {', '.join(usual)})"


def add_run_options(r: argparse.ArgumentParser, *, sweep: bool) -> None:
    r.add_argument("landscape", help=f"one of: {_landscape_names()}")
    r.add_argument("--optimizer", required=True, help=", ".join(rules.names()))
    add_hyper_options(r, sweep=sweep)
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
