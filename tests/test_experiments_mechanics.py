"""The optimizer-mechanics claims C2–C7 and C9: each runs in quick mode and returns a complete
finding, and each judge can be contradicted: numbers that go against the claim give "fails",
numbers that bear it out give "holds" (or "partly"), so no verdict is fixed by the code."""

from firstorder import experiments
from firstorder.experiments import Context, run_experiment
from firstorder.experiments import c02_adagrad_sign as c02
from firstorder.experiments import c03_adagrad_decay as c03
from firstorder.experiments import c04_rmsprop_no_decay as c04
from firstorder.experiments import c05_momentum_sum as c05
from firstorder.experiments import c06_momentum_step_scale as c06
from firstorder.experiments import c07_bias_correction as c07
from firstorder.experiments import c09_adam_moments as c09


def test_same_seed_gives_the_same_numbers(tmp_path):
    exp = experiments.get("C5")  # a random gradient sequence drawn from the seed
    a = run_experiment(exp, Context(quick=True, seed=3, out=tmp_path / "a", seeds=2))
    b = run_experiment(exp, Context(quick=True, seed=3, out=tmp_path / "b", seeds=2))
    assert a.numbers == b.numbers


# --- each judge flips when the numbers flip -------------------------------------------------


def c05_numbers(terminal: float, sum_err: float = 1e-16) -> dict:
    rhos = [0.0, 0.5, 0.9, 0.99]
    return {
        "rhos": rhos,
        "sum_rel_err": [sum_err] * 4,
        "terminal_speed_over_limit": [terminal] * 4,
        "cos_s_minus_g": [1.0] * 4,
        "steps_to_90pct": [0, 3, 21, 229],
    }


def test_c05_judge_holds_for_the_limit_and_fails_when_the_speed_is_off():
    assert c05.judge(c05_numbers(1.0)).verdict == "holds"
    assert c05.judge(c05_numbers(0.5)).verdict == "fails"  # speed half of α‖g‖/(1−ρ)
    assert c05.judge(c05_numbers(1.0, sum_err=1e-3)).verdict == "fails"  # not the weighted sum


def c06_numbers(speeds: list[float], paths: list[float], scale_err: float = 1e-4) -> dict:
    return {
        "rhos": [0.0, 0.5, 0.9, 0.99],
        "slope_speed_over_alpha_g": speeds,
        "slope_scale_rel_err": scale_err,
        "canyon_lrs": [0.01, 0.05],
        "canyon_path_median": [paths, [2 * p for p in paths]],
        "canyon_diverged": [[False] * 4, [False] * 4],
        "window": 50,
    }


def test_c06_judge_follows_which_rho_takes_the_larger_steps():
    # the two halves are judged apart: (a) the 1/(1−ρ) scale, (b) "much larger for small ρ₁"
    as_measured = c06_numbers([1, 2, 10, 100], [1.8, 2.3, 6.1, 13.9])  # (a) yes, (b) no
    j = c06.judge(as_measured)
    assert j.verdict == "partly" and "holds: the step is scaled" in j.conditions
    assert "fails: the steps are smaller" in j.conditions
    as_in_the_notes = c06_numbers([100, 10, 2, 1], [13.9, 6.1, 2.3, 1.8])
    assert c06.judge(as_in_the_notes).verdict == "holds"
    neither = c06_numbers([1, 2, 10, 100], [1.8, 2.3, 6.1, 13.9], scale_err=0.3)
    assert c06.judge(neither).verdict == "fails"
    mixed = c06_numbers([100, 10, 2, 1], [1.8, 2.3, 6.1, 13.9])  # slope yes, canyon no
    assert c06.judge(mixed).verdict == "partly"


def c07_numbers(unc_first: list[float], unc_peak: list[float], cor_peak: float = 1.0) -> dict:
    return {
        "rho1s": [0.9, 0.99],
        "rho2s": [0.9, 0.999],
        "uncorrected_first": unc_first,
        "uncorrected_peak": unc_peak,
        "corrected_peak": [cor_peak] * 4,
    }


def test_c07_judge_needs_an_explosion_that_the_correction_prevents():
    # every uncorrected run overshoots, every corrected one stays at α: the claim
    assert c07.judge(c07_numbers([3, 3, 3, 3], [6, 6, 6, 6])).verdict == "holds"
    # the uncorrected steps never exceed α (a cold start only): nothing explodes
    assert c07.judge(c07_numbers([0.3, 0.03, 0.3, 0.1], [1, 1, 1, 1])).verdict == "fails"
    # the corrected steps explode as well: the correction does not prevent anything
    assert c07.judge(c07_numbers([3, 3, 3, 3], [6, 6, 6, 6], cor_peak=6)).verdict == "fails"
    partly = c07.judge(c07_numbers([0.3, 3.2, 0.03, 0.3], [1, 6.6, 1, 2.1]))
    assert partly.verdict == "partly" and "stall" in partly.conditions


