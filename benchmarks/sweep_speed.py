"""The batched engine against a Python loop over torch.optim.Adam instances, in one run.

    python benchmarks/sweep_speed.py [--configs 10000] [--steps 1000] [--sample 20] [--scaling]

Both run Adam on Rosenbrock from a grid of start × α × ρ₁ configurations. The batched engine
runs all of them as one tensor program (firstorder.run); the loop gives each configuration its
own parameter and torch.optim.Adam. The loop is timed on a sample of configurations and
extrapolated linearly to all of them (the cost of a loop is the same for every configuration);
the printout says so.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from firstorder import landscapes
from firstorder.run import run


def grid(configs: int) -> tuple[torch.Tensor, list[float], list[float]]:
    """About ``configs`` configurations: starts × α × ρ₁ (a cube of equal sides)."""
    side = max(1, round(configs ** (1 / 3)))
    n_starts = max(1, configs // (side * side))
    gen = torch.Generator().manual_seed(0)
    starts = torch.rand(n_starts, 2, generator=gen, dtype=torch.float64) * 4 - 2
    lrs = torch.logspace(-4, -1, side).tolist()
    rho1s = torch.linspace(0.0, 0.99, side).tolist()
    return starts, lrs, rho1s


def batched(f, starts, lrs, rho1s, steps: int) -> float:
    t0 = time.perf_counter()
    run(f, "adam", starts=starts, steps=steps, lr=lrs, rho1=rho1s, record="final")
    return time.perf_counter() - t0


def loop(f, starts, lrs, rho1s, steps: int, sample: int) -> float:
    """Seconds per configuration of the loop over torch.optim.Adam, timed on ``sample``."""
    configs = [(s, lr, r) for s in starts for lr in lrs for r in rho1s][:sample]
    t0 = time.perf_counter()
    for x0, lr, rho1 in configs:
        theta = x0.clone().requires_grad_()
        opt = torch.optim.Adam([theta], lr=lr, betas=(rho1, 0.999), eps=1e-8)
        for _ in range(steps):
            opt.zero_grad()
            f(theta).backward()
            opt.step()
    return (time.perf_counter() - t0) / len(configs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--sample", type=int, default=20, help="loop configurations timed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scaling", action="store_true", help="also 10³ … 10⁶ configurations")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    f = landscapes.get("rosenbrock")

    starts, lrs, rho1s = grid(args.configs)
    n = len(starts) * len(lrs) * len(rho1s)
    print(
        f"# Adam on Rosenbrock, {n:,} configurations ({len(starts)} starts × {len(lrs)} α × "
        f"{len(rho1s)} ρ₁) × {args.steps} steps, float64, {args.threads} threads, "
        f"torch {torch.__version__}, {platform.machine()}"
    )
    t_batch = batched(f, starts, lrs, rho1s, args.steps)
    per_config = loop(f, starts, lrs, rho1s, args.steps, args.sample)
    t_loop = per_config * n
    work = n * args.steps
    print(f"firstorder.run (batched)  {t_batch:10.2f} s  {work / t_batch:14,.0f} config·steps/s")
    print(
        f"loop of torch.optim.Adam  {t_loop:10.2f} s  {work / t_loop:14,.0f} config·steps/s  "
        f"(timed on {args.sample} configurations, extrapolated linearly to {n:,})"
    )
    print(f"ratio: the batched engine is {t_loop / t_batch:,.0f}x faster")

    if args.scaling:
        print("\n# scaling of the batched engine (100 steps each)")
        for exp in range(3, 7):
            s, lr, r = grid(10**exp)
            m = len(s) * len(lr) * len(r)
            t = batched(f, s, lr, r, 100)
            print(f"{m:>10,} configurations  {t:8.2f} s  {m * 100 / t:14,.0f} config·steps/s")


if __name__ == "__main__":
    main()
