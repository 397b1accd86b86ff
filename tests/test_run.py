"""The batched engine: known thresholds from theory, and agreement with firstorder.optim."""

import math
import threading

import numpy as np
import pytest
import torch

from firstorder import landscapes, optim
from firstorder.run import grid, run, run_many, summarize
from firstorder.stepping import SINGLE_THREAD_BELOW, threads_for


def test_gd_threshold_on_d2l_canyon():
    # f = 0.1 x1^2 + 2 x2^2 has lambda_max = 4: GD is stable iff lr < 2/4 = 0.5 (d2l: 0.4 vs 0.6)
    f = landscapes.get("canyon")
    r = run(f, "gd", starts=[[-5.0, -2.0]], steps=400, lr=[0.4, 0.49, 0.51, 0.6], bound=1e6)
    gap = r.final_f[:, 0]
    assert gap[0] < 1e-6 and gap[1] < 1e-3
    assert (r.diverged_at[2:, 0] >= 0).all()  # both lrs above 2/lambda leave the bound


@pytest.mark.parametrize("lam", [1.0, 10.0, 250.0])
def test_gd_converges_below_two_over_lambda_and_diverges_above(lam):
    f = landscapes.get("quadratic", eigenvalues=(lam / 50, lam))
    r = run(f, "gd", starts=[[1.0, 1.0]], steps=3000, lr=[1.9 / lam, 2.1 / lam], bound=1e8)
    assert r.final_f[0, 0] < 1e-10
    assert r.diverged_at[1, 0] >= 0


