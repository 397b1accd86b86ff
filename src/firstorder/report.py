"""The tour's report: one self-contained HTML page (figures embedded, no network needed).

The page opens with a summary table (id, claim, verdict, one number), then the notes'
equations E1–E10 (so a quote can be checked against its rule), then one section per finding:
its takeaway first, the quoted claim, the criterion fixed before the run, what was measured,
the figures, and every number, rounded and labelled.
"""

from __future__ import annotations

import base64
import math
import re
from collections import Counter
from html import escape
from pathlib import Path

from firstorder.experiments import Finding

COLOURS = {"holds": "#1a7f37", "partly": "#9a6700", "fails": "#cf222e", "error": "#6e7781"}

# The notes' equations as CLAIMS.md numbers them, in the notes' symbols (plain Unicode: the page
# needs no network, so no MathJax).
EQUATIONS = {
    "E1": ("gradient descent", "θ ← θ − α g"),
    "E2": ("momentum, ρ ∈ [0, 1)", "s ← ρ s − α g ;  θ ← θ + s"),
    "E3": ("AdaGrad", "r ← r + g⊙g ;  θ ← θ − α g / (√r + ε)"),
    "E4": ("RMSProp", "r ← ρ r + (1−ρ) g⊙g ;  θ ← θ − α g / (√r + ε)"),
    "E5": (
        "Adam, step k = 1, 2, …",
        "s ← ρ₁ s + (1−ρ₁) g ;  ŝ = s/(1−ρ₁ᵏ) ;  r ← ρ₂ r + (1−ρ₂) g⊙g ;  "
        "r̂ = r/(1−ρ₂ᵏ) ;  θ ← θ − α ŝ / (√r̂ + ε)",
    ),
    "E6": ("time-dependent learning rate", "θₜ₊₁ = θₜ − η(t) m̂ₜ / (√v̂ₜ + ε)"),
    "E7": ("Newton step", "d = −H⁻¹ g ;  θₜ₊₁ = θₜ − H⁻¹ g"),
    "E8": (
        "the neural network",
        "z⁽ⁱ⁾ = W⁽ⁱ⁾ a⁽ⁱ⁻¹⁾ + b⁽ⁱ⁾ ;  a⁽ⁱ⁾ = g⁽ⁱ⁾(z⁽ⁱ⁾) ;  a⁽⁰⁾ = x ;  f_θ = a⁽ᴸ⁾",
    ),
    "E9": ("quadratic model of the risk", "R(θ) ≈ R(θₜ) + gᵀ(θ−θₜ) + ½ (θ−θₜ)ᵀ H (θ−θₜ)"),
    "E10": ("condition number", "κ(H) = |λ_max| / |λ_min|"),
}

# Which of the notes' equations each claim is about (CLAIMS.md's sections of the notes).
CLAIM_EQUATIONS = {
    "C1": ("E3", "E5"),
    "C2": ("E3",),
    "C3": ("E3",),
    "C4": ("E4",),
    "C5": ("E2",),
    "C6": ("E2",),
    "C7": ("E5",),
    "C8a": ("E4", "E5", "E10"),
    "C8b": ("E2",),
    "C8c": ("E2",),
    "C8d": ("E5",),
    "C9": ("E5", "E6"),
    "C10": ("E1", "E9", "E10"),
    "C11": ("E1", "E10"),
    "C12": ("E7", "E9"),
    "C13": ("E5", "E7"),
    "C14": ("E8",),
    "R1": ("E2",),
    "R2": ("E1", "E2"),
    "R3": ("E1",),
    "R4": ("E1", "E2", "E3", "E4", "E5"),
}

