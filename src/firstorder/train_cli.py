"""``firstorder train``: the notes' network on an offline data set, one or more optimizers from
the same initialization, a final table, and optionally the loss curves."""

from __future__ import annotations

import argparse
import functools

import torch
from rich.console import Console
from rich.table import Table

from firstorder import data as datasets
from firstorder import plots, rules
from firstorder.errors import UserValueError
from firstorder.files import to_json
from firstorder.nn import MLP
from firstorder.optim import OPTIMIZERS
from firstorder.train import compare

# a usual starting α for each rule on a standardized data set, from rules.py (Rule.train_lr);
# the rules without one (Newton: its H has n² entries) are not offered for training
DEFAULT_LR = {n: r.train_lr for n, r in rules.RULES.items() if r.train_lr is not None}


def _widths(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        msg = f"--layers must be comma-separated widths like 64,128,10, got {text!r}."
        raise UserValueError(msg) from None


def _check(args: argparse.Namespace) -> list[str]:
    """The optimizers' names, after refusing a mistake in the options before anything runs."""
    names = [n.lower() for n in (args.optimizer or ["adam"])]
    for n in names:
        if n not in DEFAULT_LR:
            allowed = ", ".join(DEFAULT_LR)
            raise UserValueError(f"--optimizer must be one of {allowed}, got {n!r}.")
    if args.epochs < 1:
        raise UserValueError(f"--epochs must be a positive integer, got {args.epochs}.")
    if args.plot:
        plots.check_suffix(args.plot, "--plot")  # before training, not after
    if args.data.lower() not in datasets.names():
        allowed = ", ".join(datasets.names())
        raise UserValueError(f"--data must be one of {allowed}, got {args.data!r}.")
    if args.batch_size < 0:
        raise UserValueError(
            f"--batch-size must be >= 0 (0: the full batch), got {args.batch_size}."
        )
    return names


def _train(args: argparse.Namespace, console: Console, names: list[str], data, widths) -> dict:
    """Each optimizer from the same initial network, data order and random state."""
    progress = not args.no_progress and not args.json
    # a minibatch as large as the training set is the full batch (xor has 4 examples)
    n_train = len(data.x_train)
    batch = args.batch_size if 0 < args.batch_size < n_train else None
    histories = {}
    rng = torch.get_rng_state()  # each optimizer's run starts from the same random state
    for i, n in enumerate(names, 1):
        lr = args.lr or DEFAULT_LR[n]
        if progress:  # the label of the bar below it
            console.print(f"[bold]{n}[/bold], α = {lr:g} ({i}/{len(names)})")
        torch.set_rng_state(rng)
        # compare() of one optimizer: the same initial network and data order for each
        histories.update(
            compare(
                lambda: MLP(widths, args.activation, seed=args.seed),
                {n: functools.partial(OPTIMIZERS[n], lr=lr)},
                data,
                epochs=args.epochs,
                batch_size=batch,
                seed=args.seed,
                log_every=max(1, n_train // (batch or n_train)),
                progress=progress,
            )
        )
    return histories


def _table(args: argparse.Namespace, histories: dict) -> Table:
    table = Table(
        title=f"{args.data}, network {args.layers} ({args.activation}), {args.epochs} epochs"
    )
    for c in ("optimizer", "α", "train risk", "test risk", "test accuracy", "note"):
        table.add_column(c)
    for n, h in histories.items():
        last = h.final
        acc = f"{last.test_accuracy:.1%}" if last.test_accuracy is not None else "—"
        table.add_row(
            n,
            f"{args.lr or DEFAULT_LR[n]:g}",
            f"{last.train_risk:.4g}",
            f"{last.test_risk:.4g}",
            acc,
            h.message or "",
        )
    return table


def main(args: argparse.Namespace, console: Console) -> int:
    names = _check(args)
    data = datasets.load(args.data, seed=args.seed)
    widths = _widths(args.layers)
    if widths[0] != data.n_features or widths[-1] != data.n_outputs:
        raise UserValueError(
            f"--layers must start with {data.n_features} inputs and end with {data.n_outputs} "
            f"outputs for {args.data}, got {args.layers}."
        )
    histories = _train(args, console, names, data, widths)
    if args.json:
        print(to_json({n: h.to_dict() for n, h in histories.items()}, indent=1))
    else:
        console.print(_table(args, histories))
    if args.plot:
        path = plots.save(loss_curves(histories, args.data), args.plot)
        console.print(f"plot: {path}")
    return 0


def loss_curves(histories: dict, title: str):
    """Train (solid) and test (dashed) risk over epochs, log scale, one colour an optimizer."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (name, h) in enumerate(histories.items()):
        colour = f"C{i}"
        ax.semilogy(h["epoch"], h["train_risk"], color=colour, label=f"{name} train")
        ax.semilogy(h["epoch"], h["test_risk"], color=colour, ls="--", label=f"{name} test")
    ax.set(xlabel="epoch", ylabel="risk R(θ)", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
