"""C12: "second order methods like the newton methode would not suffer from this problem because
… the step size is scaled in each direction individually based on its curvature"."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from firstorder import landscapes, plots
from firstorder.experiments import _tuning as tu
from firstorder.experiments._obstacles import canyon_problem
from firstorder.experiments.base import (
    Context,
    Experiment,
    Judgement,
    Measurement,
    ratio_words,
    register,
)
from firstorder.run import run

TARGET = 1e-10  # quadratics: f − f* < 1e-10
ROSEN_TARGET = 1e-8
FEW = 2  # Newton "does not suffer": median ≤ 2 steps on every quadratic canyon, whatever κ
FASTER = 5.0  # and ≥ 5× fewer steps than the best tuned first-order method on Rosenbrock
AT_SADDLE = 1e-6  # a run "converged to the saddle" when it ends within 1e-6 of it
ATTRACTED = 0.1  # Newton fails where ≥ 10 % of random starts converge to a saddle
NEWTON_STEPS = 30


def measure(ctx: Context) -> Measurement:
    kappas = ctx.pick([10, 1e3, 1e6], [10, 100, 1e3, 1e4, 1e5, 1e6])
    steps = ctx.pick(200, 1000)
    n_tune, n_fresh = ctx.pick((6, 16), (16, 64))
    quad = measure_quadratics(ctx, kappas, steps, n_tune, n_fresh)
    r_res = measure_rosenbrock(ctx, steps, n_tune, n_fresh)
    rosen_row = {
        o: {
            "lr": t.lr,
            "success": t.success,
            "mean_steps": t.mean_steps,
            "median_steps": t.median_steps,
        }
        for o, t in r_res.items()
    }
    fail = measure_indefinite(ctx, n_fresh)
    side = ctx.pick(31, 81)
    basin, at_s = newton_basins(side)
    # indefinite band of the double well: f_yy = 3y² − 1 < 0 for |y| < 1/√3
    band = newton_grid(side)[:, 1].abs() < 3**-0.5
    fail["double_well"]["indefinite_start_fraction_to_saddle"] = float(at_s[band].double().mean())
    fail["double_well"]["definite_start_fraction_to_saddle"] = float(at_s[~band].double().mean())
    figures = [draw(ctx, kappas, steps, quad, r_res, side, basin, at_s)]
    return Measurement(
        numbers={
            "budget": steps,
            "newton_budget": NEWTON_STEPS,
            "kappas": kappas,
            "quadratic": quad,
            "rosenbrock": rosen_row,
            "indefinite": fail,
        },
        figures=figures,
        explanation=(
            "Top left: Newton's step −H⁻¹g lands on the minimum of any quadratic canyon in one "
            "step, whatever κ and orientation, while tuned GD needs ever more steps as κ grows. "
            "Top middle and right: on Rosenbrock's curved canyon Newton arrives in a handful of "
            "steps. Bottom: where H has a negative eigenvalue, the same step scaling sends "
            "Newton towards the saddle: every start in the band |θ₂| < 1/√3 of the double well "
            "converges to it, and on x² − y² Newton jumps onto it at once."
        ),
    )


def measure_quadratics(ctx: Context, kappas: list, steps: int, n_tune: int, n_fresh: int) -> dict:
    """Quadratic canyons, axis-aligned and rotated: Newton against GD with a tuned α."""
    problems = [
        canyon_problem(ctx.seed, kappa, angle, n_tune, n_fresh, TARGET)
        for angle in (0.0, 30.0)
        for kappa in kappas
    ]
    lrs_fine = [float(v) for v in np.logspace(-3, 1, 4 * 12 + 1)]
    gd = tu.tune(problems, "gd", steps=steps, lrs=lrs_fine)
    newton = tu.tune(problems, "newton", steps=NEWTON_STEPS, lrs=[1.0])
    return {
        p.name: {
            "kappa": p.landscape.params["kappa"],
            "newton_median_steps": n.median_steps,
            "newton_success": n.success,
            "gd_lr": g.lr,
            "gd_mean_steps": g.mean_steps,
            "gd_success": g.success,
        }
        for p, g, n in zip(problems, gd, newton)
    }


def measure_rosenbrock(ctx: Context, steps: int, n_tune: int, n_fresh: int) -> dict:
    """Rosenbrock's curved canyon: Newton against every first-order method, tuned."""
    rosen = landscapes.get("rosenbrock")
    rp = tu.Problem(
        "rosenbrock", rosen,
        tu.uniform_starts(rosen.window, n_tune, tu.generator(ctx.seed, "tune", "rosen")),
        tu.uniform_starts(rosen.window, n_fresh, tu.generator(ctx.seed, "fresh", "rosen")),
        ROSEN_TARGET, show=torch.tensor([[-1.2, 1.0], [1.5, -0.5]], dtype=torch.float64),
    )  # fmt: skip
    r_res = {
        o: tu.tune([rp], o, steps=steps, lrs=tu.lr_grid(1e-4, 10.0))[0] for o in tu.FIRST_ORDER
    }
    r_res["newton"] = tu.tune([rp], "newton", steps=NEWTON_STEPS, lrs=[1.0])[0]
    return r_res