def c09_numbers(noise_ratio: float, v_over_var: list[float]) -> dict:
    mus = [0.0, 0.3, 1.0, 3.0, 10.0]
    return {
        "sigmas": [0.0, 0.3, 1.0, 3.0, 10.0],
        "mus": mus,
        "noise_ratio_rho1_09_vs_0": {"0.3": noise_ratio, "1": noise_ratio, "10": noise_ratio},
        "quadratic_noise_ratio": noise_ratio,
        "quadratic_dist_rms": [0.5, 0.5],
        "v_hat_over_variance": v_over_var,
        "v_hat_over_second_moment": [v / (1 + m * m) for v, m in zip(v_over_var, mus)],
        "mean_abs_update_by_sigma": [1.0, 0.96, 0.71, 0.33, 0.2],
    }


def test_c09_judge_separates_variance_from_second_moment():
    second_moment = [1.0, 1.09, 2.0, 10.0, 101.0]
    assert c09.judge(c09_numbers(0.22, [1.0] * 5)).verdict == "holds"
    assert c09.judge(c09_numbers(0.22, second_moment)).verdict == "partly"
    assert c09.judge(c09_numbers(1.0, [1.0] * 5)).verdict == "fails"  # m̂ does not calm anything


def c03_setting(first: list[float], last: list[float], faster: float, level: float = 1.0):
    return {
        "scale": [1.0, 10.0],
        "eta_first": first,
        "eta_last": last,
        "late_slope": [-0.5] * 2,
        "pairs": 1,
        "level": level,
        "faster": faster,
        "slower": 0.0,
    }


def test_c03_judge_distinguishes_a_lower_step_from_a_faster_decay():
    faster = {"s": c03_setting([1.0, 0.1], [0.5, 0.01], faster=1.0)}
    parallel = {"s": c03_setting([1.0, 0.1], [0.1, 0.01], faster=0.0)}
    growing = {"s": c03_setting([1.0, 0.1], [2.0, 0.2], faster=0.0)}
    assert c03.judge({"settings": faster}).verdict == "holds"
    assert c03.judge({"settings": parallel}).verdict == "partly"
    assert c03.judge({"settings": growing}).verdict == "fails"


def c04_numbers(keep: float, shrink: float, flips: float) -> dict:
    cell = [[shrink, shrink], [shrink, shrink]]
    return {
        "steps": 1000,
        "configs": [{"lr": 0.01, "rho": 0.9, "eps": 1e-6}],
        "rmsprop": {
            "arrived": [[[True, True], [True, True]]],
            "shrink": [cell],
            "flip_rate": [[[flips, flips], [flips, flips]]],
            "eta_keep": [[[keep, keep], [keep, keep]]],
            "eta_lambda_steep": [[2.0, 2.0]],
        },
        "adagrad": {"eta_keep": [[[0.3, 0.3], [0.3, 0.3]]]},
        "noise_eta_keep_rmsprop": [keep],
        "noise_eta_keep_adagrad": 0.32,
    }


def test_c04_judge_wants_a_step_that_stays_and_a_run_that_hops():
    assert c04.judge(c04_numbers(keep=1.0, shrink=1.0, flips=1.0)).verdict == "holds"
    assert c04.judge(c04_numbers(keep=0.05, shrink=1.0, flips=1.0)).verdict == "fails"
    assert c04.judge(c04_numbers(keep=1.0, shrink=1e-4, flips=0.0)).verdict == "fails"


def test_c02_judge_fails_when_the_first_step_is_not_sign_like():
    numbers = {
        "scales_over_eps": [1e-2, 1e4],
        "cos_first_constant": [0.55, 1.0],
        "cos_median_constant": [0.68, 1.0],
        "cos_median_noisy": [0.6, 0.99],
        "quadratic_cos_median": {"aligned": [0.99]},
        "surface_scales": [1e-9, 1.0],
        "surface_deviation": [0.9, 0.0],
        "lrs": [0.1, 1.0],
        "stable_gd": [True, False],
        "stable_adagrad": [True, True],
    }
    assert c02.judge(numbers).verdict == "partly"  # fine above ε, not below
    numbers["cos_first_constant"] = [0.55, 0.6]  # even the first step follows |g|: GD-like
    assert c02.judge(numbers).verdict == "fails"
