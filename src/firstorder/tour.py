"""The tour: run every experiment, keep every finding, write the report.

``results.json`` and ``report.html`` are rewritten (atomically) after each finding, so a tour
stopped half-way, by Ctrl-C or a crash in one experiment, still leaves a valid report of what
finished. An experiment that raises becomes a finding with the error, never a lost tour.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Iterable
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from firstorder import experiments, report
from firstorder.experiments import Context, Experiment, Finding
from firstorder.run import write_atomic


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
) -> list[Finding]:
    """Run the experiments into ``out``: report.html, results.json and figures/*.png."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    chosen = select(only)
    console = console or Console(stderr=True)
    findings: list[Finding] = []
    started = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not progress, transient=True) as bar:
        task = bar.add_task("tour", total=len(chosen))
        for exp in chosen:
            bar.update(task, description=f"{exp.id:<4} {exp.title}")
            findings.append(_run_one(exp, Context(quick=quick, seed=seed, out=out)))
            save(findings, out, quick=quick, seed=seed, seconds=time.perf_counter() - started)
            bar.advance(task)
    return findings


def _run_one(exp: Experiment, ctx: Context) -> Finding:
    t0 = time.perf_counter()
    try:
        return experiments.run_experiment(exp, ctx)
    except KeyboardInterrupt:
        raise
    except Exception as err:  # one broken experiment must not lose the others
        return Finding(
            id=exp.id,
            kind=exp.kind,
            title=exp.title,
            claim=exp.claim,
            criterion=exp.criterion,
            verdict="error",
            evidence=f"the experiment raised {type(err).__name__}: {err}",
            conditions="",
            explanation=traceback.format_exc(limit=3),
            numbers={},
            figures=[],
            seconds=time.perf_counter() - t0,
        )


def save(findings: list[Finding], out: Path, *, quick: bool, seed: int, seconds: float) -> None:
    """Write results.json and report.html for the findings so far, each atomically."""
    results = {
        "mode": "quick" if quick else "full",
        "seed": seed,
        "findings": [_relative(f.to_json(), out) for f in findings],
    }
    write_atomic(out / "results.json", json.dumps(results, indent=1, ensure_ascii=False))
    write_atomic(
        out / "report.html", report.html(findings, quick=quick, seed=seed, seconds=seconds)
    )


def _relative(finding: dict, out: Path) -> dict:
    finding["figures"] = [str(Path(p).relative_to(out)) for p in finding["figures"]]
    return finding


def load(path: str | Path) -> list[dict]:
    """The findings of a results.json written by a tour."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        msg = f"results file must be a tour's results.json, got {str(path)!r}: {err}."
        raise ValueError(msg) from None
    return data["findings"]