def measure_indefinite(ctx: Context, n_fresh: int) -> dict:
    """Where H is indefinite (x² − y², the double well): the fraction of random starts that
    Newton and GD bring to the saddle."""
    fail = {}
    for name in ("saddle", "double_well"):
        land = landscapes.get(name)
        x0 = tu.uniform_starts(land.window, n_fresh * 4, tu.generator(ctx.seed, "fail", name))
        nt = run(land, "newton", starts=x0, steps=NEWTON_STEPS, record="final", bound=1e3)
        g = run(land, "gd", starts=x0, steps=100, lr=0.1, record="final", bound=1e3)
        saddle = torch.tensor(land.saddles[0].x, dtype=torch.float64)
        fail[name] = {
            "newton_at_saddle": float(
                ((nt.final_x[0] - saddle).norm(dim=-1) < AT_SADDLE).double().mean()
            ),
            "gd_at_saddle": float(
                ((g.final_x[0] - saddle).norm(dim=-1) < AT_SADDLE).double().mean()
            ),
        }
    return fail


def newton_grid(side: int) -> torch.Tensor:
    """A side × side grid of starts over [−2, 2]² (rows: θ₂, columns: θ₁)."""
    u = np.linspace(-2, 2, side)
    U, V = np.meshgrid(u, u)
    return torch.tensor(np.stack([U.ravel(), V.ravel()], -1), dtype=torch.float64)


