"""The tour's report: one self-contained HTML page (figures embedded, no network needed)."""

from __future__ import annotations

import base64
import json
from collections import Counter
from html import escape
from pathlib import Path

from firstorder.experiments import Finding

COLOURS = {"holds": "#1a7f37", "partly": "#9a6700", "fails": "#cf222e", "error": "#6e7781"}

STYLE = """
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1080px;
       margin: 2em auto; padding: 0 1em; color: #1f2328; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2.2em; border-bottom: 1px solid #d0d7de; }
table.verdicts { border-collapse: collapse; width: 100%; }
table.verdicts td, table.verdicts th { border-bottom: 1px solid #d0d7de; padding: 6px 8px;
       text-align: left; vertical-align: top; }
.badge { display: inline-block; padding: 1px 10px; border-radius: 10px; color: white;
         font-weight: 600; font-size: 0.9em; }
blockquote { border-left: 4px solid #d0d7de; margin: 0.5em 0; padding: 0.2em 1em;
             color: #57606a; font-style: italic; }
.criterion { background: #f6f8fa; padding: 0.6em 1em; border-radius: 6px; }
img { max-width: 100%; border: 1px solid #eaeef2; margin: 0.5em 0; }
pre { background: #f6f8fa; padding: 1em; overflow-x: auto; font-size: 0.85em; }
.muted { color: #57606a; } a { color: #0969da; }
"""


def badge(verdict: str) -> str:
    colour = COLOURS.get(verdict, "#6e7781")
    return f'<span class="badge" style="background:{colour}">{escape(verdict)}</span>'


def embed(path: Path) -> str:
    """An <img> carrying the PNG itself, so the page needs no other file."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{escape(path.stem)}" src="data:image/png;base64,{data}">'


def section(f: Finding) -> str:
    figures = "\n".join(embed(Path(p)) for p in f.figures)
    conditions = f"<p><b>Holds when:</b> {escape(f.conditions)}</p>" if f.conditions.strip() else ""
    numbers = escape(json.dumps(f.numbers, indent=1, ensure_ascii=False))
    return f"""
<section id="{escape(f.id)}">
<h2>{escape(f.id)} · {escape(f.title)} {badge(f.verdict)}</h2>
<blockquote>“{escape(f.claim)}”</blockquote>
<p class="criterion"><b>Criterion, stated before the run:</b> {escape(f.criterion)}</p>
<p><b>Measured:</b> {escape(f.evidence)}</p>
{conditions}
{figures}
<p>{escape(f.explanation)}</p>
<details><summary>All numbers ({f.seconds:.1f} s)</summary><pre>{numbers}</pre></details>
</section>"""


def html(findings: list[Finding], *, quick: bool, seed: int, seconds: float) -> str:
    """The whole page: the verdict table on top, then one section per claim and reproduction."""
    claims = [f for f in findings if f.kind == "claim"]
    reproductions = [f for f in findings if f.kind != "claim"]
    counts = Counter(f.verdict for f in claims)
    summary = ", ".join(
        f"{counts[v]} {v}" for v in ("holds", "partly", "fails", "error") if counts[v]
    )
    rows = "\n".join(
        f'<tr><td><a href="#{escape(f.id)}">{escape(f.id)}</a></td><td>{escape(f.title)}</td>'
        f"<td>{badge(f.verdict)}</td><td>{escape(f.evidence)}</td></tr>"
        for f in claims + reproductions
    )
    mode = "quick" if quick else "full"
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>firstorder: what the notes claim, measured</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{STYLE}</style></head>
<body>
<h1>What the notes claim, measured</h1>
<p class="muted">firstorder tour, {mode} mode, seed {seed}, {seconds:.0f} s.
Each statement of the notes was turned into an experiment on the real optimizers, with a
criterion fixed before the run; the verdict is computed from the measured numbers.
Claims: {escape(summary) or "none yet"}.</p>
<table class="verdicts">
<tr><th>id</th><th>statement</th><th>verdict</th><th>evidence</th></tr>
{rows}
</table>
{"<h1>Claims</h1>" if claims else ""}
{"".join(section(f) for f in claims)}
{"<h1>Published results, reproduced</h1>" if reproductions else ""}
{"".join(section(f) for f in reproductions)}
</body></html>
"""
