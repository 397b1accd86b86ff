"""The README's Python examples run as written (a user copies them first)."""

import re
from pathlib import Path

import pytest
import torch

README = (Path(__file__).parent.parent / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def block(starting: str) -> str:
    """The README's Python block whose first line is ``starting``."""
    found = [b for b in BLOCKS if b.startswith(starting)]
    assert len(found) == 1, f"one README block must start with {starting!r}"
    return found[0]


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write opt.pt, adam.csv


def test_the_pytorch_loop_example_trains_and_resumes():
    gen = torch.Generator().manual_seed(0)
    loader = [(torch.randn(8, 64, generator=gen), torch.randint(0, 10, (8,), generator=gen))] * 3
    names = {"loader": loader}
    exec(block("import torch\nfrom firstorder.optim import Adam"), names)
    assert names["opt"].state_dict()["state"][0]["k"] == 3  # three steps taken, then reloaded
    assert Path("opt.pt").exists()


def test_the_obstacle_course_example_runs_its_grid():
    names: dict = {}
    exec(block("from firstorder import landscapes"), names)
    assert names["result"].configs == 6
    lines = Path("adam.csv").read_text().splitlines()
    assert len(lines) == 1 + 6 * 2  # a header, then one row per trajectory


def test_the_network_example_trains_the_digits_mlp():
    names: dict = {}
    exec(block("from firstorder import data"), names)
    history = names["history"]
    assert history.final.test_accuracy > 0.9  # 30 epochs of Adam on digits
    assert any(v is not None for v in history["sharpness"])
