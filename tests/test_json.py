"""One treatment of non-finite numbers in every JSON firstorder writes: null, strict JSON.

Each writer is checked with a strict parser (one that refuses NaN and Infinity, as a browser's
JSON.parse does) on a result that holds non-finite numbers, and old files (bare NaN, the strings
"inf" of old results.json) still read."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from firstorder import files, landscapes, tour
from firstorder.cli import main
from firstorder.run import run

NON_FINITE = [math.nan, math.inf, -math.inf]


def strict(text: str):
    """Parse as JSON proper: NaN, Infinity and -Infinity are not JSON."""

    def refuse(word: str):
        raise AssertionError(f"{word} is not JSON")

    return json.loads(text, parse_constant=refuse)


# --- the helper itself -------------------------------------------------------------------------


@pytest.mark.parametrize("x", NON_FINITE)
@pytest.mark.parametrize(
    "box",
    [
        float,
        np.float64,
        np.float32,
        lambda v: np.array(v),  # 0-d array
        lambda v: torch.tensor(v, dtype=torch.float64),  # 0-d tensor
        lambda v: torch.tensor(v, dtype=torch.float32),
    ],
)
def test_a_non_finite_number_of_any_kind_is_null(x, box):
    assert files.json_safe(box(x)) is None
    assert strict(files.to_json({"a": [1, box(x), (box(x), 2.5)]})) == {"a": [1, None, [None, 2.5]]}


def test_finite_numbers_and_other_values_are_kept_exactly():
    value = {"f": 0.1, "i": 3, "b": True, "s": "inf as text", "n": None, "t": (1, 2)}
    assert files.json_safe(value) == {**value, "t": [1, 2]}
    # a finite float32 keeps its value: float32 → Python float is exact
    assert files.json_safe(np.float32(0.1)) == float(np.float32(0.1))
    assert files.json_safe(torch.tensor([[1.0, math.inf]])) == [[1.0, None]]
    assert strict(files.to_json([0.1, 1e308])) == [0.1, 1e308]


def test_what_json_cannot_hold_is_still_an_error():
    with pytest.raises(TypeError):  # a bug in the writer, not something to hide as null
        files.to_json({"path": Path("/tmp")})


def test_old_files_read_as_new_ones_are_written():
    # bare NaN/Infinity (old run --json, saved trajectories); "inf" strings (old results.json)
    old = '{"a": NaN, "b": [Infinity, -Infinity, 1.5], "c": "inf", "d": ["-inf", "nan"], "e": "x"}'
    assert files.from_json(old) == {
        "a": None,
        "b": [None, None, 1.5],
        "c": None,
        "d": [None, None],
        "e": "x",
    }


# --- every writer ---------------------------------------------------------------------------------


def test_results_json_of_a_tour_is_strict_json_with_null(tmp_path):
    from firstorder.experiments import Finding

    finding = Finding(
        id="C4",
        kind="claim",
        title="t",
        claim="c",
        criterion="k",
        verdict="partly",
        evidence="e",
        conditions="",
        explanation="x",
        # floats, and the strings experiments.base made of them before: both null
        numbers={"ratio": math.inf, "per_seed": [math.nan, 2.0], "nested": {"g": "-inf"}},
        figures=[],
        seconds=0.5,
    )
    tour.save([finding], tmp_path, quick=True, seed=0, seconds=1.0)
    data = strict((tmp_path / "results.json").read_text())
    assert data["findings"][0]["numbers"] == {
        "ratio": None,
        "per_seed": [None, 2.0],
        "nested": {"g": None},
    }
    assert tour.load(tmp_path / "results.json")[0]["numbers"]["ratio"] is None


def test_a_results_json_of_an_earlier_version_still_loads(tmp_path):
    old = {"mode": "quick", "seed": 0, "findings": [{"id": "C2", "numbers": {"r": ["inf", 1.0]}}]}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(old))
    assert tour.load(path)[0]["numbers"] == {"r": [None, 1.0]}


def test_a_training_history_is_strict_json_with_null():
    from firstorder.train import History, Record

    history = History(
        [
            Record(step=0, epoch=0.0, train_risk=2.3, test_risk=2.3),
            Record(step=1, epoch=0.5, train_risk=math.nan, test_risk=math.inf, grad_norm=math.inf),
        ],
        diverged_at=1,
        message="diverged",
    )
    data = strict(history.to_json())
    last = data["records"][1]
    assert [last["train_risk"], last["test_risk"], last["grad_norm"]] == [None, None, None]
    assert data["records"][0]["train_risk"] == 2.3


def _diverged_run():
    """A real run, with a non-finite final value put in: the writer must carry any values."""
    result = run(landscapes.get("canyon"), "gd", lr=0.1, steps=5)
    result.final_f[0, 0] = math.nan
    result.final_f[0, 1] = math.inf
    return result


def test_saved_trajectories_are_strict_json_with_null(tmp_path):
    path = _diverged_run().save(tmp_path / "runs.json")
    rows = strict(path.read_text())
    assert [rows[0]["final_f"], rows[1]["final_f"]] == [None, None]
    assert all(math.isfinite(r["final_f"]) for r in rows[2:])


def test_run_json_on_the_command_line_is_strict_json(monkeypatch, capsys):
    import firstorder.run

    # the command imports run when it runs: it gets this one
    monkeypatch.setattr(firstorder.run, "run", lambda *a, **k: _diverged_run())
    assert main(["run", "canyon", "--optimizer", "gd", "--lr", "0.1", "--json"]) == 0
    rows = strict(capsys.readouterr().out)
    assert rows[0]["final_f"] is None and rows[1]["final_f"] is None


def test_sweep_json_of_a_diverging_step_size_is_strict_json(capsys):
    # α = 5 sends every start of the canyon off the map within a few steps: more than half
    # diverged, so the median gap is +inf (trajectories.final_gap), written as null
    argv = ["sweep", "canyon", "--optimizer", "gd", "--lr", "0.1,5", "--steps", "50", "--json"]
    assert main(argv) == 0
    slow, diverged = strict(capsys.readouterr().out)
    assert diverged["lr"] == 5.0 and diverged["diverged"] == 1.0
    assert diverged["median_gap"] is None
    assert math.isfinite(slow["median_gap"])


def test_the_playground_answers_strict_json_with_null():
    from firstorder.serve import app

    text = app._dumps({"f": [1.0, math.nan], "g": np.array([math.inf, 2.0])})
    assert strict(text) == {"f": [1.0, None], "g": [None, 2.0]}
