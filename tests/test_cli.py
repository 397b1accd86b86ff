"""The command line: numbers as JSON, plots as files, and one clear line with status 2 for a
user's mistake."""

import json
import subprocess
import sys

import pytest

from firstorder import landscapes
from firstorder.cli import main, parse_values


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "firstorder.cli", *args], capture_output=True, text=True, timeout=300
    )


PLOT_MISTAKES = [
    ["run", "canyon", "--optimizer", "gd", "--lr", "0.1", "--plot", "paths.txt"],
    ["sweep", "canyon", "--optimizer", "gd", "--lr", "0.1", "--plot", "sweep.png"],
    ["train", "--data", "digits", "--epochs", "1", "--plot", "curves.txt"],
]


@pytest.mark.parametrize(
    "args",
    [
        ["run", "nowhere", "--optimizer", "gd", "--lr", "0.1"],
        ["run", "canyon", "--optimizer", "sgd", "--lr", "0.1"],
        ["run", "canyon", "--optimizer", "gd", "--lr", "-1"],
        ["run", "canyon", "--optimizer", "momentum", "--lr", "0.1", "--rho", "1.5"],
        ["sweep", "canyon", "--optimizer", "gd", "--lr", "1e-3:"],
        ["sweep", "canyon", "--optimizer", "gd", "--lr", "0:1:5"],
        ["run", "canyon", "--optimizer", "gd", "--lr", "0.1", "--start", "1,2,3"],
        ["train", "--data", "digits", "--layers", "10,10", "--epochs", "1"],
        ["claims", "--only", "C99"],
        ["run", "canyon"],
        *PLOT_MISTAKES,
    ],
)
def test_user_mistakes_exit_2_with_one_line_and_no_traceback(args):
    r = run_cli(*args)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 or "usage" in r.stderr.lower()
    assert "error" in r.stderr


@pytest.mark.parametrize("args", PLOT_MISTAKES)
def test_a_plot_that_cannot_be_drawn_is_refused_before_anything_runs(args, tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "firstorder.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert r.returncode == 2 and "--plot" in r.stderr, r.stderr
    assert r.stdout == ""  # no table: nothing ran
    assert list(tmp_path.iterdir()) == []


def test_run_json_and_plot(tmp_path):
    plot = tmp_path / "paths.png"
    r = run_cli(
        "run",
        "canyon",
        "--optimizer",
        "gd",
        "--lr",
        "0.4,0.6",
        "--steps",
        "100",
        "--json",
        "--plot",
        str(plot),
    )
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert len(rows) == 2 * len(landscapes.get("canyon").starts)
    by_lr = {row["lr"]: row for row in rows}
    # d2l: lr 0.4 converges on the canyon, 0.6 does not (|1 - 0.6 * 4| > 1)
    assert by_lr[0.4]["final_f"] < 1e-6 and by_lr[0.6]["final_f"] > 1.0
    assert plot.stat().st_size > 10_000


def test_sweep_json_and_heatmap(tmp_path):
    plot = tmp_path / "sweep.png"
    r = run_cli(
        "sweep",
        "canyon",
        "--optimizer",
        "momentum",
        "--lr",
        "0.01:1:4",
        "--rho",
        "0:0.9:3",
        "--steps",
        "200",
        "--json",
        "--plot",
        str(plot),
    )
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert len(rows) == 12 and {"lr", "rho", "success", "diverged"} <= set(rows[0])
    assert plot.exists()


def test_landscapes_lists_the_course():
    r = run_cli("landscapes", "--json")
    assert r.returncode == 0
    names = [row["name"] for row in json.loads(r.stdout)]
    assert names == landscapes.names()


def test_claims_json_shape():
    r = run_cli("claims", "--quick", "--json", "--only", "C1")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [set(row) for row in rows] == [{"id", "claim", "verdict", "evidence"}]
    assert rows[0]["verdict"] in ("holds", "partly", "fails")


@pytest.mark.parametrize("command", ["tour", "claims", "landscapes", "run", "sweep", "train"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_ranges():
    assert parse_values("lr", "1e-3:1e-1:3", log=True) == pytest.approx([1e-3, 1e-2, 1e-1])
    assert parse_values("rho", "0:0.5:3", log=False) == pytest.approx([0, 0.25, 0.5])
    assert parse_values("rho", "0.1,0.2", log=False) == [0.1, 0.2]
