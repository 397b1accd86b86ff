"""How an experiment runs over seeds: each seed is measured and judged alone, the figures come
from the first seed, and a verdict that changes with the seed is reported as such."""

from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from firstorder.errors import UserValueError
from firstorder.experiments import (
    Context,
    Experiment,
    Judgement,
    Measurement,
    get,
    run_experiment,
)


def toy(verdict_of_seed, seeded: bool = True) -> Experiment:
    def measure(ctx: Context) -> Measurement:
        fig = plt.figure()
        return Measurement({"seed": ctx.seed}, [ctx.figure(fig, "toy")], "a toy")

    def judge(numbers: dict) -> Judgement:
        v = verdict_of_seed(numbers["seed"])
        return Judgement(
            v,
            f"seed {numbers['seed']}",
            "some condition" if v == "partly" else "",
            takeaway=f"t{numbers['seed']}",
            headline=f"h{numbers['seed']}",
        )

    return Experiment("T1", "toy", "a claim", "a criterion", measure, judge, seeded=seeded)


def test_seeds_that_agree_keep_the_verdict_and_the_first_seeds_figures(tmp_path):
    f = run_experiment(toy(lambda s: "holds"), Context(seed=4, out=tmp_path, seeds=3))
    assert f.seeds == [4, 5, 6] and f.seed_verdicts == ["holds"] * 3 and f.seeds_agree
    assert f.verdict == "holds" and f.evidence == "seed 4" and f.headline == "h4"
    assert [s["seed"] for s in f.numbers["per_seed"]] == [4, 5, 6]
    # only the first seed's figure is written
    assert [p.name for p in (tmp_path / "figures").iterdir()] == ["T1_toy.png"]
    assert all(Path(p).is_file() for p in f.figures)


def test_a_verdict_that_changes_with_the_seed_is_partly_and_says_so(tmp_path):
    f = run_experiment(
        toy(lambda s: "fails" if s == 1 else "holds"), Context(seed=0, out=tmp_path, seeds=3)
    )
    assert f.seed_verdicts == ["holds", "fails", "holds"] and not f.seeds_agree
    assert f.verdict == "partly"
    assert "changes with the seed" in f.conditions
    assert "holds at seed 0, 2" in f.conditions and "fails at seed 1" in f.conditions


def test_an_unseeded_experiment_runs_once(tmp_path):
    f = run_experiment(toy(lambda s: "holds", seeded=False), Context(out=tmp_path, seeds=3))
    assert f.seeds == [0] and "per_seed" not in f.numbers


def test_quick_and_full_seed_counts_and_bad_counts():
    assert Context(quick=True).n_seeds >= 1 and Context(quick=False).n_seeds >= 3
    # a user's mistake (the CLI's --seeds): the user-error class, still a ValueError
    with pytest.raises(UserValueError, match="seeds must be"):
        _ = Context(seeds=0).n_seeds


def test_an_unknown_experiment_id_is_a_users_mistake():
    with pytest.raises(UserValueError, match="experiment must be one of C1, .*got 'C99'"):
        get("C99")
