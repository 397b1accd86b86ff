"""Time of one optimizer step: firstorder.optim against every torch.optim path, in one run.

    python benchmarks/step_speed.py [--threads 2] [--layouts 20000000x100,10000000x1000]
                                    [--only Adam,...] [--devices cpu,cuda] [--warm-cache]
                                    [--quick] [--no-fresh]

For each layout (values in tensors) and method, float32 parameters with fixed gradients: the
median ``step()`` time of our optimizer as a user makes it (the default, ``compile=None``,
once its background build is done), with ``compile=True`` and with ``compile=False``, of each
``torch.optim`` path (for-loop, foreach, fused where offered), and of a floor (a compiled loop
that moves the same bytes without the rule's arithmetic), measured in turns; the ratio ours /
fastest torch path; the fraction of the memory-bandwidth limit (the bytes a step must move,
divided by its time, against the faster of a large copy and a large in-place update, timed in
the same turns as the steps); the peak extra memory during a step, in units of θ (all
parameters); the first step's time, which compiles (with inductor's caches off unless
``--warm-cache``); and the step time when every step gets new gradient tensors (``zero_grad()``
then ``backward()``), which our flat buffers must first copy in; and the time of the first 100
steps in a fresh process (construction included, inductor's caches off), where the default
runs the plain rule while its kernel builds and ``compile=True`` waits for it. At the end, a
Markdown table of the whole run (the README's). On a CUDA device the same, against torch's
fused CUDA kernels. ``--quick``: Adam, smaller layouts, fewer repeats.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator

# The first step's compile time is only honest with inductor's on-disk caches off.
if "--warm-cache" not in sys.argv:
    os.environ["TORCHINDUCTOR_FORCE_DISABLE_CACHES"] = "1"
    # dynamo says once that this also turns its profile-guided recompilation off: as intended
    warnings.filterwarnings("ignore", message="dynamo_pgo force disabled")

import torch
from torch._C._profiler import _EventType
from torch.profiler import ProfilerActivity, profile

from firstorder import optim
from firstorder.kernels.trace import traced

# (our optimizer, torch optimizer class, torch kwargs, torch paths offered, state buffers)
METHODS = {
    "Momentum": (
        lambda p, c: optim.Momentum(p, lr=1e-3, rho=0.9, compile=c),
        torch.optim.SGD,
        dict(lr=1e-3, momentum=0.9),
        ("for-loop", "foreach", "fused"),
        1,
    ),
    "AdaGrad": (
        lambda p, c: optim.AdaGrad(p, lr=1e-3, compile=c),
        torch.optim.Adagrad,
        dict(lr=1e-3, eps=1e-7),
        ("for-loop", "foreach", "fused"),
        1,
    ),
    "RMSProp": (
        lambda p, c: optim.RMSProp(p, lr=1e-3, compile=c),
        torch.optim.RMSprop,
        dict(lr=1e-3, alpha=0.9, eps=1e-6),
        ("for-loop", "foreach"),
        1,
    ),
    "Adam": (
        lambda p, c: optim.Adam(p, lr=1e-3, compile=c),
        torch.optim.Adam,
        dict(lr=1e-3),
        ("for-loop", "foreach", "fused"),
        2,
    ),
}

PATH_KWARGS = {
    "for-loop": dict(foreach=False),
    "foreach": dict(foreach=True),
    "fused": dict(fused=True),
}


def make_params(values: int, tensors: int, device: str, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    n = values // tensors
    params = []
    for _ in range(tensors):
        p = torch.randn(n, generator=gen).to(device).requires_grad_()
        p.grad = (torch.randn(n, generator=gen) * 1e-2).to(device)
        params.append(p)
    return params


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def median_times(fns: dict, repeats: int, device: str, before=None) -> dict[str, float]:
    """Median time of each function, measured in turns (one call of each, repeated), so that a
    slow moment of the machine falls on all of them alike. Each turn starts one function
    further down the list, so that none always follows the same one (whose traces in the
    caches and the allocator it would otherwise always meet). ``before(name)`` runs untimed."""
    for fn in fns.values():
        for _ in range(3):  # warm up: state allocated, caches and allocator settled
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for turn in range(repeats):
        start = turn % len(names)
        for name in names[start:] + names[:start]:
            fn = fns[name]
            if before:
                before(name)
            synchronize(device)
            t0 = time.perf_counter()
            fn()
            synchronize(device)
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


REFERENCES = {"copy": 8, "in-place update": 12}  # bytes each moves per float32 value


def references(values: int, device: str) -> dict[str, object]:
    """The bandwidth references, a copy b ← a and an in-place update a ← a + b over ``values``
    float32 numbers (a copy's writes also read their cache lines first; the in-place update,
    like an optimizer step, writes only what it read). They are timed in the same turns as the
    steps, so that the machine's speed of the moment divides out of the fraction."""
    a = torch.randn(values, device=device)
    b = torch.randn(values, device=device)
    return {"copy": lambda: b.copy_(a), "in-place update": lambda: a.add_(b)}


