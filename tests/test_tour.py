"""The tour, its report and results, and the experiment contract every claim must meet."""

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from firstorder import experiments, tour
from firstorder.experiments import VERDICTS, Context, run_experiment
from firstorder.tour import run_tour

ALL = [e.id for e in experiments.all_experiments()]


@pytest.mark.parametrize("experiment_id", ALL)
def test_every_experiment_runs_quick_and_returns_a_complete_finding(experiment_id, tmp_path):
    exp = experiments.get(experiment_id)
    finding = run_experiment(exp, Context(quick=True, seed=0, out=tmp_path, seeds=2))
    assert finding.verdict in VERDICTS
    assert finding.id == exp.id and finding.claim and finding.criterion
    assert finding.evidence and finding.explanation and finding.numbers
    assert finding.takeaway and finding.headline  # from the numbers, for the summary table
    assert finding.seeds == ([0, 1] if exp.seeded else [0])
    assert len(finding.seed_verdicts) == len(finding.seeds)
    if finding.verdict == "partly":
        assert finding.conditions, "a partly verdict must name its conditions"
    assert finding.figures and all(Path(p).is_file() for p in finding.figures)
    json.dumps(finding.numbers, allow_nan=False)  # strict JSON


# the statements numbered in shared/CLAIMS.md
CLAIM_IDS = ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8a", "C8b", "C8c", "C8d", "C9"]
CLAIM_IDS += ["C10", "C11", "C12", "C13", "C14"]


def test_every_claim_of_claims_md_has_an_experiment():
    missing = set(CLAIM_IDS) - set(ALL)
    assert not missing, f"claims without an experiment: {sorted(missing)}"
    claims_md = Path(__file__).parents[2] / "shared" / "CLAIMS.md"
    if claims_md.exists():  # where the shared folder sits beside the checkout
        ids = set(re.findall(r"^\| (C\d+[a-z]?) \|", claims_md.read_text(), flags=re.M))
        assert ids == set(CLAIM_IDS)


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.imgs, self.links, self.ids = [], [], [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag not in ("img", "meta", "br", "hr", "input", "link"):
            self.stack.append(tag)
        if tag == "img":
            self.imgs.append(attrs.get("src", ""))
        if tag in ("script", "link", "iframe"):
            self.links.append(attrs.get("src") or attrs.get("href"))
        if "id" in attrs:
            self.ids.add(attrs["id"])

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()


def test_tour_writes_a_self_contained_report_and_json(tmp_path):
    only = ["C1"]
    findings = run_tour(tmp_path, quick=True, only=only, progress=False)
    html = (tmp_path / "report.html").read_text()
    parser = _Collect()
    parser.feed(html)
    assert parser.stack == ["html"] or parser.stack == [], parser.stack  # tags balance
    assert html.startswith("<!DOCTYPE html>")
    # every figure embedded, nothing fetched from elsewhere
    n_figures = sum(len(f.figures) for f in findings)
    assert len(parser.imgs) == n_figures and all(
        s.startswith("data:image/png;base64,") for s in parser.imgs
    )
    assert not parser.links and "http://" not in html and "https://" not in html
    for f in findings:
        assert f.id in parser.ids
    data = json.loads((tmp_path / "results.json").read_text())
    assert [f["id"] for f in data["findings"]] == only
    for f in data["findings"]:
        assert all((tmp_path / p).is_file() for p in f["figures"])


def test_same_seed_same_numbers(tmp_path):
    a = run_tour(tmp_path / "a", quick=True, only=["C1"], progress=False)
    b = run_tour(tmp_path / "b", quick=True, only=["C1"], progress=False)
    assert [f.numbers for f in a] == [f.numbers for f in b]


def test_experiments_in_parallel_processes_give_the_same_numbers_in_tour_order(tmp_path):
    import io

    from rich.console import Console

    only = ["C7", "C5", "C3"]
    serial = run_tour(tmp_path / "serial", quick=True, only=only, progress=False)
    buf = io.StringIO()  # the progress display, on a terminal of 100 columns
    console = Console(file=buf, force_terminal=True, width=100)
    parallel = run_tour(tmp_path / "parallel", quick=True, only=only, console=console, jobs=2)
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buf.getvalue())  # without the colours
    assert "0/3" in shown and "3/3" in shown  # n of N done
    assert re.search(r"running C[57]", shown)  # the experiments in flight, by id (C3 waits)
    assert [f.id for f in parallel] == only
    assert [f.numbers for f in parallel] == [f.numbers for f in serial]
    data = json.loads((tmp_path / "parallel" / "results.json").read_text())
    assert [f["id"] for f in data["findings"]] == only
    with pytest.raises(ValueError, match="jobs must be a whole number >= 1, got 0"):
        run_tour(tmp_path, only=only, jobs=0)


def run_or_die(experiment_id, ctx):
    """A worker's job (importable by the spawned worker) whose process dies on C5."""
    if experiment_id == "C5":
        os._exit(3)  # as the kernel's OOM killer would end it: no exception, no result
    return tour._run_by_id(experiment_id, ctx)