def test_momentum_with_goh_optimal_parameters_converges_at_the_predicted_rate():
    # Goh, "Why Momentum Really Works" (2017): alpha* = (2/(sqrt(l_min)+sqrt(l_max)))^2,
    # rho* = ((sqrt(k)-1)/(sqrt(k)+1))^2 gives the rate (sqrt(k)-1)/(sqrt(k)+1).
    l_min, l_max = 0.01, 1.0
    kappa = l_max / l_min
    alpha = (2 / (math.sqrt(l_min) + math.sqrt(l_max))) ** 2
    rho = ((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)) ** 2
    f = landscapes.get("quadratic", eigenvalues=(l_min, l_max), angle=30.0)
    r = run(f, "momentum", starts=[[3.0, -2.0]], steps=150, lr=alpha, rho=rho)
    err = (r.x[:, 0, 0] - torch.tensor(f.x_star, dtype=torch.float64)).norm(dim=-1)
    measured = (err[150] / err[50]).item() ** (1 / 100)
    predicted = (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
    assert measured == pytest.approx(predicted, rel=0.05)


@pytest.mark.parametrize("kappa", [10.0, 1e3, 1e6])
def test_newton_reaches_the_minimum_of_a_quadratic_in_one_step(kappa):
    f = landscapes.get("quadratic", kappa=kappa, dim=4, seed=3, center=(1.0, -2.0, 0.5, 3.0))
    r = run(f, "newton", starts=[[7.0, 7.0, -7.0, 2.0]], steps=1)
    np.testing.assert_allclose(r.x[1, 0, 0].numpy(), [1.0, -2.0, 0.5, 3.0], atol=1e-6)


def test_newton_lands_on_the_saddle_of_x2_minus_y2():
    f = landscapes.get("saddle")
    r = run(f, "newton", starts=[[1.0, 0.5], [-1.5, 1.0]], steps=1)
    np.testing.assert_allclose(r.x[1, 0].numpy(), np.zeros((2, 2)), atol=1e-12)


def test_newton_optimizer_matches_the_engine_and_strict_mode_refuses_a_saddle():
    f = landscapes.get("rosenbrock")
    theta = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    opt = optim.Newton([theta], lr=1.0)
    for _ in range(3):
        opt.step(lambda: f(theta))
    r = run(f, "newton", starts=[[-1.2, 1.0]], steps=3)
    torch.testing.assert_close(theta.detach(), r.final_x[0, 0], rtol=1e-12, atol=1e-12)

    s = landscapes.get("saddle")
    theta = torch.tensor([1.0, 0.5], dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError, match="positive definite"):
        optim.Newton([theta], strict=True).step(lambda: s(theta))
    optim.Newton([theta], strict=True, damping=3.0).step(lambda: s(theta))  # damped: allowed


BATCH_CASES = [
    ("gd", optim.GD, dict(lr=[1e-4, 5e-4])),
    ("momentum", optim.Momentum, dict(lr=[1e-4, 5e-5], rho=[0.5, 0.9])),
    ("adagrad", optim.AdaGrad, dict(lr=[0.1, 0.5], eps=1e-7)),
    ("rmsprop", optim.RMSProp, dict(lr=[0.01, 0.05], rho=[0.9, 0.99])),
    ("adam", optim.Adam, dict(lr=[0.01, 0.1], rho1=[0.0, 0.9], bias_correction=False)),
    ("adam", optim.Adam, dict(lr=0.05, rho2=[0.9, 0.999])),
]


@pytest.mark.parametrize(("name", "cls", "hyper"), BATCH_CASES)
def test_batched_engine_equals_optimizers_run_one_by_one(name, cls, hyper):
    f = landscapes.get("rosenbrock")
    starts = [[-1.2, 1.0], [0.5, -0.5], [1.2, 1.2]]
    r = run(f, name, starts=starts, steps=40, **hyper)
    # every combination of the lists is one configuration
    _, n_configs = grid(**hyper)
    assert r.configs == n_configs
    seen = {tuple(r.config(c)[k] for k in hyper) for c in range(r.configs)}
    assert len(seen) == n_configs
    for c in range(r.configs):
        kwargs = {k: r.config(c)[k] for k in hyper}
        for b, x0 in enumerate(starts):
            theta = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
            opt = cls([theta], **kwargs)
            path = [theta.detach().clone()]
            for _ in range(40):
                opt.zero_grad()
                f(theta).backward()
                opt.step()
                path.append(theta.detach().clone())
            torch.testing.assert_close(r.x[:, c, b], torch.stack(path), rtol=1e-13, atol=1e-13)


def test_each_trajectory_stops_on_its_own_and_divergence_is_a_result():
    f = landscapes.get("canyon")
    r = run(
        f, "gd", starts=[[-5.0, -2.0]], steps=500, lr=[0.01, 0.4, 0.6, 0.45], tol_f=1e-8, bound=1e6
    )
    reached, diverged = r.steps_to_target[:, 0], r.diverged_at[:, 0]
    assert reached[0] == -1 and diverged[0] == -1  # too slow for the budget: neither
    assert reached[1] > 0 and reached[3] > 0 and reached[1] < reached[0].abs() + 500
    # lr = 0.6 > 2/lambda: the x2 component grows as |1 - 0.6 * 4|^k = 1.4^k past the bound
    assert diverged[2] > 0 and reached[2] == -1
    # frozen after stopping: the recorded f stays at the value where it stopped
    k = int(reached[1])
    assert torch.equal(r.f[-1, 1, 0], r.f[k, 1, 0])
    rows = summarize(r)
    assert rows[1]["success"] == 1.0 and rows[2]["diverged"] == 1.0


def test_tidy_table_and_files(tmp_path):
    f = landscapes.get("himmelblau")
    r = run(f, "adam", steps=300, lr=[0.05, 0.1], tol_x=1e-3)
    rows = r.records()
    assert len(rows) == 2 * len(f.starts)
    assert {"lr", "rho1", "start", "final_f", "steps_to_target"} <= set(rows[0])
    r.save(tmp_path / "r.csv")
    r.save(tmp_path / "r.json")
    assert (tmp_path / "r.csv").read_text().count("\n") == len(rows) + 1
    with pytest.raises(ValueError, match="path must end in .csv or .json"):
        r.save(tmp_path / "r.txt")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(optimizer="sgd", lr=0.1), "optimizer must be one of"),
        (dict(optimizer="gd"), "lr must be given"),
        (dict(optimizer="gd", lr=[0.1, -1.0]), r"lr must be a finite number >= 0, got -1.0"),
        (dict(optimizer="momentum", lr=0.1, rho=[0.5, 1.0]), r"rho must be in \[0, 1\)"),
        (dict(optimizer="gd", lr=0.1, rho=0.9), "rho is not a hyperparameter of gd"),
        (dict(optimizer="gd", lr=0.1, steps=-1), "steps must be"),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        run(landscapes.get("canyon"), **kwargs)