def bandwidth(values: int, measured: dict[str, float]) -> float:
    """Bytes per second of the faster reference."""
    return max(REFERENCES[name] * values / measured[name] for name in REFERENCES)


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send what C++ code writes to stderr to /dev/null (the profiler logs each start and stop
    there); Python's own errors still show, after the block."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def peak_extra_bytes(step, device: str) -> int:
    """The most memory a step holds beyond what it started with: the CUDA allocator's peak, or
    on the CPU the running sum of every allocation and free torch's profiler records."""
    if device == "cuda":
        torch.cuda.synchronize()
        start = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - start
    with (
        native_stderr_silenced(),
        profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof,
    ):
        step()
    allocations, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        event = stack.pop()
        stack.extend(event.children)
        if event.tag == _EventType.Allocation:  # a free is an allocation of negative size
            allocations.append((event.start_time_ns, event.extra_fields.alloc_size))
    level = peak = 0
    for _, size in sorted(allocations):
        level += size
        peak = max(peak, level)
    return peak


FLOOR = "floor: same bytes"


def same_traffic(values: int, n_state: int, device: str):
    """A compiled loop that moves the bytes of a step of a rule with ``n_state`` state buffers
    (read θ, g and the state, write θ and the state) with no arithmetic to speak of: the time
    below which no implementation of the step can go on this machine."""

    def move(theta, g, *state):
        theta.add_(g)
        for buffer in state:
            buffer.add_(g)
        return ()

    flat = [torch.rand(values, device=device) for _ in range(2 + n_state)]
    loop = traced(move, *flat)
    return lambda: loop(*flat)


FRESH_STEPS = 100
FRESH_MODES = ("default", "compile=True", "torch fused")


def fresh_run(name: str, values: int, tensors: int, mode: str, device: str, threads: int) -> None:
    """In a process of its own: make the optimizer and take FRESH_STEPS steps; print seconds."""
    torch.set_num_threads(threads)
    ours, torch_cls, kwargs, paths, _ = METHODS[name]
    params = make_params(values, tensors, device)
    synchronize(device)
    t0 = time.perf_counter()
    if mode == "torch fused":
        path = "fused" if "fused" in paths else "foreach"
        opt = torch_cls(params, **kwargs, **PATH_KWARGS[path])
    else:
        opt = ours(params, True if mode == "compile=True" else None)
    for _ in range(FRESH_STEPS):
        opt.step()
    synchronize(device)
    print(time.perf_counter() - t0)


def fresh_times(name: str, values: int, tensors: int, device: str, threads: int) -> dict:
    """Seconds for the first FRESH_STEPS steps of each of FRESH_MODES, each in a new process
    (torch imported before the clock starts; the default's build still running at the end is
    not counted: the interpreter waits for it only at exit)."""
    times = {}
    for mode in FRESH_MODES:
        argv = [sys.executable, __file__, "--fresh-run", name, str(values), str(tensors), mode]
        argv += [device, str(threads)]
        done = subprocess.run(argv, capture_output=True, text=True, check=True)
        times[mode] = float(done.stdout.split()[-1])
    return times


