"""The tour: run every experiment, keep every finding, write the report.

``results.json`` and ``report.html`` are rewritten (atomically) after each finding, so a tour
stopped half-way, by Ctrl-C or a crash in one experiment, still leaves a valid report of what
finished. An experiment that raises becomes a finding with the error, never a lost tour; so
does one whose worker process dies (killed for memory, a crash in native code): the
experiments that were waiting run again, one worker at a time, until the one that kills its
process is found.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from firstorder import experiments, report
from firstorder.errors import UserValueError
from firstorder.experiments import Context, Experiment, Finding
from firstorder.files import from_json, old_non_finite_as_null, to_json, write_atomic


def select(only: Iterable[str] | None = None) -> list[Experiment]:
    """The experiments to run: all of them, or those whose ids are listed in ``only``."""
    if not only:
        return experiments.all_experiments()
    return [experiments.get(i.strip()) for i in only if i.strip()]


def run_tour(
    out: str | Path = "out",
    *,
    quick: bool = True,
    seed: int = 0,
    only: Iterable[str] | None = None,
    progress: bool = True,
    console: Console | None = None,
    jobs: int = 1,
) -> list[Finding]:
    """Run the experiments into ``out``: report.html, results.json and figures/*.png.

    ``jobs`` > 1 runs that many experiments at once, each in its own process (every experiment
    runs on one thread and seeds its own generators, so the numbers do not depend on ``jobs``).
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise UserValueError(f"jobs must be a whole number >= 1, got {jobs!r}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    chosen = select(only)
    console = console or Console(stderr=True)
    done: dict[int, Finding] = {}  # position in the tour -> finding
    started = time.perf_counter()

    def finished(i: int, finding: Finding) -> None:
        done[i] = finding
        findings = [done[j] for j in sorted(done)]  # the tour's order, whatever finished first
        save(findings, out, quick=quick, seed=seed, seconds=time.perf_counter() - started)

    # n/N done, then the experiments running now
    columns = (
        MofNCompleteColumn(),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=console, disable=not progress, transient=True) as bar:
        task = bar.add_task("tour", total=len(chosen))
        if jobs == 1 or len(chosen) < 2:
            for i, exp in enumerate(chosen):
                bar.update(task, description=f"{exp.id:<4} {exp.title}")
                finished(i, _run_one(exp, Context(quick=quick, seed=seed, out=out)))
                bar.advance(task)
        else:
            _run_parallel(
                chosen, Context(quick=quick, seed=seed, out=out), jobs, finished, bar, task
            )
    return [done[j] for j in sorted(done)]


def _run_parallel(
    chosen: list[Experiment],
    ctx: Context,
    jobs: int,
    finished: Callable[[int, Finding], None],
    bar: Progress,
    task: TaskID,
) -> None:
    pending, workers = list(range(len(chosen))), min(jobs, len(chosen))
    while pending:
        lost = _run_pool([chosen[i] for i in pending], ctx, workers, finished, bar, task, pending)
        if lost and workers == 1:
            # one worker runs the experiments in order: the first lost one killed it
            culprit, lost = lost[0], lost[1:]
            finished(culprit, _died(chosen[culprit]))
            bar.advance(task)
        pending, workers = lost, 1


def _run_pool(
    chosen: list[Experiment],
    ctx: Context,
    workers: int,
    finished: Callable[[int, Finding], None],
    bar: Progress,
    task: TaskID,
    positions: list[int],
) -> list[int]:
    """Run ``chosen`` (at ``positions`` in the tour) on a pool of ``workers`` processes; return
    the positions whose findings were lost because a worker process died, in order."""
    # spawn, not fork: a forked child of a process whose torch thread pools already started
    # can hang
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        initializer=_worker_init,
        initargs=(os.getpid(),),
    )
    lost = []
    try:
        with _terminate_as_interrupt():
            futures = {pool.submit(_run_by_id, e.id, ctx): i for i, e in zip(positions, chosen)}
            names = {future: e for future, e in zip(futures, chosen)}

            def running() -> str:
                """The experiments in flight: their ids, and the title when only one is left."""
                now = [names[f] for f in futures if f.running()]
                if not now and not any(f.done() for f in futures):  # the pool is still starting
                    now = chosen[:workers]
                if not now:
                    return ""
                if len(now) == 1:
                    return f"running {now[0].id} {now[0].title}"
                return "running " + ", ".join(e.id for e in now)

            bar.update(task, description=running())
            for future in as_completed(futures):
                try:
                    finding = future.result()
                except BrokenProcessPool:  # a worker died: every experiment not finished is lost
                    lost.append(futures[future])
                    continue
                finished(futures[future], finding)
                bar.update(task, advance=1, description=running())
    except BaseException:
        # Ctrl-C, SIGTERM, an error: the findings so far are saved; the workers stop now, not
        # after their experiments (which would go on writing figures)
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.kill()  # before shutdown, which forgets them
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return sorted(lost)


PR_SET_PDEATHSIG = 1  # linux/prctl.h: the signal a process gets when its parent dies


def _worker_init(parent: int) -> None:
    """A worker process lives only as long as its tour: on Linux the kernel kills it when the
    tour's process dies, however it dies (kill -9 too). Ctrl-C is the tour's to handle: it
    stops the workers itself (a terminal sends SIGINT to every process of the group).
    Its figures go to files: matplotlib's Agg backend, which needs no display."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        # strictly: when the thread that started this worker ends; that is the thread running
        # the tour, which waits for its workers
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the tour died before prctl took effect
        os._exit(1)
    import matplotlib

    matplotlib.use("agg")


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a killed job, a closed session) stops the tour as Ctrl-C does: what finished is
    kept and the workers are stopped. Only the main thread can handle signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_by_id(experiment_id: str, ctx: Context) -> Finding:
    """One experiment in a worker process (an Experiment holds functions; its id travels)."""
    return _run_one(experiments.get(experiment_id), ctx)


def _died(exp: Experiment) -> Finding:
    """The finding of an experiment whose worker process died while running it."""
    return _error_finding(
        exp,
        "its worker process died (killed for memory, or a crash in native code)",
        "The tour ran the experiment alone in a fresh process, and that process ended "
        "without a result; the other experiments ran on.",
        0.0,
    )


def _error_finding(exp: Experiment, evidence: str, explanation: str, seconds: float) -> Finding:
    return Finding.of(
        exp,
        verdict="error",
        evidence=evidence,
        conditions="",
        explanation=explanation,
        numbers={},
        figures=[],
        seconds=seconds,
    )


def _run_one(exp: Experiment, ctx: Context) -> Finding:
    t0 = time.perf_counter()
    try:
        return experiments.run_experiment(exp, ctx)
    except KeyboardInterrupt:
        raise
    except Exception as err:  # one broken experiment must not lose the others
        return _error_finding(
            exp,
            f"the experiment raised {type(err).__name__}: {err}",
            _innermost(err),
            time.perf_counter() - t0,
        )


TRACEBACK_FRAMES = 8  # the innermost frames: where it failed, not the tour's own calls into it


def _innermost(err: BaseException) -> str:
    """The traceback of ``err`` cut to its innermost TRACEBACK_FRAMES frames: the line that
    raised and the experiment's code that led to it (the outermost frames are the tour's and
    are the same for every experiment)."""
    return "".join(traceback.format_exception(err, limit=-TRACEBACK_FRAMES))


def save(findings: list[Finding], out: Path, *, quick: bool, seed: int, seconds: float) -> None:
    """Write results.json and report.html for the findings so far, each atomically."""
    results = {
        "mode": "quick" if quick else "full",
        "seed": seed,
        # an experiment's numbers may still hold the strings "inf" and "nan" of the old
        # format (experiments.base made them so): null too, as every non-finite number
        "findings": [old_non_finite_as_null(_relative(f.to_json(), out)) for f in findings],
    }
    write_atomic(out / "results.json", to_json(results, indent=1, ensure_ascii=False))
    write_atomic(
        out / "report.html", report.html(findings, quick=quick, seed=seed, seconds=seconds)
    )


def _relative(finding: dict, out: Path) -> dict:
    finding["figures"] = [str(Path(p).relative_to(out)) for p in finding["figures"]]
    return finding


def load(path: str | Path) -> list[dict]:
    """The findings of a results.json written by a tour (an earlier version's "inf" strings for
    non-finite numbers are read as null, as a tour writes them now)."""
    path = Path(path)
    try:
        data = from_json(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise UserValueError(
            f"results file {str(path)!r} must be UTF-8 JSON, got other bytes."
        ) from None
    except (OSError, json.JSONDecodeError) as err:
        msg = f"results file must be a tour's results.json, got {str(path)!r}: {err}."
        raise UserValueError(msg) from None
    if not isinstance(data, dict) or not isinstance(data.get("findings"), list):
        raise UserValueError(
            f"results file {str(path)!r} must be an object with a list of findings, as a tour "
            f'writes it ({{"findings": [...]}}), got {json.dumps(data)[:40]}.'
        )
    return data["findings"]
