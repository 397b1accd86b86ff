"""The playground in a real headless browser: Debian's chromium driven by Playwright.

Loads the page, picks a landscape, sets a start by clicking the map, moves the learning-rate
slider, and checks that the drawn path changed and that the URL carries the state. The
screenshot is kept as a test artifact in pytest's temporary folder (printed with -s).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

if not CHROMIUM.exists():
    if shutil.which("apt-get") is None:
        pytest.skip(
            "the browser test needs Debian's chromium at /usr/bin/chromium, and apt-get is not "
            "available to install it",
            allow_module_level=True,
        )
    pytest.skip(
        "/usr/bin/chromium is missing: `make test` installs it first with "
        "`apt-get install chromium`",
        allow_module_level=True,
    )
playwright = pytest.importorskip("playwright.sync_api")
uvicorn = pytest.importorskip("uvicorn")

from serving import serving  # noqa: E402

from firstorder.serve.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def server():
    """The app on a free localhost port, served by uvicorn in a thread."""
    with serving(create_app(compile=False), log_level="error") as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(browser):
    pg = browser.new_page(viewport={"width": 1460, "height": 900})
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.errors = errors
    return pg


def wait_for_run(page, after: int) -> None:
    """Wait until the page has drawn a run result newer than number ``after``."""
    page.wait_for_function(
        f"Number(document.body.dataset.runs || 0) > {after}", timeout=60_000, polling=50
    )


def runs(page) -> int:
    return int(page.evaluate("Number(document.body.dataset.runs || 0)"))


def outcome_cells(page) -> list[str]:
    """The results table's cells, start by start, one per optimizer (the start column left out)."""
    return page.eval_on_selector_all(
        "#outcomes td:not(.start)", "cells => cells.map(c => c.textContent)"
    )


def path_length(page) -> float:
    return float(page.get_attribute("#map", "data-path-length"))


def test_click_a_start_move_alpha_and_the_path_and_link_follow(server, page, tmp_path):
    # small runs keep the test quick; the page starts from the state in the link
    page.goto(f"{server}/?landscape=rosenbrock&steps=80&opt=gd,lr=0.001&opt=momentum,lr=0.001")
    wait_for_run(page, 0)
    assert page.get_attribute("#map", "data-paths") == "6"  # 2 optimizers × 3 starts

    # pick a landscape: its own starts come with it
    n = runs(page)
    page.select_option("#landscape", "canyon")
    wait_for_run(page, n)
    assert "axis-aligned canyon" in page.text_content("#landscape-desc")

    # clear the starts and set one by clicking the map
    page.click("#starts-clear")
    page.wait_for_function("document.getElementById('map').dataset.paths === '0'")
    n = runs(page)
    box = page.locator("#map").bounding_box()
    page.click("#map", position={"x": box["width"] * 0.15, "y": box["height"] * 0.2})
    wait_for_run(page, n)
    assert page.get_attribute("#map", "data-paths") == "2"  # 2 optimizers × 1 start
    before = path_length(page)
    assert before > 0

    # move α of gradient descent: the server reruns it and the drawn path changes
    n = runs(page)
    page.fill("#gd-lr", "-0.5")  # the slider is log10 α: α = 10^−0.5 ≈ 0.316
    wait_for_run(page, n)
    after = path_length(page)
    assert after != pytest.approx(before, rel=1e-6)
    assert page.text_content("#gd-lr + output") == "0.316"

    # the link carries the whole state
    q = parse_qs(urlparse(page.url).query)
    assert q["landscape"] == ["canyon"] and q["steps"] == ["80"]
    assert "gd,lr=0.316" in q["opt"] and "momentum,lr=0.001,rho=0.9" in q["opt"]
    assert len(q["start"]) == 1
    x, y = map(float, q["start"][0].split(","))
    assert -6 <= x <= -3 and 0 <= y <= 3  # upper left of the window ((−6, 6), (−3, 3))

    # ... so that opening it again draws the same picture
    n = runs(page)
    page.goto(page.url)
    wait_for_run(page, 0)
    assert path_length(page) == pytest.approx(after, rel=1e-9)

    shot = tmp_path / "playground.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000
    assert not page.errors, page.errors