def new_gradients_time(opts: dict, repeats: int, device: str) -> dict[str, float]:
    """Median step time when every step starts from new gradient tensors, as after
    ``zero_grad()`` and ``backward()`` (setting them is not timed)."""
    new = {k: [torch.randn_like(p) for p in o.param_groups[0]["params"]] for k, o in opts.items()}

    def give_new_gradients(label: str) -> None:
        for p, g in zip(opts[label].param_groups[0]["params"], new[label]):
            p.grad = g  # a tensor other than the one the last step left in p.grad

    return median_times({k: o.step for k, o in opts.items()}, repeats, device, give_new_gradients)


OURS, DEFAULT, PLAIN = "firstorder compile=True", "firstorder default", "firstorder compile=False"


def optimizers(name: str, values: int, tensors: int, device: str) -> tuple[dict, float]:
    """Each implementation of method ``name`` on its own copy of the parameters, every one past
    its first step's compile; and the time of compile=True's first step."""
    ours, torch_cls, kwargs, paths, _ = METHODS[name]
    fast = ours(make_params(values, tensors, device), True)
    synchronize(device)
    t0 = time.perf_counter()
    fast.step()  # builds the flat buffers and compiles
    synchronize(device)
    t_first = time.perf_counter() - t0
    default = ours(make_params(values, tensors, device), None)
    default._wait_for_kernels()  # after warm-up: the kernel is ready
    opts = {
        OURS: fast,
        DEFAULT: default,
        PLAIN: ours(make_params(values, tensors, device), False),
        **{
            f"torch {path}": torch_cls(
                make_params(values, tensors, device), **kwargs, **PATH_KWARGS[path]
            )
            for path in paths
        },
    }
    return opts, t_first


def measure_method(name: str, values: int, tensors: int, device: str, args, refs: dict) -> dict:
    """Time every implementation of ``name`` on one layout, print its rows, return a summary."""
    n_state = METHODS[name][4]
    bytes_per_step = (3 + 2 * n_state) * 4 * values  # read θ, g, state; write θ, state
    opts, t_first = optimizers(name, values, tensors, device)
    steps = {k: o.step for k, o in opts.items()}
    steps[FLOOR] = same_traffic(values, n_state, device)
    measured = median_times({**steps, **refs}, args.repeats, device)
    bw = bandwidth(values, measured)
    peers = {k: t for k, t in measured.items() if k.startswith("torch")}
    fastest = min(peers, key=peers.get)
    for label in steps:
        t = measured[label]
        peak = peak_extra_bytes(steps[label], device) / (4 * values)
        shown = label + (" (fastest)" if label == fastest else "")
        ratio = f"{measured[OURS] / t:8.2f}x" if label in peers or label == FLOOR else ""
        print(
            f"{name if label == OURS else '':<9} {shown:<24} {t * 1e3:8.2f} "
            f"{ratio:>9} {bytes_per_step / t / bw:8.0%} {peak:9.2f}θ"
        )
    t_new = new_gradients_time({k: opts[k] for k in (OURS, fastest)}, args.repeats, device)
    each = " and ".join(
        f"{ref} {REFERENCES[ref] * values / measured[ref] / 1e9:.1f}" for ref in REFERENCES
    )
    print(
        f"{'':<9} ours / fastest torch {measured[OURS] / peers[fastest]:.2f}x; "
        f"bandwidth reference (faster of {each} GB/s, in the same turns) "
        f"{bw / 1e9:.1f} GB/s; new gradient tensors every step: "
        f"{t_new[OURS] * 1e3:.2f} ms against {t_new[fastest] * 1e3:.2f} ms, "
        f"{t_new[OURS] / t_new[fastest]:.2f}x; first step (compiles) {t_first:.1f} s"
    )
    del opts, steps
    return dict(
        method=name,
        ours=measured[OURS],
        default=measured[DEFAULT],
        plain=measured[PLAIN],
        fastest=fastest.removeprefix("torch "),
        t_fastest=peers[fastest],
        floor=measured[FLOOR],
        fraction=bytes_per_step / measured[OURS] / bw,
    )


