"""Time per epoch of training a ReLU network on digits (64-128-10 unless ``--layers``):
firstorder.optim.Adam against torch.optim.Adam, and Adam(compile=True) against torch's
fused=True, in the identical loop, in one run.

    python benchmarks/train_speed.py [--epochs 3] [--repeats 5] [--threads 2] [--batch-size 64]
                                     [--layers 64,128,10] [--zero-grad none|zeros]

``--zero-grad zeros`` calls ``zero_grad(set_to_none=False)``, so that backward accumulates into
the gradients in place (for ``compile=True``, in its flat buffer) instead of making new ones.

Both optimizers start from the same initialization and see the same minibatches; only the
optimizer differs. Repeats alternate between the two, so a busy machine slows both alike. Prints
the median and min seconds per epoch of each, the time in ``step()`` alone, and the ratios
of each pair. The load average is printed too: on a busy machine trust the min.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from firstorder import data, optim
from firstorder.nn import MLP

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "firstorder.optim.Adam": lambda p: optim.Adam(p, lr=1e-3),
    "torch.optim.Adam": lambda p: torch.optim.Adam(p, lr=1e-3),  # its default path on CPU
    # flat buffers; below step.CompiledRule.min_numel values (the default network's 9,610)
    # the rule runs eagerly on them
    "Adam(compile=True)": lambda p: optim.Adam(p, lr=1e-3, compile=True),
    "torch Adam(fused=True)": lambda p: torch.optim.Adam(p, lr=1e-3, fused=True),
}


def epoch_seconds(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    x,
    y,
    batch_size: int,
    epochs: int,
    set_to_none: bool = True,
) -> tuple[float, float]:
    """Seconds per epoch of the plain loop (zero_grad, forward, loss, backward, step), and the
    part of it spent in ``opt.step()``."""
    gen = torch.Generator().manual_seed(0)
    in_step = 0.0
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), batch_size):
            batch = order[i : i + batch_size]
            opt.zero_grad(set_to_none=set_to_none)
            F.cross_entropy(model(x[batch]), y[batch]).backward()
            t = time.perf_counter()
            opt.step()
            in_step += time.perf_counter() - t
    return (time.perf_counter() - start) / epochs, in_step / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per timed repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--layers", default="64,128,10", help="widths, 64 in and 10 out")
    parser.add_argument("--zero-grad", choices=("none", "zeros"), default="none")
    args = parser.parse_args()
    widths = [int(w) for w in args.layers.split(",")]
    if widths[0] != 64 or widths[-1] != 10:
        parser.error(f"--layers must start with 64 and end with 10 for digits, got {args.layers}")
    torch.set_num_threads(args.threads)

    digits = data.load("digits", seed=0)
    x, y = digits.x_train, digits.y_train
    initial = MLP(widths, "relu", seed=0)
    n_params = sum(p.numel() for p in initial.parameters())
    steps = -(-len(y) // args.batch_size)

    def run(name: str) -> tuple[float, float]:
        model = copy.deepcopy(initial)
        return epoch_seconds(model, OPTIMIZERS[name](model.parameters()), x, y,
                             args.batch_size, args.epochs, args.zero_grad == "none")  # fmt: skip

    for name in OPTIMIZERS:  # warm-up: first-call allocations and lazy imports
        run(name)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in OPTIMIZERS}
    for _ in range(args.repeats):
        for name in OPTIMIZERS:
            times[name].append(run(name))

    print(
        f"# digits {len(y)} training examples, MLP {args.layers.replace(',', '-')} ReLU "
        f"({n_params:,} parameters), minibatch {args.batch_size} ({steps} steps/epoch), "
        f"zero_grad(set_to_none={args.zero_grad == 'none'}), {args.threads} threads, "
        f"{args.repeats} repeats × {args.epochs} epochs, torch {torch.__version__}, "
        f"{platform.machine()}, load {os.getloadavg()[0]:.1f}"
    )
    print(f"{'optimizer':<24} {'median s/epoch':>15} {'min s/epoch':>12} {'step() µs':>10}")
    median, best, step = {}, {}, {}
    for name, t in times.items():
        median[name] = statistics.median(e for e, _ in t)
        best[name] = min(e for e, _ in t)
        step[name] = 1e6 * statistics.median(s for _, s in t) / steps
        print(f"{name:<24} {median[name]:15.4f} {best[name]:12.4f} {step[name]:10.1f}")
    for ours, theirs in (list(OPTIMIZERS)[:2], list(OPTIMIZERS)[2:]):
        print(
            f"ratio {ours} / {theirs}: {median[ours] / median[theirs]:.2f}x per epoch (median), "
            f"{best[ours] / best[theirs]:.2f}x (min), {step[ours] / step[theirs]:.2f}x per "
            "step() call"
        )


if __name__ == "__main__":
    main()