def newton_basins(side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Where Newton ends on the double well from each start of the grid, and which ends are at
    the saddle."""
    dw = landscapes.get("double_well")
    basin = run(dw, "newton", starts=newton_grid(side), steps=NEWTON_STEPS, record="final")
    end = basin.final_x[0]
    return end, end.norm(dim=-1) < AT_SADDLE


def draw(ctx: Context, kappas, steps, quad, r_res, side, basin, at_s) -> Path:
    """The figure: quadratic canyons, Rosenbrock (paths, loss), where Newton ends on the double
    well, and Newton and GD near the saddles."""
    fig, axes = plt.subplots(2, 3, figsize=(15.5, 9))
    draw_quadratics(axes[0, 0], kappas, steps, quad)
    draw_rosenbrock(axes[0, 1], r_res)
    tu.loss_curves(
        axes[0, 2], r_res, 0.0, "Rosenbrock: loss (median of fresh starts)", ROSEN_TARGET
    )
    draw_basins(axes[1, 0], side, basin, at_s)
    for ax, name in ((axes[1, 1], "double_well"), (axes[1, 2], "saddle")):
        draw_saddle_runs(ax, name)
    fig.subplots_adjust(hspace=0.32, wspace=0.3)
    return ctx.figure(fig, "newton")


def draw_quadratics(ax: plt.Axes, kappas, steps: int, quad: dict) -> None:
    for angle, mk in ((0.0, "o"), (30.0, "s")):
        ks = [quad[f"κ={k:g}, θ={angle:g}°"] for k in kappas]
        ax.plot(
            kappas,
            [q["gd_mean_steps"] for q in ks],
            mk + "-",
            color=tu.COLORS["gd"],
            label=f"GD, tuned α, θ = {angle:g}°",
        )
        ax.plot(
            kappas,
            [max(q["newton_median_steps"] or np.nan, 0.8) for q in ks],
            mk + "-",
            color=tu.COLORS["newton"],
            label=f"Newton, θ = {angle:g}°",
        )
    tu.log_axis(ax, "xy")
    ax.axhline(steps + 1, color="k", ls=":", lw=1, label="GD budget (missed)")
    ax.set(
        xlabel="κ",
        ylabel=f"steps k to f − f* < {TARGET:g}",
        title="quadratic canyons: Newton needs one step",
    )
    ax.legend(fontsize=7)


def _paths(ax: plt.Axes, xy: np.ndarray, o: str, label: str, ms: float) -> None:
    """One optimizer's paths xy [T, B, 2] in its colour, labelled once."""
    for b in range(xy.shape[1]):
        ax.plot(
            xy[:, b, 0],
            xy[:, b, 1],
            ".-",
            ms=ms,
            lw=1,
            color=tu.COLORS[o],
            label=label if b == 0 else None,
        )


def draw_rosenbrock(ax: plt.Axes, r_res: dict) -> None:
    plots.contour(ax, landscapes.get("rosenbrock"))
    for o in ("gd", "adam", "newton"):
        _paths(ax, r_res[o].shown.numpy(), o, f"{tu.LABELS[o]} (α = {r_res[o].lr:.2g})", ms=3)
    ax.set_title("Rosenbrock: Newton, GD and Adam from two starts", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")


def draw_basins(ax: plt.Axes, side: int, basin: torch.Tensor, at_s: torch.Tensor) -> None:
    code = np.where(
        at_s.numpy(),
        0,
        np.where(basin[:, 1].numpy() > 0.5, 1, np.where(basin[:, 1].numpy() < -0.5, 2, 3)),
    )
    ax.imshow(
        code.reshape(side, side),
        origin="lower",
        extent=(-2, 2, -2, 2),
        cmap="Set2",
        vmin=0,
        vmax=7,
        interpolation="nearest",
    )
    ax.axhline(3**-0.5, color="k", ls="--", lw=1)
    ax.axhline(-(3**-0.5), color="k", ls="--", lw=1, label="|θ₂| = 1/√3: H indefinite inside")
    ax.set(xlabel="θ₁", ylabel="θ₂", title="double well: where Newton ends from each start")
    for c, lab in ((0, "the saddle (0, 0)"), (1, "minimum (0, 1)"), (2, "minimum (0, −1)")):
        ax.plot([], [], "s", color=plt.cm.Set2(c / 7), ms=9, label=lab)
    ax.legend(fontsize=7, loc="upper right")


def draw_saddle_runs(ax: plt.Axes, name: str) -> None:
    land = landscapes.get(name)
    plots.contour(ax, land)
    shown = torch.tensor([[1.5, 0.4], [-1.0, -0.3], [0.5, 1.5]], dtype=torch.float64)
    for o, lr, n in (("gd", 0.1, 40), ("newton", 1.0, 10)):
        xy = run(land, o, starts=shown, steps=n, lr=lr, bound=1e3).x[:, 0].numpy()
        _paths(ax, xy, o, f"{tu.LABELS[o]} (α = {lr:g})", ms=4)
        ax.plot(*shown.numpy().T, "o", color="w", mec="k")
    ax.set_title(f"{name}: Newton runs to the saddle, GD away", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")


def rosenbrock_ratio(r: dict) -> tuple[str, float, str]:
    """The best tuned first-order method on Rosenbrock, its mean steps over Newton's, and what
    that ratio is: "exact", a "lower" or an "upper" bound, or "unknown".

    A miss counts as the budget + 1, so a mean with misses is a lower bound on the steps the
    method needs: where only the first-order method missed, the ratio is a lower bound on
    Newton's speed-up; where only Newton missed, an upper bound; where both missed, neither.
    """
    best = min(tu.FIRST_ORDER, key=lambda o: (float(r[o]["mean_steps"]), -float(r[o]["success"])))
    ratio = float(r[best]["mean_steps"]) / float(r["newton"]["mean_steps"])
    fo_missed = float(r[best]["success"]) < 1
    newton_missed = float(r["newton"]["success"]) < 1
    kind = {(False, False): "exact", (True, False): "lower", (False, True): "upper"}
    return best, ratio, kind.get((fo_missed, newton_missed), "unknown")


# what a Rosenbrock ratio of each kind says: the ratio's prefix and the sentence on misses
BOUND = {"exact": "", "lower": "≥ ", "upper": "≤ ", "unknown": "~"}
CENSORED = {
    "exact": "",
    "lower": " ({best} misses the target from some starts within the budget, a miss "
    "counted as the budget + 1: a lower bound on Newton's speed-up)",
    "upper": " (Newton misses from some starts, a miss counted as its budget + 1: an upper "
    "bound on its speed-up)",
    "unknown": " (both miss from some starts: the ratio bounds nothing)",
}


def judge(numbers: dict) -> Judgement:
    quad = numbers["quadratic"]
    medians = {n: q["newton_median_steps"] for n, q in quad.items()}
    never = [n for n, m in medians.items() if m is None]
    newton_few = not never and all(float(m) <= FEW for m in medians.values())
    if never:  # Newton's median is the steps of the starts that converged: none here
        newton_says = f"no median (Newton never reaches the target) on {', '.join(never)}"
    else:
        newton_says = f"median ≤ {max(float(m) for m in medians.values()):g} step(s)"
    big = max(quad.values(), key=lambda q: (float(q["kappa"]), float(q["gd_mean_steps"])))
    r = numbers["rosenbrock"]
    best, r_ratio, kind = rosenbrock_ratio(r)
    # the bar is passed on a lower bound, failed on an upper bound; otherwise it cannot tell
    passed = r_ratio >= FASTER if kind in ("exact", "lower") else False
    missed = r_ratio < FASTER if kind in ("exact", "upper") else False
    speedup = BOUND[kind] + ratio_words(r_ratio, "fewer steps", "more steps")
    newton_ok = newton_few and float(r["newton"]["success"]) >= 0.9
    censored = CENSORED[kind].format(best=best)
    ind = numbers["indefinite"]
    attracted = float(ind["double_well"]["newton_at_saddle"])
    evidence = (
        f"Newton: {newton_says} on every quadratic canyon (κ up to {float(big['kappa']):g}), "
        f"tuned GD {float(big['gd_mean_steps']):.0f} at κ = {float(big['kappa']):g}; Rosenbrock: "
        f"Newton {float(r['newton']['mean_steps']):.1f} steps "
        f"({float(r['newton']['success']):.0%}), best tuned first-order method {best} "
        f"{float(r[best]['mean_steps']):.0f} (reaching {float(r[best]['success']):.0%}; a miss "
        f"counts as the budget + 1): Newton {speedup}{censored}; double well: Newton converges "
        f"to the saddle from {attracted:.0%} of random starts "
        f"(GD {float(ind['double_well']['gd_at_saddle']):.0%}), on x² − y² from "
        f"{float(ind['saddle']['newton_at_saddle']):.0%}"
    )
    say = {
        "headline": f"Newton {speedup} on Rosenbrock",
        "takeaway": (
            (
                f"Newton never reaches the target on {', '.join(never)}"
                if never
                else f"Newton needs {newton_says.removeprefix('median ')} on quadratic canyons"
                f" up to κ = {float(big['kappa']):g}"
            )
            + f" and {speedup} than the best tuned first-order method on "
            f"Rosenbrock{censored}, but converges to a saddle from {attracted:.0%} of random "
            "double-well starts."
        ),
    }
    if not newton_ok or missed:
        return Judgement("fails", evidence, **say)
    band = float(ind["double_well"]["indefinite_start_fraction_to_saddle"])
    conditions = judge_conditions(passed, kind, r_ratio, attracted, band)
    if not conditions:
        return Judgement("holds", evidence, **say)
    return Judgement("partly", evidence, "; ".join(conditions), **say)


def judge_conditions(
    passed: bool, kind: str, r_ratio: float, attracted: float, band: float
) -> list[str]:
    """What keeps the claim from holding outright: a Rosenbrock comparison that cannot tell,
    and Newton drawn to saddles where H is indefinite."""
    conditions = []
    if not passed:  # neither passed nor missed: the bound cannot decide the bar
        why = {
            "lower": f"its lower bound {r_ratio:.2g}× is below the bar",
            "upper": f"{r_ratio:.2g}× is only an upper bound",
            "unknown": "both miss the target from some starts, so the ratio bounds nothing",
        }[kind]
        conditions.append(
            f"the Rosenbrock comparison cannot tell whether Newton takes ≥ {FASTER:g}× fewer "
            f"steps: {why}"
        )
    if attracted >= ATTRACTED:
        conditions.append(
            "Newton is immune to ill-conditioning only where H is positive definite; where H "
            "has a negative eigenvalue the curvature scaling reverses the step along it and "
            f"Newton converges to the saddle ({band:.0%} of double-well starts in the "
            "indefinite band |θ₂| < 1/√3)"
        )
    return conditions


register(
    Experiment(
        id="C12",
        title="Newton's method in canyons, and where it fails",
        claim=(
            "second order methods like the newton methode would not suffer from this problem "
            "because … the step size is scaled in each direction individually based on its "
            "curvature"
        ),
        criterion=(
            f"Newton (E7, α = 1) does not suffer from ill-conditioning if its median steps to "
            f"f − f* < {TARGET:g} are ≤ {FEW} on every quadratic canyon (κ from 10 up, "
            "axis-aligned and rotated), and on Rosenbrock it reaches f < "
            f"{ROSEN_TARGET:g} from ≥ 90 % of random starts in ≥ {FASTER:g}× fewer steps than "
            "the best tuned first-order method (a miss counts as the budget + 1, so where that "
            "method misses, the ratio is a lower bound on Newton's speed-up and passes the bar "
            "only as a bound; where Newton misses too, the comparison cannot tell and the verdict "
            "is at most partly). Holds if so and Newton is not attracted to "
            f"saddles (< {ATTRACTED:.0%} of random double-well starts end on the saddle); "
            "partly if it is (the claim then holds only where H is positive definite); fails "
            "if Newton suffers in the canyons"
        ),
        measure=measure,
        judge=judge,
    )
)