def run_layout(values: int, tensors: int, device: str, args, only: list[str]) -> list[dict]:
    """Measure each method of ``only`` on one layout; print its table and return one summary
    row per method (for the table in the README)."""
    layout = f"{values:,} values in {tensors:,} tensors"
    print(f"\n## {device}: float32, {layout}")
    print(
        f"{'method':<9} {'implementation':<24} {'ms/step':>8} {'ours/this':>9} "
        f"{'bandwidth':>9} {'peak extra':>10}"
    )
    refs = references(values, device)
    rows = []
    for name in only:
        row = measure_method(name, values, tensors, device, args, refs)
        fresh = fresh_times(name, values, tensors, device, args.threads) if args.fresh else {}
        if fresh:
            print(
                f"{'':<9} first {FRESH_STEPS} steps, fresh process: "
                + ", ".join(f"{m} {t:.2f} s" for m, t in fresh.items())
                + f"; default / torch fused {fresh['default'] / fresh['torch fused']:.2f}x, "
                f"compile=True / torch fused {fresh['compile=True'] / fresh['torch fused']:.2f}x"
            )
        rows.append({**row, "layout": layout, "fresh": fresh})
    return rows


def markdown(rows: list[dict]) -> str:
    """The README's table: ms per step, ours / fastest, bandwidth fraction."""
    lines = [
        "| method | layout | default | `compile=True` | `compile=False` | fastest `torch.optim` "
        "| floor | default / fastest | `compile=True` / fastest | bandwidth "
        f"| first {FRESH_STEPS} steps: default / fused | `compile=True` / fused |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fresh = r["fresh"]
        first = (
            f"{fresh['default'] / fresh['torch fused']:.2f}× "
            f"| {fresh['compile=True'] / fresh['torch fused']:.2f}×"
            if fresh
            else "| "
        )
        lines.append(
            f"| {r['method']} | {r['layout']} | {r['default'] * 1e3:.2f} | {r['ours'] * 1e3:.2f} "
            f"| {r['plain'] * 1e3:.2f} | {r['fastest']} {r['t_fastest'] * 1e3:.2f} "
            f"| {r['floor'] * 1e3:.2f} | {r['default'] / r['t_fastest']:.2f}× "
            f"| {r['ours'] / r['t_fastest']:.2f}× | {r['fraction']:.0%} | {first} |"
        )
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--fresh-run"]:
        name, values, tensors, mode, device, threads = sys.argv[2:8]
        return fresh_run(name, int(values), int(tensors), mode, device, int(threads))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layouts", default="20000000x100,10000000x1000", help="VALUESxTENSORS,…")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--only", default=",".join(METHODS), help="comma-separated methods")
    parser.add_argument("--devices", default="cpu,cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--warm-cache", action="store_true", help="keep inductor's caches on")
    parser.add_argument("--quick", action="store_true", help="Adam, small layouts, 5 repeats")
    parser.add_argument(
        "--no-fresh", dest="fresh", action="store_false", help="skip the fresh-process runs"
    )
    args = parser.parse_args()
    if args.quick:
        args.layouts, args.repeats, args.only = "2000000x100,1000000x1000", 5, "Adam"
    torch.set_num_threads(args.threads)
    only = args.only.split(",")
    for name in only:
        if name not in METHODS:
            parser.error(f"--only must name methods among {', '.join(METHODS)}, got {name!r}")
    print(
        f"# step time, torch {torch.__version__}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{args.threads} threads"
        + (f", {torch.cuda.get_device_name()}" if "cuda" in args.devices else "")
    )
    print(
        "# bandwidth: bytes the step must move / time, against the faster of a copy and an "
        "in-place update timed in the same turns"
    )
    print("# peak extra: memory a step holds beyond its start, in units of θ (all parameters)")
    for device in args.devices.split(","):
        rows = []
        for layout in args.layouts.split(","):
            values, tensors = (int(x) for x in layout.lower().split("x"))
            rows += run_layout(values, tensors, device, args, only)
        print(f"\n## {device}: summary (ms per step)\n\n{markdown(rows)}")


if __name__ == "__main__":
    main()
