"""A user's mistake gets one sentence and exit status 2, never a traceback; bad values that were
accepted silently are refused; a full or read-only disk is one clear line, with the last valid
results kept (issue 22's probe, case by case)."""

from __future__ import annotations

import errno
import json
import math
import shutil

import numpy as np
import pytest
import torch

from firstorder import files, landscapes
from firstorder.cli import main
from firstorder.memory import memory_available
from firstorder.optim import GD, Adam
from firstorder.run import run, run_many


def error_line(capsys) -> str:
    """The one line the CLI printed to stderr: no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = err.strip().splitlines()
    return line


RUN = ["run", "canyon", "--optimizer", "gd", "--lr", "0.01", "--steps", "3"]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["tour", "--out", "{file}"], "--out must be a folder this process can write"),
        (["tour", "--out", "{file}/sub"], "is a file, not a folder"),
        (["claims", "--only", "C1", "--out", "{file}"], "--out must be a folder"),
        (["cards", "--out", "{file}"], "--out must be a folder"),
        ([*RUN, "--plot", "{file}/trajectories.png"], "--plot must be a file name"),
        ([*RUN, "--plot", "{tmp}"], "--plot must end in one of"),
        ([*RUN, "--plot", "{tmp}/x.unknown"], "--plot must end in one of"),
        (["train", "--plot", "{file}/loss.png"], "--plot must be a file name"),
        ([*RUN[:-1], "-1"], "--steps must be an integer >= 0, got -1"),
        ([*RUN, "--tol", "0"], "--tol must be a finite number > 0, got 0"),
        ([*RUN, "--tol=-1e-3"], "--tol must be a finite number > 0"),
        ([*RUN, "--tol", "nan"], "--tol must be a finite number > 0, got nan"),
        ([*RUN, "--start", "nan,1"], "--start must be finite numbers, got nan,1."),
        ([*RUN, "--start", "1e999,1"], "--start must be finite numbers, got 1e999,1."),
        (["run", "canyon", "--optimizer", "gd", "--lr", "inf"], "lr must be a finite number"),
        (["run", "canyon", "--optimizer", "gd", "--lr", "1" + "0" * 400], "lr must be a finite"),
        (
            ["sweep", "canyon", "--optimizer", "gd", "--lr", "1e-4:1:2000000", "--steps", "2000"],
            "the grid must fit in memory: 2000000 configurations",
        ),
    ],
    ids=[
        "tour out is a file",
        "tour out under a file",
        "claims out is a file",
        "cards out is a file",
        "plot under a file",
        "plot is a folder",
        "plot suffix",
        "train plot under a file",
        "negative steps",
        "tol zero",
        "tol negative",
        "tol nan",
        "nan start",
        "infinite start",
        "lr inf",
        "lr 10**400",
        "grid too large",
    ],
)
def test_a_mistake_on_the_command_line_is_one_sentence_and_status_2(tmp_path, capsys, argv, words):
    (tmp_path / "file").write_text("")
    argv = [a.format(file=tmp_path / "file", tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    line = error_line(capsys)
    assert words in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # refused before any work


@pytest.fixture(scope="module")
def one_tour(tmp_path_factory):
    out = tmp_path_factory.mktemp("tour")
    assert main(["tour", "--quick", "--only", "C1", "--jobs", "1", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize(
    "fault, reason",
    [("replace", "No space left on device"), ("open", "Read-only file system")],
    ids=["disk full", "read-only"],
)
def test_a_full_or_read_only_disk_during_a_tour_is_one_line_and_the_last_results_stay(
    one_tour, tmp_path, capsys, monkeypatch, fault, reason
):
    out = tmp_path / "out"
    shutil.copytree(one_tour, out)
    before = (out / "results.json").read_text()
    capsys.readouterr()
    code = errno.ENOSPC if fault == "replace" else errno.EROFS
    real = {"replace": files.os.replace, "open": open}[fault]

    def failing(*args, **kwargs):  # the disk fails when the results are written
        if "results.json" in str(args[-1] if fault == "replace" else args[0]):
            raise OSError(code, reason)
        return real(*args, **kwargs)

    if fault == "replace":
        monkeypatch.setattr(files.os, "replace", failing)
    else:
        monkeypatch.setattr(files, "open", failing, raising=False)  # files' own open
    assert main(["tour", "--quick", "--only", "C1", "--jobs", "1", "--out", str(out)]) == 1
    line = error_line(capsys)
    assert line.startswith("firstorder tour: error: could not write ")
    assert f"results.json': {reason}" in line
    assert (out / "results.json").read_text() == before  # the last valid results
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


EVIL = {
    "id": "C1",
    "kind": "claim",
    "claim": "c",
    "criterion": "k",
    "verdict": "holds",
    "evidence": "e",
    "figures": ["../../../../etc/passwd"],
}


@pytest.mark.parametrize(
    "content, words",
    [
        (b"{}", "must be an object with a list of findings"),
        (b'{"findings": "abc"}', "must be an object with a list of findings"),
        (b"[1, 2]", "must be an object with a list of findings"),
        (b"\xff\xfe{}", "must be UTF-8 JSON, got other bytes"),
        (b'{"findings": [{"id": "C1"}]}', "must have the text field 'kind'"),
        (json.dumps({"findings": [EVIL]}).encode(), "must be inside the results folder"),
        (
            json.dumps({"findings": [{**EVIL, "figures": ["/etc/passwd"]}]}).encode(),
            "must be inside the results folder",
        ),
    ],
    ids=["{}", "findings text", "a list", "not utf-8", "fields", "../ path", "absolute path"],
)
def test_cards_from_a_bad_results_file_is_one_sentence_naming_it(tmp_path, capsys, content, words):
    results = tmp_path / "results.json"
    results.write_bytes(content)
    out = tmp_path / "cards"
    assert main(["cards", "--from", str(results), "--out", str(out)]) == 2
    line = error_line(capsys)
    assert words in line and ("results.json" in line or "figures of C1" in line), line
    assert not out.exists() or not list(out.iterdir())  # nothing copied


# --- the Python API: values that were accepted silently -----------------------------------------

F = landscapes.get("canyon")


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(lr=math.inf), "lr must be a finite number >= 0, got inf"),
        (dict(lr=10**400), "lr must be a finite number >= 0, got an integer too large"),
        (dict(lr=0.1, tol_x=0.0), "tol_x must be a finite number > 0 or None, got 0.0"),
        (dict(lr=0.1, tol_f=-1.0), "tol_f must be a finite number >= 0 or None, got -1.0"),
        (dict(lr=0.1, tol_f=math.nan), "tol_f must be a finite number >= 0 or None, got nan"),
        (dict(lr=0.1, tol_x=math.inf), "tol_x must be a finite number > 0 or None, got inf"),
        (dict(lr=0.1, tol_f="small"), "tol_f must be a finite number >= 0 or None"),
        (dict(lr=0.1, steps=True), "steps must be an integer >= 0, got True"),
        (dict(lr=0.1, steps=2.5), "steps must be an integer >= 0, got 2.5"),
        (dict(lr=0.1, starts=[[math.nan, 0.0]]), "starts must be finite numbers"),
        (dict(lr=0.1, starts=[[0.0, 0.0], [1.0, math.inf]]), "got [1.0, inf] as start 1"),
        (dict(lr=0.1, starts=[[10**400, 0]]), "starts must be rows of numbers"),
    ],
    ids=[
        "lr inf",
        "lr 10**400",
        "tol_x 0",
        "tol_f negative",
        "tol_f nan",
        "tol_x inf",
        "tol_f text",
        "steps True",
        "steps fractional",
        "nan start",
        "infinite second start",
        "start 10**400",
    ],
)
def test_run_refuses_bad_values_in_one_sentence(kwargs, words):
    kwargs = {"steps": 5, **kwargs}
    with pytest.raises(ValueError) as err:
        run(F, "gd", **kwargs)
    assert words in str(err.value)


@pytest.mark.parametrize("make", [GD, Adam])
def test_an_optimizer_refuses_an_infinite_lr(make):
    with pytest.raises(ValueError, match="lr must be a finite number >= 0, got inf"):
        make([torch.zeros(2, requires_grad=True)], lr=math.inf)


def test_a_grid_too_large_for_memory_is_refused_up_front_with_its_size():
    # 2e6 configurations × 2000 steps ran 225 s and then ran out of memory: now refused at once,
    # before the grid is even built (a list of 2e6 values is all that is made)
    lr = torch.logspace(-4, 0, 2_000_000, dtype=torch.float64)
    with pytest.raises(ValueError) as err:
        run_many(F, [("gd", {"lr": lr})], steps=2000, record="curves")
    message = str(err.value)
    need = 2_000_000 * len(F.starts) * (2001 * 4 * 2 + 16 * 2) * 8
    assert f"need about {need / 1e9:.3g} GB" in message
    assert f"at most {memory_available() // 2 / 1e9:.3g} GB" in message


@pytest.mark.parametrize(
    "axis",
    [
        np.logspace(-4, 0, 1000),
        (float(a) for a in np.logspace(-4, 0, 1000)),  # read once: counted, then run
        range(1, 1001),
    ],
    ids=["numpy", "generator", "range"],
)
def test_the_memory_check_counts_every_kind_of_axis_as_the_grid_does(axis, monkeypatch):
    # the grid reads a NumPy array or a generator of 1000 values as 1000 configurations; so
    # must the check (it once counted them as one, 1000× too little memory)
    monkeypatch.setattr("firstorder.memory.memory_available", lambda: 2 * 10**6)
    with pytest.raises(ValueError, match="the grid must fit in memory: 1000 configurations"):
        run_many(F, [("gd", {"lr": axis})], steps=2000, record="curves")


def test_a_generator_axis_runs_every_value():
    r = run(F, "gd", lr=(a for a in (0.01, 0.02, 0.03)), steps=3, record="final")
    assert r.hyper["lr"] == [0.01, 0.02, 0.03]


def test_a_grid_that_fits_is_not_refused():
    r = run(F, "gd", lr=[0.01, 0.02], steps=3, record="full")
    assert r.configs == 2