def test_a_diverged_run_says_so(server, page):
    page.goto(f"{server}/?landscape=rosenbrock&steps=50&opt=gd,lr=0.05&start=-1.2,1")
    wait_for_run(page, 0)
    assert "diverged at step" in page.text_content("#outcomes")
    assert not page.errors, page.errors


def test_leaving_the_saddle_is_an_escape(server, page):
    page.goto(f"{server}/?landscape=saddle&steps=300&opt=gd,lr=0.05&opt=momentum,lr=0.05,rho=0.9")
    wait_for_run(page, 0)
    table = " | ".join(outcome_cells(page))
    assert table.count("escaped at step") == 6 and "diverged" not in table
    assert not page.errors, page.errors


ALL_SIX = (
    "opt=gd,lr=0.0015&opt=momentum,lr=0.0005,rho=0.9&opt=adagrad,lr=0.5"
    "&opt=rmsprop,lr=0.01&opt=adam,lr=0.05&opt=newton,lr=1,damping=0"
)


def test_the_first_sight_shows_a_contrast_and_nothing_diverges(server, page):
    page.goto(server)  # the page's own defaults: Rosenbrock, four optimizers, its three starts
    wait_for_run(page, 0)
    assert page.get_attribute("#map", "data-paths") == "12"
    table = page.text_content("#outcomes")
    assert "diverged" not in table.split("after 500 steps")[-1]
    cells = page.eval_on_selector_all(
        "#outcomes tr",
        "rows => rows.slice(1).map(r => [...r.cells].slice(1).map(c => c.textContent))",
    )
    gaps = [[float(v) for v in row] for row in cells]  # f − f* after 500 steps, none reached
    # GD moves (f − f* at most 1.1 from every start, from 24, 6.5 and 7.6 at the starts) and
    # the four optimizers end far apart: the best ten times below the worst from a start
    assert max(row[0] for row in gaps) < 1.1
    assert any(max(row) > 10 * min(row) for row in gaps)
    assert not page.errors, page.errors


def test_six_optimizers_fit_and_every_chart_tells_its_starts_apart(server, page):
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{server}/?landscape=rosenbrock&steps=60&{ALL_SIX}")
    wait_for_run(page, 0)
    wrap = page.eval_on_selector(".tablewrap", "w => [w.scrollWidth, w.clientWidth]")
    assert wrap[0] <= wrap[1]  # no sideways scroll in the results table
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    heads = page.eval_on_selector_all(
        "#outcomes th", "hs => hs.map(h => h.getBoundingClientRect().right)"
    )
    assert len(heads) == 7 and max(heads) <= 1280
    # 6 optimizers × 3 starts: each loss and step-length line ends in its start's number
    for chart in ("plot-loss", "plot-step"):
        assert page.get_attribute(f"#{chart}", "data-labels") == "18"
    # the map's tick labels (14 px on a 640 px drawing) shown at 10 px or more
    shown = page.eval_on_selector("#map", "c => c.clientWidth / 640 * 14")
    assert shown >= 10
    # Newton's first steps leave the map: its segments are clipped to the map's edge
    end = page.evaluate("clipSegment([10, 10], [1e9, 10])")
    assert end[1] == [pytest.approx(page.evaluate("MAP.w") + 2), 10] and end[2] is True
    assert page.evaluate("clipSegment([-10, -10], [-20, -5])") is None
    assert not page.errors, page.errors


def test_a_slow_answer_shows_computing(server, page):
    page.add_init_script(
        "window.busySeen = false; new MutationObserver(() => {"
        " const b = document.getElementById('busy'); if (b && !b.hidden) window.busySeen = true;"
        "}).observe(document, {subtree: true, attributes: true, childList: true});"
    )

    def slow(route):
        time.sleep(0.6)  # the browser's own timers run meanwhile
        route.continue_()

    page.route("**/api/run", slow)
    try:
        page.goto(f"{server}/?landscape=canyon&steps=40&opt=gd,lr=0.4")
        wait_for_run(page, 0)
    finally:
        page.unroute("**/api/run")
    assert page.evaluate("window.busySeen") is True
    assert page.is_hidden("#busy")  # and gone once the answer is drawn
    assert not page.errors, page.errors


