"""``firstorder tour``, ``claims`` and ``cards``: the claims' experiments at the command line.

``tour`` runs every experiment and writes the HTML report; ``claims`` prints the verdict table,
measured now or read from a tour's results.json; ``cards`` writes a study card per finding.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from firstorder.cli_options import UsageError
from firstorder.files import to_json


def cmd_tour(args: argparse.Namespace, console: Console) -> int:
    from firstorder.tour import run_tour

    t0 = time.perf_counter()
    findings = run_tour(
        args.out, quick=args.quick, seed=args.seed, only=_only(args), jobs=args.jobs
    )
    _print_verdicts(findings, console)
    slow = sorted(findings, key=lambda f: -f.seconds)
    console.print(
        "time per experiment: " + ", ".join(f"{f.id} {f.seconds:.1f}s" for f in slow),
        style="dim",
    )
    console.print(
        f"\n{len(findings)} findings in {time.perf_counter() - t0:.0f} s. "
        f"Report: [bold]{Path(args.out) / 'report.html'}[/bold]  "
        f"(numbers: {Path(args.out) / 'results.json'}, figures: {Path(args.out) / 'figures'})"
    )
    return 0


def cmd_claims(args: argparse.Namespace, console: Console) -> int:
    from firstorder.tour import load, run_tour, select

    if args.from_results:  # a tour's results, printed as they are: nothing reruns
        findings = [_finding(d) for d in load(args.from_results)]
        if args.only:  # an unknown id is the same error as without --from; "c8a" names C8a
            wanted = {e.id for e in select(_only(args))}  # _only refuses an unknown id
            findings = [f for f in findings if f.id in wanted]
    else:
        with tempfile.TemporaryDirectory() as tmp:
            out = args.out or tmp
            findings = run_tour(
                out,
                quick=args.quick,
                seed=args.seed,
                only=_only(args),
                progress=not args.json,
                jobs=args.jobs,
            )
    if args.json:
        rows = [
            {"id": f.id, "claim": f.claim, "verdict": f.verdict, "evidence": f.evidence}
            for f in findings
        ]
        print(to_json(rows, indent=1, ensure_ascii=False))
    else:
        _print_verdicts(findings, console)
    return 0


def _finding(d: dict):
    """A Finding from one entry of results.json (fields a newer version added are dropped)."""
    from dataclasses import fields

    from firstorder.experiments import Finding

    known = {f.name for f in fields(Finding)}
    return Finding(**{k: v for k, v in d.items() if k in known})


def _only(args: argparse.Namespace) -> list[str] | None:
    """The ids of ``--only``, checked before anything runs (None: every experiment)."""
    if not getattr(args, "only", None):
        return None
    from firstorder import experiments
    from firstorder.tour import select

    ids = args.only.split(",")
    try:
        select(ids)
    except ValueError:
        known = ", ".join(e.id for e in experiments.all_experiments())
        raise UsageError(f"--only must list ids of {known}; got {args.only!r}.") from None
    return ids


def _print_verdicts(findings, console: Console) -> None:
    colours = {"holds": "green", "partly": "yellow", "fails": "red"}
    table = Table(title="The notes' claims, measured", show_lines=False)
    for c in ("id", "statement", "verdict", "what was measured"):
        table.add_column(c, overflow="fold")
    for f in findings:
        style = colours.get(f.verdict, "magenta")
        said = f.takeaway or f.evidence  # the one plain sentence, where the finding has one
        table.add_row(f.id, f.title, f"[{style}]{f.verdict}[/{style}]", said)
    console.print(table)


def cmd_cards(args: argparse.Namespace, console: Console) -> int:
    from firstorder import cards
    from firstorder.tour import load, run_tour

    out = Path(args.out)
    if args.from_results:
        results = Path(args.from_results)
        findings, results_dir = cards.check(load(results), results), results.parent
    else:
        results_dir = out / "tour"
        run_tour(results_dir, quick=args.quick, seed=args.seed, only=_only(args), jobs=args.jobs)
        findings = load(results_dir / "results.json")
    if not findings:
        raise UsageError("results must hold at least one finding, got none.")
    for path in cards.write_cards(findings, results_dir, out, args.format):
        console.print(f"{len(findings)} cards: {path}")
    return 0
