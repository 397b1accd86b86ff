"""The reproductions on networks: R3 (edge of stability) and R4 (Kingma & Ba, fig. 2).

Each runs in quick mode and returns a complete finding; each judge turns numbers that agree
with the paper into "holds" and numbers that contradict it into "fails", so the verdict is
earned by the measurement and not fixed by the code.
"""

import copy

import pytest

from firstorder.experiments import r3_edge_of_stability as r3
from firstorder.experiments import r4_kingma_ba as r4

# --- R3: edge of stability ---------------------------------------------------------------------


def r3_run(lr, start, top, ratio, loss_end=0.03, diverged_at=None):
    return {
        "lr": lr,
        "edge": 2 / lr,
        "lambda_start": start,
        "lambda_max": top,
        "step_reached": 120 if top >= r3.REACH * 2 / lr else None,
        "median_ratio_last_third": ratio,
        "loss_start": 0.8,
        "loss_end": loss_end,
        "loss_increases_after_edge": 12,
        "diverged_at": diverged_at,
    }


R3_AT_EDGE = {"runs": {"0.4": r3_run(0.4, 2.9, 5.8, 1.03), "0.5": r3_run(0.5, 2.9, 5.2, 1.05)}}


def test_r3_judge_holds_when_sharpness_rises_to_two_over_alpha_and_stays():
    assert r3.judge(R3_AT_EDGE).verdict == "holds"


@pytest.mark.parametrize(
    "run",
    [
        r3_run(0.4, 2.9, 3.1, 0.6),  # no progressive sharpening: λ_max stays far below 2/α
        r3_run(0.4, 2.9, 12.0, 2.3),  # λ_max shoots past 2/α and stays there
        r3_run(0.4, 5.5, 5.8, 1.1),  # already at the edge at initialization: nothing rose
        r3_run(0.4, 2.9, 5.8, 1.03, loss_end=0.9),  # the loss did not decrease
        r3_run(0.4, 2.9, 5.8, "nan", diverged_at=57),  # diverged
    ],
)
def test_r3_judge_fails_on_contradicting_numbers(run):
    numbers = {"runs": {"0.4": run, "0.5": copy.deepcopy(run) | {"lr": 0.5}}}
    numbers["runs"]["0.5"]["edge"] = run["edge"] * 0.4 / 0.5
    numbers["runs"]["0.5"]["lambda_start"] = run["lambda_start"] * 0.4 / 0.5
    numbers["runs"]["0.5"]["lambda_max"] = run["lambda_max"] * 0.4 / 0.5
    assert r3.judge(numbers).verdict == "fails"


def test_r3_judge_is_partly_when_only_some_step_sizes_reach_the_edge():
    numbers = copy.deepcopy(R3_AT_EDGE)
    numbers["runs"]["0.3"] = r3_run(0.3, 2.9, 5.6, 0.84)  # still climbing at the end
    j = r3.judge(numbers)
    assert j.verdict == "partly" and "0.4" in j.conditions and "0.3" not in j.conditions


# --- R4: Kingma & Ba, fig. 2 ---------------------------------------------------------------------


def r4_numbers(final: dict, epochs: dict) -> dict:
    return {
        "target": r4.TARGET,
        "optimizers": {
            n: {
                "lr": 0.01,
                "final_mean": final[n],
                "epochs_to_target_mean": epochs[n],
            }
            for n in r4.OPTIMIZERS
        },
    }


FAST = {"gd": 4.0, "momentum": 3.0, "adagrad": 2.5, "rmsprop": 2.5, "adam": 2.0}


def test_r4_judge_holds_when_adam_is_lowest_and_fastest():
    final = {"gd": 0.05, "momentum": 0.02, "adagrad": 0.011, "rmsprop": 0.015, "adam": 0.0105}
    assert r4.judge(r4_numbers(final, FAST)).verdict == "holds"


def test_r4_judge_fails_when_adam_is_worst_and_slowest():
    final = {"gd": 0.05, "momentum": 0.02, "adagrad": 0.01, "rmsprop": 0.015, "adam": 0.3}
    slow = FAST | {"adam": None}  # never reached the target loss
    assert r4.judge(r4_numbers(final, slow)).verdict == "fails"
    slower = FAST | {"adam": 5.0}
    assert r4.judge(r4_numbers(final, slower)).verdict == "fails"


def test_r4_judge_compares_adam_with_every_named_optimizer():
    final = {"gd": 0.05, "momentum": 0.02, "adagrad": 0.006, "rmsprop": 0.2, "adam": 0.02}
    j = r4.judge(r4_numbers(final, FAST))  # behind AdaGrad on the final loss only
    assert j.verdict == "partly" and "AdaGrad (a final loss" in j.conditions
    assert "RMSProp" not in j.conditions.split("but not with")[1]
    # ahead of momentum but slower than RMSProp: named, on speed
    slow = FAST | {"adam": 2.6}
    lowest = final | {"adam": 0.005}
    j = r4.judge(r4_numbers(lowest, slow))
    assert j.verdict == "partly" and "RMSProp (the target after 2.50" in j.conditions
    # a diverged optimizer (inf, as results.json writes it) never beats Adam
    assert r4.judge(r4_numbers(lowest | {"gd": "inf"}, FAST)).verdict == "holds"
    assert "not MNIST" in j.evidence and "not MNIST" in j.conditions


def test_r4_lr_grid_is_shared_and_log_spaced():
    assert r4.lr_grid(True) == [0.001, 0.01, 0.1, 1.0]
    full = r4.lr_grid(False)
    assert len(full) == 9 and full[0] == pytest.approx(10**-3.5, rel=1e-3)
    assert set(r4.lr_grid(True)) <= set(full)