STYLE = """
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1080px;
       margin: 2em auto; padding: 0 1em; color: #1f2328; overflow-wrap: break-word; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2.2em; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; }
table.summary, table.equations { width: 100%; }
table td, table th { border-bottom: 1px solid #d0d7de; padding: 6px 8px; text-align: left;
       vertical-align: top; }
td.num { font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 1px 10px; border-radius: 10px; color: white;
         font-weight: 600; font-size: 0.9em; }
.takeaway { font-size: 1.1em; font-weight: 600; margin: 0.6em 0; }
blockquote { border-left: 4px solid #d0d7de; margin: 0.5em 0; padding: 0.2em 1em;
             color: #57606a; font-style: italic; }
.criterion { background: #f6f8fa; padding: 0.6em 1em; border-radius: 6px; }
.eq { font-family: "STIX Two Math", "Cambria Math", serif; font-size: 1.05em; }
img { max-width: 100%; height: auto; border: 1px solid #eaeef2; margin: 0.5em 0; }
.scroll { overflow-x: auto; max-width: 100%; }
dl.numbers { display: grid; grid-template-columns: minmax(8em, max-content) 1fr; gap: 2px 1em;
             font-size: 0.9em; }
dl.numbers dt { color: #57606a; } dl.numbers dd { margin: 0; min-width: 0; }
dl.numbers.nested { font-size: 1em; border-left: 2px solid #eaeef2; padding-left: 0.6em; }
.kv { white-space: nowrap; } .kv b { font-weight: 600; }
dl.numbers table td { padding: 1px 6px; border: none; font-variant-numeric: tabular-nums; }
.muted { color: #57606a; } a { color: #0969da; }
@media (max-width: 600px) {
  body { margin: 1em auto; font-size: 15px; }
  table.summary td, table.summary th { padding: 4px 4px; }
  dl.numbers { grid-template-columns: 1fr; } dl.numbers dd { margin-bottom: 0.4em; }
}
"""


def badge(verdict: str) -> str:
    colour = COLOURS.get(verdict, "#6e7781")
    return f'<span class="badge" style="background:{colour}">{escape(verdict)}</span>'


def embed(path: Path) -> str:
    """An <img> carrying the PNG itself, so the page needs no other file."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{escape(path.stem)}" src="data:image/png;base64,{data}">'


def quote(claim: str) -> str:
    """The claim in quotation marks, once: a claim that already quotes the notes ("…" and
    "…") keeps its own marks, made typographic; any other is wrapped in “…”."""
    if '"' in claim or "“" in claim:
        curly = re.sub(r'"([^"]*)"', r"“\1”", claim)
        return linked(curly)
    return f"“{linked(claim)}”"


def linked(text: str) -> str:
    """``text`` escaped, with every equation id (E1 … E10) a link to its row above."""
    return re.sub(r"\b(E(?:10|[1-9]))\b", lambda m: f'<a href="#{m[1]}">{m[1]}</a>', escape(text))


def number(v: float | int) -> str:
    """A number as a person reads it: 4 significant digits, no 9.999999999999773."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}".replace(",", " ") if abs(v) >= 10_000 else str(v)
    if not math.isfinite(v):
        return "∞" if v > 0 else ("−∞" if v < 0 else "not a number")
    if v == 0:
        return "0"
    return f"{v:.4g}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


def label(key: str) -> str:
    """A key of an experiment's numbers as words, with its unit where the key names one."""
    words = key.replace("_", " ")
    for suffix, unit in ((" seconds", "s"), (" s", "s"), (" ms", "ms")):
        if words.endswith(suffix):
            return f"{words[: -len(suffix)]} ({unit})"
    return words


def value_html(v: object, depth: int = 0) -> str:
    """One value of the numbers: a number, a list (as a row or a small matrix), or a dict."""
    if isinstance(v, bool | int | float):
        return number(v)
    if v is None:
        return "—"
    if isinstance(v, str):
        return escape(v)
    if isinstance(v, dict):
        if all(v_ is None or isinstance(v_, bool | int | float | str) for v_ in v.values()):
            # a small table of plain values reads best on one line: "gd 1 · momentum 1.468"
            return " · ".join(
                f'<span class="kv">{escape(label(str(k)))} <b>{value_html(x)}</b></span>'
                for k, x in v.items()
            )
        return numbers_html(v, depth + 1)
    if isinstance(v, list | tuple):
        if v and all(isinstance(r, list | tuple) for r in v):  # a matrix: a small table
            cols = max(len(r) for r in v)
            rows = "".join(
                "<tr>" + "".join(f"<td>{value_html(c, depth)}</td>" for c in r) + "</tr>"
                for r in v[:30]
            )
            more = f"<p class='muted'>… {len(v) - 30} more rows</p>" if len(v) > 30 else ""
            return f'<div class="scroll"><table title="{len(v)}×{cols}">{rows}</table></div>{more}'
        shown = ", ".join(value_html(c, depth) for c in v[:40])
        more = f", … ({len(v)} values)" if len(v) > 40 else ""
        return f"[{shown}{more}]"
    return escape(str(v))