def test_run_many_equals_each_rule_run_alone():
    f = landscapes.get("six_hump_camel")
    specs = [
        ("gd", dict(lr=[0.01, 0.05])),
        ("adam", dict(lr=0.05, rho1=[0.5, 0.9])),
        ("newton", dict(damping=1.0)),
        ("rmsprop", dict(lr=0.01)),
    ]
    together = run_many(f, specs, steps=60, tol_f=1e-9, bound=10.0)
    for (name, hyper), got in zip(specs, together):
        alone = run(f, name, steps=60, tol_f=1e-9, bound=10.0, **hyper)
        assert got.optimizer == alone.optimizer and got.hyper == alone.hyper
        # Together the batch is longer, and torch computes six-hump camel's x⁴ with a vectorised
        # pow in the body of a tensor and std::pow in its tail (which part a trajectory falls
        # in depends on its position and the CPU's vector width): up to 2 ulps apart. So each
        # of the 60 steps may differ by 4u of the largest |x|, |f|, carried to the end by the
        # dynamics and magnified by at most A, measured by kicking the starts by 1e-9.
        kick = 1e-9
        starts = torch.tensor(f.starts, dtype=torch.float64)
        kicked = starts * (
            1
            + kick
            * torch.randn(
                starts.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64
            )
        )
        moved = run(f, name, starts=kicked, steps=60, tol_f=1e-9, bound=10.0, **hyper)
        bounds = {}
        for field in ("x", "f"):
            a, b = getattr(alone, field), getattr(moved, field)
            scale = a.abs().nan_to_num(0.0, 0.0, 0.0).max().item()
            amplification = max(
                (b - a).abs().nan_to_num(0.0, 0.0, 0.0).max().item() / (kick * scale), 1.0
            )
            bounds[field] = 60 * 4 * 2.0**-53 * amplification * scale
            torch.testing.assert_close(
                getattr(got, field), a, rtol=0, atol=bounds[field], equal_nan=True
            )
        # The stops compare f − f* with tol_f and max|x| with the bound: two runs within the
        # bounds above stop at the same step unless a value lies within its bound of a threshold,
        # which the first two lines rule out (so the equalities cannot flip on another CPU).
        finite = alone.f.isfinite()
        assert ((alone.f - f.minima[0].f - 1e-9)[finite].abs() > bounds["f"]).all()
        assert ((alone.x.abs().amax(-1) - 10.0)[finite].abs() > bounds["x"]).all()
        assert torch.equal(got.steps_to_target, alone.steps_to_target)
        assert torch.equal(got.diverged_at, alone.diverged_at)
        if alone.effective_step is not None:
            # α/(√r + ε) from r, an average of g⊙g along trajectories that agree to the bound
            # on x above (≤ 1e-12 relative here): r inherits twice the gradients' relative error
            # and the root halves it, plus a few roundings; 1e-9 leaves three orders of margin
            # and still fails on any change of the formula (which moves it by far more).
            torch.testing.assert_close(got.effective_step, alone.effective_step, rtol=1e-9, atol=0)


# --- divergence and escape, against GD's closed form on a quadratic ------------------------------
# On f = ½ Σ λ_i x_i² GD is x_{k,i} = (1 − αλ_i)^k x_{0,i}: it diverges iff some |1 − αλ_i| > 1,
# i.e. αλ_max > 2 (α > 0), and leaves the box max_i |x_i| ≤ bound at the first k where
# |1 − αλ_i|^k |x_{0,i}| > bound. That k is computed here in float64 NumPy, apart from the engine.


def _first_exit(x0: np.ndarray, factors: np.ndarray, bound: float, steps: int) -> int:
    """The first k ≤ steps with max_i |factor_i^k x0_i| > bound, −1 if none; checks that no
    |x_k| sits within 1e-9 of bound (so the engine's rounding, ~k u relative, cannot flip it)."""
    for k in range(steps + 1):
        xk = np.abs(factors**k * x0)
        assert not np.any(np.abs(xk / bound - 1) < 1e-9), "too close to the bound to test"
        if xk.max() > bound:
            return k
    return -1


