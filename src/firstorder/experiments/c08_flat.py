"""C8b: "flat areas → momentum helps to escape"."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from firstorder import landscapes
from firstorder.experiments import _tuning as tu
from firstorder.experiments._obstacles import HELPS, R_HI, R_LO, ring
from firstorder.experiments.base import (
    Context,
    Experiment,
    Judgement,
    Measurement,
    ratio_words,
    register,
)
from firstorder.observe import value_and_grad

ESCAPED = 0.5  # left the plateau: f < 0.5, halfway down the well (radius < 1.18σ)
RHOS = [0.0, 0.5, 0.8, 0.9, 0.95, 0.99, 0.995, 0.999]  # momentum's ρ, tuned with α; ρ = 0 is GD
QUICK_RHOS = [0.0, 0.5, 0.9, 0.99, 0.999]
PER_DECADE = 12  # α grid: neighbours 1.21× apart, finer than the 1.25× bar


def measure(ctx: Context) -> Measurement:
    steps = ctx.pick(300, 1000)
    n_tune, n_fresh = ctx.pick((6, 24), (16, 128))
    lrs = tu.lr_grid(1e-2, 1e4, per_decade=PER_DECADE)
    land = landscapes.get("plateau")
    # tuned on what is reported: the steps to leave the plateau (f < ESCAPED)
    problem = tu.Problem(
        "plateau",
        land,
        ring(n_tune, tu.generator(ctx.seed, "tune"), R_LO, R_HI),
        ring(n_fresh, tu.generator(ctx.seed, "fresh"), R_LO, R_HI),
        ESCAPED,
        show=ring(3, tu.generator(ctx.seed, "show"), 4.5, 5.0),
    )
    res = {
        opt: tu.tune([problem], opt, steps=steps, lrs=lrs)[0]
        for opt in tu.FIRST_ORDER
        if opt != "momentum"
    }
    rhos = ctx.pick(QUICK_RHOS, RHOS)
    res["momentum"] = tu.tune_momentum([problem], steps=steps, lrs=lrs, rhos=rhos)[0]
    res = {opt: res[opt] for opt in tu.FIRST_ORDER}
    grad0 = value_and_grad(land, problem.fresh)[1].norm(dim=-1).tolist()
    numbers = escape_numbers(res, lrs, steps)
    numbers = {
        "budget": steps,
        "fresh_starts": n_fresh,
        "start_grad_norm": [min(grad0), float(np.median(grad0)), max(grad0)],
        "lr": {o: t.lr for o, t in res.items()},
        "rho": res["momentum"].hyper["rho"],
        "rhos": rhos,
        "lr_grid_ratio": lrs[1] / lrs[0],
        **numbers,
    }
    fig = tu.trajectory_panels(
        [(land, res)],
        ["plateau 1 − exp(−‖θ‖²/2)"],
        f"flat plain: three starts 4.5–5 from the well, tuned α, {steps} steps at most",
    )
    figures = [ctx.figure(fig, "trajectories")]
    figures.append(ctx.figure(draw_escape(res, lrs, numbers["grid_escape"], steps), "escape"))
    return Measurement(numbers=numbers, figures=figures, explanation=explain(res, rhos, steps))


def escape(t: tu.Tuned, steps: int, i: int | None = None) -> float:
    """Mean steps to leave the plateau at the tuned α (or at the i-th α of the grid), a miss
    counted as the budget + 1."""
    return tu.capped_mean(t.steps if i is None else t.grid_steps[i], steps)


def escape_numbers(res: dict, lrs: list[float], steps: int) -> dict:
    """The escapes at the tuned α and over the grid; momentum at GD's α; every α of the grid at
    which GD or momentum leaves the plateau, and those where momentum is ≥ HELPS× faster."""
    gd, mom = res["gd"], res["momentum"]
    same = mom.index(gd.lr)
    grid_escape = {opt: [escape(t, steps, i) for i in range(len(lrs))] for opt, t in res.items()}
    moving = [
        i for i in range(len(lrs)) if min(grid_escape["gd"][i], grid_escape["momentum"][i]) <= steps
    ]
    faster = [i for i in moving if grid_escape["gd"][i] / grid_escape["momentum"][i] >= HELPS]
    return {
        "success": {o: t.success for o, t in res.items()},
        "mean_steps_to_escape": {o: escape(t, steps) for o, t in res.items()},
        "momentum_escape_at_gd_lr": escape(mom, steps, same),
        "momentum_success_at_gd_lr": float((mom.grid_steps[same] >= 0).double().mean()),
        "grid_lrs": lrs,
        "grid_escape": grid_escape,
        "grid_alphas_compared": [lrs[i] for i in moving],
        "grid_alphas_momentum_faster": [lrs[i] for i in faster],
    }


def draw_escape(res: dict, lrs: list[float], grid_escape: dict, steps: int) -> plt.Figure:
    """Steps to leave the plateau at every α (★: tuned α), and the loss curves."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3))
    ax = axes[0]
    for opt in tu.FIRST_ORDER:
        y = np.array(grid_escape[opt], dtype=float)
        y[y > steps] = np.nan  # never left the plateau at this α
        ax.plot(lrs, y, "o-", ms=4, color=tu.COLORS[opt], label=tu.LABELS[opt])
        ax.plot(res[opt].lr, escape(res[opt], steps), "*", ms=14, color=tu.COLORS[opt], mec="k")
    tu.log_axis(ax, "xy")
    ax.set(
        xlabel="learning rate α",
        ylabel=f"mean steps k until f < {ESCAPED}",
        title="leaving the plateau at every α (★: tuned α)",
    )
    ax.legend(fontsize=8)
    tu.loss_curves(axes[1], res, 0.0, "loss from the plateau (median of fresh starts)", ESCAPED)
    fig.subplots_adjust(wspace=0.28)
    return fig


