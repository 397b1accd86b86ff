"""The batched engine against JAX + Optax (and a Python loop of torch.optim.Adam), in one run.

    python benchmarks/sweep_speed.py [--quick] [--size sweep,large,playground]
                                     [--engines eager,compiled,jax,loop] [--rounds 3]

Adam on Rosenbrock, float64, from a grid of start × α × ρ₁ configurations, on the three
workloads of issue 23: ``sweep`` (9,680 configurations × 1,000 steps), ``large`` (1,003,520 ×
200) and ``playground`` (11 α × 5 starts × 500 steps); ``--quick`` divides the steps by 10 and
the large workload's starts by 10. The engines:

- ``eager``: ``firstorder.run(..., record="final")``;
- ``compiled``: the same with ``compile=True`` (compiled before timing, by ``warm_up``): each
  trajectory's steps as one C++ loop (``firstorder.kernels.lanes``);
- ``jax``: JAX + Optax, ``optax.adam`` vmapped over (start, α, ρ₁), ``jax.jit`` over a
  ``lax.scan`` of the steps (compiled before timing; JAX compiles again for each workload's
  shape, which is not timed either). Needs the ``[bench]`` extra; skipped with a note without;
- ``loop``: a Python loop of ``torch.optim.Adam``, timed on ``--sample`` configurations and
  extrapolated linearly (the printout says so).

The engines run in turns, ``--rounds`` times, and the best time of each is kept, so that a
machine loaded by other jobs slows them alike. One thread for torch and for XLA (``--threads``).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from collections.abc import Callable

import numpy as np
import torch

from firstorder import landscapes
from firstorder.run import run, warm_up

# workload: (starts, α values, ρ₁ values, steps)
WORKLOADS = {
    "sweep": (20, 22, 22, 1000),
    "large": (2074, 22, 22, 200),
    "playground": (5, 11, 1, 500),
}


def ms(seconds: float) -> str:
    """Milliseconds to three significant digits at least (0.873, 85.7, 1,426.3)."""
    return f"{seconds * 1e3:,.{max(1, 2 - math.floor(math.log10(seconds * 1e3)))}f}"


def grid(n_starts: int, n_lr: int, n_rho1: int) -> tuple[torch.Tensor, list, list]:
    """Starts in [−2, 2]², α log-spaced in [10⁻⁴, 10⁻¹], ρ₁ in [0, 0.99] (0.9 if one value)."""
    gen = torch.Generator().manual_seed(0)
    starts = torch.rand(n_starts, 2, generator=gen, dtype=torch.float64) * 4 - 2
    lrs = torch.logspace(-4, -1, n_lr, dtype=torch.float64).tolist()
    rho1s = torch.linspace(0.0, 0.99, n_rho1).tolist() if n_rho1 > 1 else [0.9]
    return starts, lrs, rho1s


def torch_engine(compile: bool) -> Callable:
    """A timed run of ``firstorder.run`` (compiled beforehand with ``compile``)."""
    f = landscapes.get("rosenbrock")

    def timed(starts, lrs, rho1s, steps: int) -> float:
        if compile:
            warm_up(f, [("adam", {})], wait=True, record="final")
        kw = dict(starts=starts, lr=lrs, rho1=rho1s, record="final", compile=compile)
        run(f, "adam", steps=min(steps, 10), **kw)  # not timed, as JAX's first call is not
        t0 = time.perf_counter()
        r = run(f, "adam", steps=steps, **kw)
        t = time.perf_counter() - t0
        return t, r.final_x.transpose(0, 1).reshape(-1, 2)  # in (start, α, ρ₁) order

    return timed


def jax_engine() -> Callable | None:
    """A timed run of JAX + Optax, or None where JAX is not installed."""
    try:
        import jax
        import optax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy

    def f(x):
        return 100.0 * (x[1] - x[0] ** 2) ** 2 + (1.0 - x[0]) ** 2

    def one(x0, lr, rho1, steps):
        opt = optax.adam(lr, b1=rho1, b2=0.999, eps=1e-8)

        def step(carry, _):
            x, state = carry
            updates, state = opt.update(jax.grad(f)(x), state)
            return (optax.apply_updates(x, updates), state), None

        (x, _), _ = jax.lax.scan(step, (x0, opt.init(x0)), length=steps)
        return x

    batched = jax.vmap(one, in_axes=(0, 0, 0, None))
    compiled = jax.jit(batched, static_argnums=3)

    def timed(starts, lrs, rho1s, steps: int) -> float:
        combos = [(b, lr, r) for b in range(len(starts)) for lr in lrs for r in rho1s]
        b, lr, r = (list(column) for column in zip(*combos))
        args = (jnp.asarray(starts[b].numpy()), jnp.asarray(lr), jnp.asarray(r))
        compiled(*args, steps).block_until_ready()  # compiles for this shape: not timed
        t0 = time.perf_counter()
        x = compiled(*args, steps).block_until_ready()
        return time.perf_counter() - t0, torch.from_numpy(np.array(x))

    return timed


def loop_engine(sample: int) -> Callable:
    """A Python loop of torch.optim.Adam, timed on ``sample`` configurations, extrapolated."""
    f = landscapes.get("rosenbrock")

    def timed(starts, lrs, rho1s, steps: int) -> float:
        configs = [(s, lr, r) for s in starts for lr in lrs for r in rho1s]
        t0 = time.perf_counter()
        for x0, lr, rho1 in configs[:sample]:
            theta = x0.clone().requires_grad_()
            opt = torch.optim.Adam([theta], lr=lr, betas=(rho1, 0.999), eps=1e-8)
            for _ in range(steps):
                opt.zero_grad()
                f(theta).backward()
                opt.step()
        return (time.perf_counter() - t0) / min(sample, len(configs)) * len(configs), None

    return timed


def measure(engines: dict, sizes: list[str], quick: bool, rounds: int) -> dict:
    """The best of ``rounds`` seconds per (workload, engine), the engines in turns."""
    best: dict[tuple[str, str], float] = {}
    for size in sizes:
        n_starts, n_lr, n_rho1, steps = WORKLOADS[size]
        if quick:
            steps = max(1, steps // 10)
            n_starts = max(1, n_starts // 10) if size == "large" else n_starts
        work = grid(n_starts, n_lr, n_rho1)
        finals = {}
        for _ in range(rounds):
            for name, timed in engines.items():
                t, finals[name] = timed(*work, steps)
                best[size, name] = min(best.get((size, name), float("inf")), t)
        n = n_starts * n_lr * n_rho1
        cells = " | ".join(f"{ms(best[size, e])} ms" for e in engines)
        print(f"| {size}: {n:,} configurations × {steps} steps | {cells} |", flush=True)
        agreement(size, finals)
    return best


def agreement(size: str, finals: dict) -> None:
    """How many trajectories end at the same x in every engine (to 1e-6: the engines order
    their float64 operations differently, and a trajectory that diverges is frozen by
    firstorder.run at its bound while the others go on)."""
    done = {name: x for name, x in finals.items() if x is not None}
    if len(done) < 2:
        return
    (first, x0), *others = done.items()
    for name, x in others:
        same = ((x - x0).abs().amax(-1) <= 1e-6 * (1 + x0.abs().amax(-1))).float().mean()
        print(f"  {size}: {name} ends where {first} does on {same:.1%} of trajectories")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="sweep,large,playground", help="workloads, by name")
    parser.add_argument("--engines", default="eager,compiled,jax", help="eager,compiled,jax,loop")
    parser.add_argument("--quick", action="store_true", help="a tenth of the steps")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sample", type=int, default=20, help="loop configurations timed")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    sizes, names = args.size.split(","), args.engines.split(",")
    for name in sizes:
        if name not in WORKLOADS:
            parser.error(f"--size must name workloads of {', '.join(WORKLOADS)}, got {name!r}")
    torch.set_num_threads(args.threads)
    if args.threads == 1:  # XLA's CPU backend on one thread as well, before jax is imported
        os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    makers = {
        "eager": lambda: torch_engine(False),
        "compiled": lambda: torch_engine(True),
        "jax": jax_engine,
        "loop": lambda: loop_engine(args.sample),
    }
    engines = {}
    for name in names:
        if name not in makers:
            parser.error(f"--engines must name engines of {', '.join(makers)}, got {name!r}")
        engine = makers[name]()
        if engine is None:
            print(f"note: the {name} column is skipped: jax and optax are not installed "
                  "(pip install -e '.[bench]')")  # fmt: skip
        else:
            engines[name] = engine
    print(
        f"# Adam on Rosenbrock, float64, {args.threads} thread(s), best of {args.rounds} "
        f"rounds in turns, torch {torch.__version__}, {platform.machine()}\n"
        f"| workload | {' | '.join(engines)} |\n|---|{'---|' * len(engines)}"
    )
    best = measure(engines, sizes, args.quick, args.rounds)
    for size in sizes:
        for a in (e for e in engines if e in ("eager", "compiled")):
            if "jax" in engines:
                ratio = best[size, a] / best[size, "jax"]
                print(f"ratio ({size}): {a} takes {ratio:.2f}x the time of jax")
            if "loop" in engines:
                ratio = best[size, "loop"] / best[size, a]
                print(f"ratio ({size}): the loop takes {ratio:,.0f}x the time of {a}")


if __name__ == "__main__":
    main()
