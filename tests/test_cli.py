"""The command line: numbers as JSON, plots as files, and one clear line with status 2 for a
user's mistake."""

import json
import subprocess
import sys
from pathlib import Path

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


# --- a person's habits: help, tables, words ------------------------------------------------------

COMMANDS = ["tour", "claims", "landscapes", "run", "sweep", "cards", "serve", "train"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_a_description_an_example_and_every_default(command, capsys):
    from firstorder.cli import build_parser

    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert "examples:\n  firstorder " + command in text
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    assert sub.description and len(sub.description) > 40
    for action in sub._actions:
        if action.option_strings and action.dest != "help" and not action.required:
            shown = sub.formatter_class("x")._get_help_string(action)
            assert "default" in shown, f"{command} {action.option_strings[0]}: {shown}"


def test_run_and_sweep_explain_themselves_differently(capsys):
    texts = {}
    for command in ("run", "sweep"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        texts[command] = capsys.readouterr().out
    assert texts["run"].split("options:")[0] != texts["sweep"].split("options:")[0]
    assert "log-spaced" in texts["sweep"] and "log-spaced" not in texts["run"]
    for text in texts.values():
        for name in landscapes.names():
            assert name in text


@pytest.fixture
def lines_of(capsys, monkeypatch):
    """Run the command in this process on an 80-column terminal; its output, checked to fit."""
    monkeypatch.setenv("COLUMNS", "80")

    def run(*args):
        assert main(list(args)) == 0
        out = capsys.readouterr().out
        lines = out.splitlines()
        assert all(len(line) <= 80 for line in lines), max(lines, key=len)  # fits 80 columns
        return out

    return run


def test_run_says_where_a_blow_up_was_caught(lines_of):
    # GD on 0.1 x₁² + 2 x₂² at α = 10 multiplies x₂ by 1 − 10·4 = −39 a step: from |x₂| = 2 it
    # is 78 after one step (inside the bound 100 × 6 = 600) and 3042 after two
    out = lines_of("run", "canyon", "--optimizer", "gd", "--lr", "10", "--steps", "50")
    assert out.count("diverged at step 2") == 3


def test_sweep_prints_shares_as_percentages_and_counts_lr_099_diverged(lines_of):
    # α λ_max = 0.99 · 4 = 3.96 > 2 and 1.1 · 4 = 4.4 > 2: both diverge; 0.1 and 0.5 do not
    out = lines_of("sweep", "canyon", "--optimizer", "gd", "--lr", "0.1,0.5,0.99,1.1")
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│")}
    assert "100%" in rows["0.99"] and "100%" in rows["1.1"]
    assert "inf" in rows["0.99"] and "e+283" not in out
    assert rows["0.1"].count("0%") >= 2 and "100%" not in rows["0.1"]


def test_on_the_saddle_a_run_escapes(lines_of):
    out = lines_of("run", "saddle", "--optimizer", "gd", "--lr", "0.1")
    assert out.count("escaped at step") == 3 and "diverged" not in out


def test_the_readme_sweep_reaches_the_target_somewhere(lines_of):
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    line = next(ln for ln in readme.splitlines() if ln.startswith("firstorder sweep rosenbrock"))
    args = line.split("#")[0].split()[1:]
    args = [a for i, a in enumerate(args) if a != "--plot" and args[i - 1] != "--plot"]
    rows = json.loads(lines_of(*args, "--json"))
    assert any(r["success"] > 0 for r in rows)


def test_a_missing_value_is_named_before_a_bad_one(capsys):
    assert main(["run", "canyon", "--optimizer", "momentum", "--rho", "1.5"]) == 2
    err = capsys.readouterr().err
    assert "lr must be given" in err and "rho" not in err, err
    assert main(["run", "canyon", "--optimizer", "momentum", "--lr", "0.1", "--rho", "1.5"]) == 2
    err = capsys.readouterr().err
    assert "rho" in err and "1.5" in err, err


def test_claims_from_a_results_file_reruns_nothing(tmp_path, capsys):
    finding = {
        "id": "C6",
        "kind": "claim",
        "title": "Momentum's step scale",
        "claim": "the steps will be much larger for small ρ₁",
        "criterion": "compare",
        "verdict": "fails",
        "evidence": "speed ratio 0.01",
        "conditions": "",
        "explanation": "",
        "numbers": {},
        "figures": [],
        "seconds": 0.5,
        "takeaway": "Small ρ₁ moves less, not more.",
        "a_field_of_a_newer_version": 1,
    }
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"mode": "quick", "seed": 0, "findings": [finding]}))
    assert main(["claims", "--from", str(results)]) == 0
    out = capsys.readouterr().out
    assert "C6" in out and "fails" in out and "Small ρ₁ moves less" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]  # nothing written
    assert main(["claims", "--from", str(results), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["verdict"] == "fails"
    assert main(["claims", "--from", str(results), "--json", "--only", "c6"]) == 0
    assert [f["id"] for f in json.loads(capsys.readouterr().out)] == ["C6"]
    # an unknown id is refused as it is without --from, not printed as an empty table
    assert main(["claims", "--from", str(results), "--only", "C99"]) == 2
    assert "C99" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["train", "--data", "nosuch"], "--data must be one of digits, "),
        (["run", "canyon", "--optimizer", "gd", "--lr", "0.1", "--start=1e400,0"], "finite"),
        (["run", "canyon", "--optimizer", "gd", "--lr", "0.1", "--start=a,b"], "got a,b."),
    ],
)
def test_a_mistake_is_named_by_its_option(args, said, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1


def test_train_labels_each_optimizers_bar(capsys):
    args = ["train", "--data", "xor", "--layers", "2,4,2", "--epochs", "2"]
    assert main([*args, "--optimizer", "adam", "--optimizer", "gd"]) == 0
    out = capsys.readouterr().out
    assert "adam, α = 0.001 (1/2)" in out and "gd, α = 0.1 (2/2)" in out


def test_the_landscape_table_fits_80_columns_and_cuts_nothing(lines_of):
    out = lines_of("landscapes")
    assert "…" not in out  # a long description wraps, it is not cut
    for name in landscapes.names():
        assert name in out


@pytest.mark.parametrize(
    "args",
    [
        ["tour", "--quick", "--only", "C6", "--out", ""],
        ["run", "canyon", "--optimizer", "gd", "--lr", "0.1", "--plot", ""],
        ["tour", "--quick", "--only", "C99"],
    ],
)
def test_an_empty_out_or_an_unknown_id_is_refused_before_anything_runs(
    args, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)  # "" once meant the current folder: nothing may land here
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("got ''" in err or "--only must list ids of C1" in err)
    assert list(tmp_path.iterdir()) == []


# --- what main catches: the user's mistakes and unwritable files, never a bug -------------------

RUN = ["run", "canyon", "--optimizer", "gd", "--lr", "0.1"]


def test_a_user_error_is_one_line_and_status_2(monkeypatch, capsys):
    from firstorder import cli
    from firstorder.errors import UserValueError

    def mistake(args, console):
        raise UserValueError("lr must be > 0, got -1.")

    monkeypatch.setattr(cli, "cmd_run", mistake)
    assert main(RUN) == 2
    assert capsys.readouterr().err == "firstorder run: error: lr must be > 0, got -1.\n"


def test_a_file_that_cannot_be_written_is_one_line_and_status_1(monkeypatch, capsys):
    from firstorder import cli

    def full_disk(args, console):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cli, "cmd_run", full_disk)
    assert main(RUN) == 1
    assert "No space left on device" in capsys.readouterr().err