def numbers_html(numbers: dict, depth: int = 0) -> str:
    """The experiment's numbers as labelled rows, rounded (the exact ones are in results.json)."""
    if not numbers:
        return "<p class='muted'>none</p>"
    rows = "".join(
        f"<dt>{escape(label(str(k)))}</dt><dd>{value_html(v, depth)}</dd>"
        for k, v in numbers.items()
    )
    return f'<dl class="numbers{" nested" if depth else ""}">{rows}</dl>'


def takeaway(f: Finding) -> str:
    """The finding's one sentence for a student, or its measured evidence where it has none."""
    return f.takeaway.strip() or f.evidence


def measured(f: Finding) -> str:
    """The evidence line, unless the takeaway above already is the evidence."""
    return f"<p><b>Measured:</b> {linked(f.evidence)}</p>" if f.takeaway.strip() else ""


def seeds_html(f: Finding) -> str:
    """Which seeds the finding ran and whether each alone gives its verdict (hidden for one)."""
    if len(f.seeds) < 2:
        return ""
    seeds = ", ".join(str(s) for s in f.seeds)
    if f.seeds_agree:
        return f"<p><b>Seeds:</b> {seeds}: each alone gives {escape(f.verdict)}.</p>"
    each = "; ".join(
        f"seed {s}: {escape(v)}" for s, v in zip(f.seeds, f.seed_verdicts, strict=False)
    )
    return f"<p><b>Seeds:</b> {seeds}: they disagree ({each}).</p>"


def section(f: Finding) -> str:
    figures = "\n".join(embed(Path(p)) for p in f.figures)
    conditions = f"<p><b>Holds when:</b> {linked(f.conditions)}</p>" if f.conditions.strip() else ""
    eqs = CLAIM_EQUATIONS.get(f.id, ())
    about = (
        "<p class='muted'>The notes' equations: "
        + ", ".join(f'<a href="#{e}">{e}</a> ({escape(EQUATIONS[e][0])})' for e in eqs)
        + "</p>"
        if eqs
        else ""
    )
    return f"""
<section id="{escape(f.id)}">
<h2>{escape(f.id)} · {escape(f.title)} {badge(f.verdict)}</h2>
<p class="takeaway">{linked(takeaway(f))}</p>
<blockquote>{quote(f.claim)}</blockquote>
{about}
<p class="criterion"><b>Criterion, stated before the run:</b> {linked(f.criterion)}</p>
{measured(f)}
{conditions}
{seeds_html(f)}
{figures}
<p>{linked(f.explanation)}</p>
<details><summary>All numbers ({f.seconds:.1f} s to measure)</summary>
{numbers_html(f.numbers)}</details>
</section>"""


def summary_table(findings: list[Finding]) -> str:
    """id, claim, verdict and the one headline number of each finding (the column is left
    out while no finding has one)."""
    numbers = any(f.headline for f in findings)
    rows = "\n".join(
        f'<tr><td><a href="#{escape(f.id)}">{escape(f.id)}</a></td><td>{escape(f.title)}</td>'
        f"<td>{badge(f.verdict)}</td>"
        + (f'<td class="num">{escape(f.headline or "—")}</td>' if numbers else "")
        + "</tr>"
        for f in findings
    )
    head = "<th>in one number</th>" if numbers else ""
    return (
        '<table class="summary">\n<tr><th>id</th><th>claim</th><th>verdict</th>'
        f"{head}</tr>\n{rows}\n</table>"
    )


def equations_table() -> str:
    rows = "\n".join(
        f'<tr id="{e}"><td>{e}</td><td>{escape(what)}</td><td class="eq">{escape(form)}</td></tr>'
        for e, (what, form) in EQUATIONS.items()
    )
    return f"""<details open><summary><b>The notes' equations</b> (as the optimizers implement
them; g = ∇R(θ), ⊙ elementwise)</summary>
<div class="scroll"><table class="equations">{rows}</table></div></details>"""


def html(findings: list[Finding], *, quick: bool, seed: int, seconds: float) -> str:
    """The whole page: the summary table on top, the equations, then one section per claim and
    reproduction."""
    claims = [f for f in findings if f.kind == "claim"]
    reproductions = [f for f in findings if f.kind != "claim"]
    counts = Counter(f.verdict for f in claims)
    summary = ", ".join(
        f"{counts[v]} {v}" for v in ("holds", "partly", "fails", "error") if counts[v]
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
{summary_table(claims + reproductions)}
{equations_table()}
{"<h1>Claims</h1>" if claims else ""}
{"".join(section(f) for f in claims)}
{"<h1>Published results, reproduced</h1>" if reproductions else ""}
{"".join(section(f) for f in reproductions)}
</body></html>
"""
