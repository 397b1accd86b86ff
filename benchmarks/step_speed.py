"""Time of one optimizer step: firstorder.optim against every torch.optim path, in one run.

    python benchmarks/step_speed.py [--values 20_000_000] [--tensors 100] [--threads 2]

Float32 CPU parameters with fixed random gradients. Prints, for each method, the median step
time of each implementation and the ratio ours / fastest torch path.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from firstorder import optim

# (our optimizer, torch optimizer class, torch kwargs, torch paths offered)
METHODS = {
    "Momentum": (
        lambda p, c: optim.Momentum(p, lr=1e-3, rho=0.9, compile=c),
        torch.optim.SGD,
        dict(lr=1e-3, momentum=0.9),
        ("for-loop", "foreach", "fused"),
    ),
    "AdaGrad": (
        lambda p, c: optim.AdaGrad(p, lr=1e-3, compile=c),
        torch.optim.Adagrad,
        dict(lr=1e-3, eps=1e-7),
        ("for-loop", "foreach", "fused"),
    ),
    "RMSProp": (
        lambda p, c: optim.RMSProp(p, lr=1e-3, compile=c),
        torch.optim.RMSprop,
        dict(lr=1e-3, alpha=0.9, eps=1e-6),
        ("for-loop", "foreach"),
    ),
    "Adam": (
        lambda p, c: optim.Adam(p, lr=1e-3, compile=c),
        torch.optim.Adam,
        dict(lr=1e-3),
        ("for-loop", "foreach", "fused"),
    ),
}

PATH_KWARGS = {
    "for-loop": dict(foreach=False),
    "foreach": dict(foreach=True),
    "fused": dict(fused=True),
}


def make_params(values: int, tensors: int, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    n = values // tensors
    params = []
    for _ in range(tensors):
        p = torch.randn(n, generator=gen).requires_grad_()
        p.grad = torch.randn(n, generator=gen) * 1e-2
        params.append(p)
    return params


def time_interleaved(opts: dict[str, torch.optim.Optimizer], repeats: int) -> dict[str, float]:
    """Median step time of each optimizer, measured in turns (one step of each, repeated), so
    that a slow moment of the machine falls on all of them alike."""
    for opt in opts.values():
        for _ in range(3):  # warm up: state allocated, caches and allocator settled
            opt.step()
    times: dict[str, list[float]] = {name: [] for name in opts}
    for _ in range(repeats):
        for name, opt in opts.items():
            t0 = time.perf_counter()
            opt.step()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=20_000_000)
    parser.add_argument("--tensors", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--only", default=",".join(METHODS), help="comma-separated methods")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    print(
        f"# step time, float32 CPU, {args.values:,} values in {args.tensors} tensors, "
        f"{args.threads} threads, torch {torch.__version__}, {platform.machine()}"
    )
    print(f"{'method':<10} {'implementation':<22} {'ms/step':>9} {'ours/this':>10}")
    for name in args.only.split(","):
        ours, torch_cls, kwargs, paths = METHODS[name]
        compiled = ours(make_params(args.values, args.tensors), True)
        t0 = time.perf_counter()
        compiled.step()  # compiles: the first step with k = 1
        compiled.step()  # and the one that makes k symbolic
        t_compile = time.perf_counter() - t0
        opts = {
            "plain": ours(make_params(args.values, args.tensors), False),
            "compiled": compiled,
            **{
                path: torch_cls(
                    make_params(args.values, args.tensors), **kwargs, **PATH_KWARGS[path]
                )
                for path in paths
            },
        }
        measured = time_interleaved(opts, args.repeats)
        t_ours, t_fast = measured.pop("plain"), measured.pop("compiled")
        results = measured
        fastest = min(results, key=results.get)
        print(f"{name:<10} {'firstorder':<22} {t_ours * 1e3:9.2f} {'':>10}")
        print(f"{'':<10} {'firstorder compile=True':<22} {t_fast * 1e3:9.2f} {'':>10}")
        for path, t in results.items():
            label = f"torch {path}" + (" (fastest)" if path == fastest else "")
            print(f"{'':<10} {label:<22} {t * 1e3:9.2f} {t_ours / t:9.2f}x")
        best = results[fastest]
        print(
            f"{'':<10} ours / fastest torch: plain {t_ours / best:.2f}x, compiled "
            f"{t_fast / best:.2f}x (first two steps, compiling: {t_compile:.1f} s)"
        )


if __name__ == "__main__":
    main()
