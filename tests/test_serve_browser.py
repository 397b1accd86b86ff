"""The playground in a real headless browser: Debian's chromium driven by Playwright.

Loads the page, picks a landscape, sets a start by clicking the map, moves the learning-rate
slider, and checks that the drawn path changed and that the URL carries the state. The
screenshot is kept as a test artifact in pytest's temporary folder (printed with -s).
"""

from __future__ import annotations

import shutil
import socket
import threading
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

from firstorder.serve.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def server():
    """The app on a free localhost port, served by uvicorn in a thread."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(
        uvicorn.Config(create_app(compile=False), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "the server did not start in 30 s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def page():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        pg = browser.new_page(viewport={"width": 1460, "height": 900})
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.errors = errors
        yield pg
        browser.close()


def wait_for_run(page, after: int) -> None:
    """Wait until the page has drawn a run result newer than number ``after``."""
    page.wait_for_function(
        f"Number(document.body.dataset.runs || 0) > {after}", timeout=60_000, polling=50
    )


def runs(page) -> int:
    return int(page.evaluate("Number(document.body.dataset.runs || 0)"))


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