def test_try_this_sets_up_the_experiment_it_describes(server, page, tmp_path):
    page.goto(f"{server}/?landscape=canyon&steps=40&opt=adam,lr=0.05&opt=gd,lr=0.1")
    wait_for_run(page, 0)
    prompts = page.locator("#try button")
    assert prompts.count() == 2
    n = runs(page)
    prompts.first.click()  # "… past 2/λ_max = 0.5 (α = 0.55) every start diverges"
    wait_for_run(page, n)
    assert page.text_content("#gd-lr + output") == "0.55"
    assert not page.is_checked("#adam-on")
    assert page.text_content("#outcomes").count("diverged at step") == 3
    q = parse_qs(urlparse(page.url).query)
    assert q["opt"] == ["gd,lr=0.55"] and q["steps"] == ["100"]
    # what a prompt leaves out takes the page's defaults: Adam's ρ₁ back to 0.9
    page.goto(f"{server}/?landscape=plateau&steps=40&opt=adam,lr=0.05,rho1=0.5")
    wait_for_run(page, 0)
    assert page.text_content("#adam-rho1 + output") == "0.5"
    n = runs(page)
    page.locator("#try button").first.click()  # "opt=gd,lr=0.5&opt=adam,lr=0.05"
    wait_for_run(page, n)
    assert page.text_content("#adam-rho1 + output") == "0.9"
    page.select_option("#landscape", "booth")  # a landscape without prompts hides the box
    page.wait_for_function("document.getElementById('try-box').hidden")
    shot = tmp_path / "try.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert not page.errors, page.errors


# --- the tour's report, read on a laptop and on a phone -----------------------------------------


@pytest.fixture(scope="module")
def report_file(tmp_path_factory):
    """A report of two findings made here, each with a wide figure and long numbers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from firstorder import report
    from firstorder.experiments import Finding

    out = tmp_path_factory.mktemp("report")
    findings = []
    for i, fid in enumerate(("C6", "R1")):
        fig, ax = plt.subplots(figsize=(16, 4))
        ax.plot([0, 1, 2], [i, 2, 1])
        fig.savefig(out / f"{fid}.png", dpi=100)
        plt.close(fig)
        findings.append(
            Finding(
                id=fid,
                kind="claim" if fid[0] == "C" else "reproduction",
                title="Momentum's step scale 1/(1−ρ): larger for small ρ₁?",
                claim='"the step size is scaled by 1/(1−ρ)" and "the steps will be much larger"',
                criterion="compare the terminal speed on a slope (E2) " * 5,
                verdict="fails",
                evidence="speed ratio ρ₁=0 : ρ₁=0.99 = 0.01 on a slope; " * 4,
                conditions="",
                explanation="The figure shows the paths. " * 5,
                numbers={
                    "a_very_long_name_of_a_measured_quantity_without_spaces": list(range(60)),
                    "matrix": [[1.23456789e-5 * j for j in range(12)] for _ in range(4)],
                },
                figures=[str(out / f"{fid}.png")],
                seconds=1.0,
                takeaway="Small ρ₁ moves less, not more.",
                headline="0.01× the speed",
                seeds=[0, 1],
                seed_verdicts=["fails", "fails"],
            )
        )
    path = out / "report.html"
    path.write_text(report.html(findings, quick=True, seed=0, seconds=1.0))
    return path


@pytest.mark.parametrize("width", [1280, 390])
def test_the_report_fits_the_screen_and_every_figure_loads(report_file, width, browser, tmp_path):
    pg = browser.new_page(viewport={"width": width, "height": 900})
    pg.goto(report_file.as_uri())
    pg.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    # no sideways scroll: the page is no wider than the screen, "All numbers" open
    assert pg.evaluate("document.documentElement.scrollWidth") <= width
    assert pg.locator("table.summary tr").count() == 3  # the head and two findings
    assert pg.locator("table.equations tr").count() == 10  # E1 … E10
    images = pg.evaluate(
        "[...document.images].map(i => [i.complete, i.naturalWidth, i.clientWidth])"
    )
    assert len(images) == 2
    for complete, natural, shown in images:
        assert complete and natural == 1600 and 0 < shown <= width
    shot = tmp_path / f"report-{width}.png"
    pg.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    pg.close()