def test_an_experiment_whose_process_dies_does_not_lose_the_others(tmp_path, monkeypatch):
    only = ["C7", "C5", "C3"]
    serial = run_tour(tmp_path / "serial", quick=True, only=["C7", "C3"], progress=False)
    monkeypatch.setattr(tour, "_run_by_id", run_or_die)
    findings = run_tour(tmp_path / "parallel", quick=True, only=only, progress=False, jobs=2)
    assert [f.id for f in findings] == only
    died = findings[1]
    assert died.verdict == "error" and "worker process died" in died.evidence
    assert [findings[0].numbers, findings[2].numbers] == [f.numbers for f in serial]
    data = json.loads((tmp_path / "parallel" / "results.json").read_text())
    assert [f["verdict"] for f in data["findings"]][1] == "error"


def _replace_c1_measure(monkeypatch, measure) -> None:
    """C1 as registered, but measured by ``measure`` (for the duration of the test)."""
    exp = experiments.get("C1")
    bad = experiments.Experiment(
        id="C1",
        title=exp.title,
        claim=exp.claim,
        criterion=exp.criterion,
        measure=measure,
        judge=exp.judge,
    )
    monkeypatch.setitem(experiments.EXPERIMENTS, "C1", bad)


def test_an_experiment_that_raises_does_not_lose_the_tour(tmp_path, monkeypatch):
    def broken(ctx):
        raise RuntimeError("boom")

    _replace_c1_measure(monkeypatch, broken)
    findings = run_tour(tmp_path, quick=True, only=["C1"], progress=False)
    assert findings[0].verdict == "error" and "boom" in findings[0].evidence
    assert "boom" in (tmp_path / "report.html").read_text()


def test_a_failing_experiment_keeps_the_innermost_frames_of_its_traceback(tmp_path, monkeypatch):
    # the raise sits 20 calls deep, through 20 distinct functions (traceback folds repeated
    # frames of one function): the outermost frames (the tour's, the first calls) say
    # nothing; the innermost ones name the line that raised
    chain = {}
    exec('def level0():\n    raise RuntimeError("boom at the bottom")\n', chain)
    for i in range(1, 20):
        exec(f"def level{i}():\n    return level{i - 1}()\n", chain)

    def innermost_raise(ctx):
        return chain["level19"]()

    _replace_c1_measure(monkeypatch, innermost_raise)
    (finding,) = run_tour(tmp_path, quick=True, only=["C1"], progress=False)
    shown = finding.explanation
    assert "in level0" in shown and "in level7" in shown and "in level8" not in shown
    assert "RuntimeError: boom at the bottom" in shown
    assert shown.count('File "') == tour.TRACEBACK_FRAMES  # the innermost 8, not all 20+
    assert "innermost_raise" not in shown and "_run_one" not in shown  # outer frames dropped


def test_unknown_experiment_id_is_a_clear_error():
    with pytest.raises(ValueError, match="experiment must be one of C1"):
        experiments.get("C99")


# --- the report's own rendering, on findings made here ------------------------------------------


def _finding(fid="C4", **kw):
    from firstorder.experiments import Finding

    base = dict(
        id=fid,
        kind="claim",
        title="RMSProp's step does not vanish",
        claim='"the step does not shrink" and "problem: oscillates"',
        criterion="count the oscillations (E4)",
        verdict="partly",
        evidence="oscillates in 3 of 4 settings",
        conditions="ρ ≥ 0.9",
        explanation="The figure shows the steps.",
        numbers={"speed_ratio": [1.0, 9.999999999999773], "ok": True, "grid": [[1, 2], [3, 4]]},
        figures=[],
        seconds=0.5,
    )
    return Finding(**{**base, **kw})


def test_the_report_quotes_once_links_equations_and_rounds_the_numbers():
    from firstorder import report

    page = report.html([_finding()], quick=True, seed=0, seconds=1)
    assert "“the step does not shrink” and “problem: oscillates”" in page
    assert "“&quot;" not in page and "““" not in page  # no doubled quotation marks
    assert '<a href="#E4">E4</a>' in page  # the criterion's E4 links to the equations
    for e in [f"E{i}" for i in range(1, 11)]:
        assert f'<tr id="{e}">' in page
    assert "[1, 10]" in page and "9.999999" not in page  # rounded to 4 significant digits
    assert "speed ratio" in page and "speed_ratio" not in page  # labelled in words
    assert '"speed_ratio"' not in page  # not a raw JSON dump
    # no takeaway yet: the evidence leads the section, once
    assert page.count("oscillates in 3 of 4 settings") == 1
    assert 'class="summary"' in page and "in one number" not in page  # no headline: no column


def test_the_report_leads_with_the_takeaway_and_shows_the_headline_and_seeds():
    from firstorder import report

    one = _finding(takeaway="RMSProp keeps oscillating.", headline="3 of 4", seeds=[0])
    page = report.html([one], quick=True, seed=0, seconds=1)
    assert page.index("RMSProp keeps oscillating.") < page.index("<blockquote>")
    assert "in one number" in page and ">3 of 4</td>" in page
    assert "Seeds:" not in page  # one seed: nothing to agree on
    agree = _finding(seeds=[0, 1, 2], seed_verdicts=["partly"] * 3)
    assert "each alone gives partly" in report.html([agree], quick=True, seed=0, seconds=1)
    split = _finding(seeds=[0, 1], seed_verdicts=["partly", "holds"])
    assert "they disagree (seed 0: partly; seed 1: holds)" in report.html(
        [split], quick=True, seed=0, seconds=1
    )
