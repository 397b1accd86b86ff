"""How long the playground takes to redraw after a slider move, measured in a real browser.

    python benchmarks/playground_latency.py [--moves 15] [--steps 500] [--no-compile]

Starts ``firstorder serve`` in a process of its own on a free localhost port, opens the page in
Debian's headless chromium (Playwright, no browser download) with 4 optimizers (GD, momentum,
RMSProp, Adam) × 5 starts × ``--steps`` steps on Rosenbrock, moves each optimizer's α slider
until the server answers from compiled kernels only, the observation and the rule (they compile
in the background from the page's first request), then moves Adam's α ``--moves`` times one
slider step (a drag, whose next positions the page asks the server to run ahead) and
``--moves`` times far (to values nothing computed yet), each after the page drew the previous
one. The page measures each update, from the slider's input event to the end of the redraw;
the script prints the median and the slowest, and where the time went: until the answer was
parsed (the server's run inside it), the redraw.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import time

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
STARTS = ["-1.2,1", "-1.5,2.5", "1.5,-0.5", "0.5,1.5", "-0.5,-0.5"]
OPTIMIZERS = ["gd,lr=0.001", "momentum,lr=0.001", "rmsprop,lr=0.01", "adam,lr=0.05"]


def serve(compile: bool) -> tuple[str, subprocess.Popen]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = (
        "import uvicorn, torch; from firstorder.serve.app import create_app; "
        "torch.set_num_threads(1); "  # as firstorder serve does
        f"uvicorn.run(create_app(compile={compile}), host='127.0.0.1', port={port}, "
        "log_level='error')"
    )
    server = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            assert time.monotonic() < deadline, "the server did not start in 60 s"
            time.sleep(0.1)
    return f"http://127.0.0.1:{port}", server


def move(page, log10_lr: float, optimizer: str = "adam") -> None:
    """Set an optimizer's α slider (log10 α, in steps of 0.01) and wait until the page drew the
    run."""
    n = int(page.evaluate("Number(document.body.dataset.runs || 0)"))
    page.fill(f"#{optimizer}-lr", f"{log10_lr:.2f}")
    drawn = f"Number(document.body.dataset.runs || 0) > {n}"
    page.wait_for_function(  # drawn, and no newer state waiting
        f"{drawn} && document.body.dataset.status === 'ready'",
        timeout=60_000,
        polling=5,
    )


def measure(page, positions) -> dict[str, list[float]]:
    """Move the slider through ``positions``; each update's times as the page measured them."""
    times: dict[str, list[float]] = {"page": [], "server": [], "answer": [], "draw": []}
    for position in positions:
        move(page, position)
        for name in times:
            times[name].append(float(page.evaluate(f"document.body.dataset.{name}Ms")))
    return times


def summary(label: str, t: dict[str, list[float]]) -> str:
    return (
        f"{label}: page updated after the move: median {statistics.median(t['page']):.0f} ms, "
        f"slowest {max(t['page']):.0f} ms; medians: answer received and parsed "
        f"{statistics.median(t['answer']):.0f} ms (the server's run "
        f"{statistics.median(t['server']):.0f} ms), redraw {statistics.median(t['draw']):.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=15)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--no-compile", action="store_true", help="eager observation and rules")
    args = parser.parse_args()
    url, server = serve(not args.no_compile)
    query = "&".join(
        [f"landscape=rosenbrock&steps={args.steps}"]
        + [f"opt={o}" for o in OPTIMIZERS]
        + [f"start={s}" for s in STARTS]
    )
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1460, "height": 900})
            page.goto(f"{url}/?{query}")
            page.wait_for_function("Number(document.body.dataset.runs || 0) > 0", timeout=120_000)
            position = -1.0  # Adam's α slider, moved last (log10 α)
            if not args.no_compile:
                for optimizer in OPTIMIZERS:  # each α moved until its answer came compiled
                    name, lr = optimizer.split(",lr=")
                    for i in range(1, 301):  # answered eagerly while the kernels compile
                        position = math.log10(float(lr)) - 0.01 * i
                        move(page, position, name)
                        if page.evaluate("document.body.dataset.kernels") == "compiled":
                            break
                    else:
                        raise AssertionError(f"{name}'s kernels did not compile")
            # a drag: one slider step at a time, each new (the positions ahead were prefetched)
            drag = measure(page, [position - 0.01 * j for j in range(1, args.moves + 1)])
            # jumps: each to a position no earlier request computed or prefetched
            jumps = measure(page, [-3.0 - 0.13 * j for j in range(args.moves)])
            browser.close()
    finally:
        server.terminate()
        server.wait()
    print(
        f"# playground, Rosenbrock, 4 optimizers × 5 starts × {args.steps} steps, Adam's α "
        f"slider moved {args.moves} times one step and {args.moves} times far; kernels "
        f"{'eager' if args.no_compile else 'compiled'}; {platform.machine()}, "
        f"{os.cpu_count()} CPUs, chromium headless"
    )
    print(summary("drag, one step at a time", drag))
    print(summary("jumps to new values", jumps))


if __name__ == "__main__":
    main()