@pytest.mark.parametrize("bug", [ValueError, TypeError, KeyError, ZeroDivisionError])
def test_a_bug_is_not_taken_for_a_user_mistake_and_keeps_its_traceback(monkeypatch, bug):
    # a plain ValueError from inside firstorder is a bug, not the user's mistake: main lets it
    # through, so Python prints its traceback and exits with status 1
    from firstorder import cli

    def broken(args, console):
        raise bug("an internal invariant failed")

    monkeypatch.setattr(cli, "cmd_run", broken)
    with pytest.raises(bug, match="internal invariant"):
        main(RUN)


# --- matplotlib: importing firstorder.plots leaves the backend alone; the command sets Agg --------


def _backend_after(code: str, env_backend: str | None = None) -> str:
    import os

    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    if env_backend is not None:
        env["MPLBACKEND"] = env_backend
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().lower()


def test_importing_plots_does_not_switch_the_backend():
    # without MPLBACKEND, as the brief's check: the backend is the one matplotlib picks alone
    alone = _backend_after("import matplotlib; print(matplotlib.get_backend())")
    code = "import matplotlib; import firstorder.plots; print(matplotlib.get_backend())"
    assert _backend_after(code) == alone
    # and one chosen before the import stays (it used to become agg): svg writes files headless
    code = (
        "import matplotlib; matplotlib.use('svg'); import firstorder.plots; "
        "print(matplotlib.get_backend())"
    )
    assert _backend_after(code) == "svg"


def test_a_figure_of_plots_is_not_left_open_in_pyplot(tmp_path):
    import matplotlib.pyplot as plt

    from firstorder import plots
    from firstorder.run import run

    result = run(landscapes.get("canyon"), "gd", lr=0.1, steps=5, record="full")
    before = plt.get_fignums()
    fig = plots.trajectories_figure(result, landscapes.get("canyon"))
    assert plt.get_fignums() == before  # made without pyplot: nothing to close or leak
    assert plots.save(fig, tmp_path / "paths.png").stat().st_size > 0


def test_the_command_chooses_agg_unless_the_user_chose(tmp_path):
    code = (
        "import matplotlib; matplotlib.use('svg'); from firstorder.cli import main; "
        "main(['landscapes', '--json']); print(matplotlib.get_backend())"
    )
    assert _backend_after(code).splitlines()[-1] == "agg"
    assert _backend_after(code, env_backend="svg").splitlines()[-1] == "svg"