@pytest.mark.parametrize("lr", [0.1, 0.45, 0.5, 0.55, 0.99, 1.1, 10.0])
def test_gd_on_the_canyon_diverges_iff_alpha_lambda_max_exceeds_two(lr):
    f = landscapes.get("canyon")  # ½ xᵀ diag(0.2, 4) x, its default bound
    lam = np.array([0.2, 4.0])
    x0 = np.array(f.starts, dtype=np.float64)
    steps = 200
    r = run(f, "gd", starts=x0, steps=steps, lr=lr, record="final")
    want = [_first_exit(s, 1 - lr * lam, f.bound, steps) for s in x0]
    assert r.diverged_at[0].tolist() == want
    assert all((k >= 0) == (lr * lam.max() > 2) for k in want)  # the theory the test relies on
    if lr * lam.max() > 2:
        if abs(1 - 4 * lr) >= 2.9:  # a fast blow-up (α ≥ 0.99) is caught within a few steps
            assert max(want) <= 8
        assert summarize(r)[0]["diverged"] == 1.0 and summarize(r)[0]["median_gap"] == math.inf
        assert r.outcome(0, 0) == ("diverged", want[0])


def test_the_default_bound_is_100_times_the_window():
    for name in landscapes.names():
        f = landscapes.get(name)
        edge = max(abs(v) for axis in f.window for v in axis)
        assert f.bound == (2.0 if f.unbounded_below else 100 * edge), name


@pytest.mark.parametrize("lr", [0.05, 0.2])
def test_leaving_the_saddle_is_an_escape_not_a_divergence(lr):
    # x² − y² = ½ xᵀ diag(2, −2) x: GD multiplies x by 1 − 2α and y by 1 + 2α each step
    f = landscapes.get("saddle")
    x0 = np.array(f.starts, dtype=np.float64)
    r = run(f, "gd", starts=x0, steps=500, lr=lr)
    want = [_first_exit(s, np.array([1 - 2 * lr, 1 + 2 * lr]), f.bound, 500) for s in x0]
    assert all(k > 0 for k in want)
    assert r.escaped_at[0].tolist() == want
    assert (r.diverged_at == -1).all()
    assert r.outcome(0, 1) == ("escaped", want[1])
    assert summarize(r)[0]["escaped"] == 1.0 and summarize(r)[0]["diverged"] == 0.0
    assert r.records()[0]["escaped_at"] == want[0]


def test_a_non_finite_run_on_the_saddle_still_diverges():
    f = landscapes.get("saddle")
    # α = 1e308 (an infinite α is refused): x − α·2x overflows to −inf at the first step
    r = run(f, "gd", starts=[[1.0, 1e-3]], steps=5, lr=1e308)
    assert r.outcome(0, 0)[0] == "diverged" and r.escaped_at[0, 0] == -1


def test_a_run_that_reaches_nothing_ends_at_the_budget():
    f = landscapes.get("canyon")
    r = run(f, "gd", starts=[[-5.0, -2.0]], steps=3, lr=0.1)
    assert r.outcome(0, 0) == ("budget", None) and r.escaped_at is None


def test_a_small_batch_runs_on_one_thread_and_the_count_comes_back():
    seen = []
    f = landscapes.get("canyon")

    def spy(x):  # the landscape, noting the thread count it runs under
        seen.append(torch.get_num_threads())
        return f(x)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run(spy, "gd", starts=[[-5.0, -2.0]], steps=3, lr=0.1)
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_the_thread_count_comes_back_after_an_exception_and_big_batches_keep_theirs():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(RuntimeError, match="inside"), threads_for(10):
            assert torch.get_num_threads() == 1
            raise RuntimeError("inside")
        assert torch.get_num_threads() == 2
        with threads_for(SINGLE_THREAD_BELOW):
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_another_thread_does_not_change_the_process_thread_count():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    inside = []

    def work():
        with threads_for(10):
            inside.append(torch.get_num_threads())

    try:
        t = threading.Thread(target=work)
        t.start()
        t.join()
        assert inside == [2]
    finally:
        torch.set_num_threads(before)