def explain(res: dict, rhos: list[float], steps: int) -> str:
    gd, mom = res["gd"], res["momentum"]
    adaptive = min(escape(res[o], steps) for o in tu.FIRST_ORDER[2:])
    return (
        f"Starts {R_LO:g}–{R_HI:g} from a Gaussian well, where ‖g‖ is 1e-5 to 1e-2. Left: "
        f"steps needed to get halfway down the well at each α (momentum at its tuned ρ = "
        f"{mom.hyper['rho']:g}; ρ was tuned with α over {', '.join(map(str, rhos))}, ρ = 0 "
        f"being GD): at the same α momentum's velocity grows to α‖g‖/(1−ρ); with each at its "
        f"own tuned α momentum needs {escape(mom, steps):.0f} steps, GD {escape(gd, steps):.0f}. "
        "The rules that divide by √r (AdaGrad, RMSProp, Adam) turn a tiny gradient into a step "
        f"of about α: the best of them needs {adaptive:.0f}."
    )


def judge(numbers: dict) -> Judgement:
    esc = {k: float(v) for k, v in numbers["mean_steps_to_escape"].items()}
    same = esc["gd"] / float(numbers["momentum_escape_at_gd_lr"])
    tuned = esc["gd"] / esc["momentum"]
    lr = numbers["lr"]
    faster = [float(a) for a in numbers["grid_alphas_momentum_faster"]]
    best_adaptive = min(("adagrad", "rmsprop", "adam"), key=lambda o: esc[o])
    evidence = (
        f"mean steps to leave the plateau, tuned α: GD {esc['gd']:.0f} (α={float(lr['gd']):.2g}), "
        f"momentum {esc['momentum']:.0f} (α={float(lr['momentum']):.2g}, tuned ρ="
        f"{float(numbers.get('rho', 0.9)):g}): {ratio_words(tuned)}; momentum "
        f"at GD's α {ratio_words(same)}; momentum ≥ {HELPS}× faster at {len(faster)} of "
        f"{len(numbers['grid_alphas_compared'])} α of the grid; {best_adaptive} "
        f"{esc[best_adaptive]:.0f} steps"
    )
    grid = [float(a) for a in numbers.get("grid_lrs", [])]
    rhos = [float(r) for r in numbers.get("rhos", [])]
    edge = [
        name
        for name, at_edge in (
            ("GD's α", bool(grid) and float(lr["gd"]) in (grid[0], grid[-1])),
            ("momentum's ρ", bool(rhos) and float(numbers["rho"]) == max(rhos)),
        )
        if at_edge
    ]
    if edge:
        evidence += "; at the grid's edge: " + ", ".join(edge)
    say = {
        "headline": f"momentum {ratio_words(tuned)} off the plateau",
        "takeaway": (
            "With α tuned for each, momentum leaves the plateau in "
            f"{esc['momentum']:.0f} steps against GD's {esc['gd']:.0f} ({ratio_words(tuned)}); "
            f"{tu.LABELS[best_adaptive]}, which divides by √r, needs {esc[best_adaptive]:.0f}."
        ),
    }
    if tuned >= HELPS:
        return Judgement("holds", evidence, **say)
    if not faster:
        return Judgement("fails", evidence, **say)
    return Judgement(
        "partly",
        evidence,
        f"momentum escapes ≥ {HELPS}× faster only when both use the same α (at {len(faster)} "
        f"of {len(numbers['grid_alphas_compared'])} α between {min(faster):.2g} and "
        f"{max(faster):.2g}); with α tuned for each, GD takes a larger α and the gain is "
        f"{ratio_words(tuned)}. Dividing by √r helps far more ({best_adaptive})",
        **say,
    )


register(
    Experiment(
        id="C8b",
        title="Flat areas: does momentum help to escape?",
        claim="flat areas → momentum helps to escape",
        criterion=(
            f"from random starts {R_LO:g}–{R_HI:g} out on the plateau 1 − exp(−‖θ‖²/2) (‖g‖ ≤ "
            f"7.6e-3), count the steps until f < {ESCAPED} (a miss counts as budget + 1), with α "
            f"tuned for that count on the same grid ({PER_DECADE} a decade: neighbours 1.21× "
            "apart, finer than the bar) and budget for every optimizer, and momentum's ρ tuned "
            f"with it over {', '.join(map(str, RHOS))} (quick: "
            f"{', '.join(map(str, QUICK_RHOS))}; ρ = 0 is GD). Momentum helps if it needs "
            f"≥ {HELPS}× fewer steps than GD. Holds if "
            "it does with each optimizer at its own tuned α; partly if it does only at some equal "
            "α of the grid (named); fails if at no α"
        ),
        measure=measure,
        judge=judge,
    )
)
