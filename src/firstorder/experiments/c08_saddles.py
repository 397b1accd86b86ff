"""C8c: "saddle points → momentum helps to escape"."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from firstorder import landscapes
from firstorder.experiments import _tuning as tu
from firstorder.experiments._obstacles import DEPTH, HELPS, SADDLES, near_manifold
from firstorder.experiments.base import (
    Context,
    Experiment,
    Judgement,
    Measurement,
    ratio_words,
    register,
)

NEWTON_STEPS = 20  # Newton runs its own short budget: it settles at once (the Hessian is exact)
# escaped: this far from the stable manifold θ₂ = 0 (on the double well: halfway to a minimum,
# which sit at θ₂ = ±1). Distance from the manifold, not a level of f: f also falls as a run
# slides towards the saddle along the manifold, which is no escape at all
ESCAPE = {"saddle": 1.0, "monkey_saddle": 1.0, "double_well": 0.5}
# the curvature λ along the stable direction θ₁ (x² − y²: 2; the double well: 1; the monkey
# saddle's Hessian is 0). Past a rule's stability limit there (GD αλ ≥ 2, momentum
# αλ ≥ 2(1 + ρ)) θ₁ grows geometrically too, and a run that reaches the escape distance is
# blowing up, not escaping: such an α does not count and cannot win the tuning. This keeps
# the measurement (steps until |θ₂| is far) and removes only the settings that diverge; a
# test "θ₁ has not grown" would also reject stable momentum, whose error may rise up to
# (1 + ρ)/(1 − ρ)-fold before it decays
STABLE_CURVATURE = {"saddle": 2.0, "monkey_saddle": None, "double_well": 1.0}
RHOS = [0.0, 0.5, 0.8, 0.9, 0.95, 0.99]  # momentum's ρ, tuned with α; ρ = 0 is GD
QUICK_RHOS = [0.0, 0.5, 0.9, 0.99]
PER_DECADE = 12  # α grid: neighbours 1.21× apart, finer than the 1.25× bar


def measure(ctx: Context) -> Measurement:
    steps = ctx.pick(100, 1000)
    n_tune, n_fresh = ctx.pick((6, 24), (16, 64))
    lrs = tu.lr_grid(1e-3, 10.0, per_decade=PER_DECADE)
    problems = saddle_problems(ctx.seed, n_tune, n_fresh)
    res = {opt: tu.tune(problems, opt, steps=steps, lrs=lrs) for opt in tu.FIRST_ORDER[2:]}
    res["gd"] = tu.tune(problems, "gd", steps=steps, lrs=lrs)
    rhos = ctx.pick(QUICK_RHOS, RHOS)
    res["momentum"] = tu.tune_momentum(problems, steps=steps, lrs=lrs, rhos=rhos)
    res["newton"] = tu.tune(problems, "newton", steps=NEWTON_STEPS, lrs=[1.0])
    table = {
        p.name: table_row({opt: res[opt][i] for opt in tu.ALL}, lrs, steps)
        for i, p in enumerate(problems)
    }
    rows = [(p.landscape, {o: res[o][i] for o in tu.ALL}) for i, p in enumerate(problems)]
    fig = tu.trajectory_panels(
        rows,
        list(SADDLES),
        "starts 1e-3, 1e-6, 1e-8 off the stable manifold θ₂ = 0; tuned α "
        f"(Newton: {NEWTON_STEPS} steps)",
    )
    figures = [ctx.figure(fig, "trajectories")]
    figures.append(ctx.figure(draw_escape(problems, res), "escape"))
    return Measurement(
        numbers={
            "budget": steps,
            "newton_budget": NEWTON_STEPS,
            "fresh_starts": n_fresh,
            "depth_log10": list(DEPTH),
            "escape_distance": ESCAPE,
            "rhos": rhos,
            "lr_grid_ratio": lrs[1] / lrs[0],
            "problems": table,
        },
        figures=figures,
        explanation=(
            "Starts sit 1e-8 to 1e-3 off the stable manifold θ₂ = 0, the direction that flows "
            "into the saddle; a run has escaped once |θ₂| reaches 1 (double well: 0.5). First "
            "figure: each optimizer at its tuned α (momentum also at its tuned ρ) from three "
            "starts, Newton for comparison. Second: steps to escape against the start's depth "
            "log₁₀|θ₂|; for GD and momentum they grow with log(1/|θ₂|), since |θ₂| grows "
            "geometrically, while a rule that divides by √r takes a step of about α in θ₂ at "
            "once. Mean steps at the tuned α: "
            + "; ".join(
                f"{n}: GD {r['mean_steps']['gd']:.0f}, momentum {r['mean_steps']['momentum']:.0f}"
                for n, r in table.items()
            )
            + "."
        ),
    )


def saddle_problems(seed: int, n_tune: int, n_fresh: int) -> list[tu.Problem]:
    """One problem per saddle: starts near its stable manifold, escaped once |θ₂| is far."""
    problems = []
    for name, (x_range, both, _) in SADDLES.items():
        land = landscapes.get(name)
        show = torch.tensor([[1.0, 1e-3], [1.2, -1e-6], [0.7, 1e-8]], dtype=torch.float64)
        problems.append(
            tu.Problem(
                name,
                land,
                near_manifold(n_tune, tu.generator(seed, "tune", name), x_range, both),
                near_manifold(n_fresh, tu.generator(seed, "fresh", name), x_range, both),
                0.0,
                show=show,
                reached=lambda x, far=ESCAPE[name]: x[..., 1].abs() >= far,
                stable_curvature=STABLE_CURVATURE[name],
            )
        )
    return problems


def table_row(row: dict, lrs: list[float], steps: int) -> dict:
    """One saddle's numbers: the tuned settings and results, and on the α grid where momentum
    escaped ≥ HELPS× faster than GD (among the α where either escaped at all)."""
    gd, mom = row["gd"], row["momentum"]
    grid_gd = [tu.capped_mean(s, steps) for s in gd.grid_steps]
    grid_mom = [tu.capped_mean(s, steps) for s in mom.grid_steps]
    shared = [i for i in range(len(lrs)) if min(grid_gd[i], grid_mom[i]) <= steps]
    return {
        "lr": {o: t.lr for o, t in row.items()},
        "rho": mom.hyper["rho"],
        "stable_lr_max": {o: row[o].lr_max for o in ("gd", "momentum")},
        "success": {o: t.success for o, t in row.items()},
        "mean_steps": {o: t.mean_steps for o, t in row.items()},
        "grid_alphas_compared": [lrs[i] for i in shared],
        "grid_alphas_momentum_faster": [
            lrs[i] for i in shared if grid_gd[i] / grid_mom[i] >= HELPS
        ],
        "newton_final_dist_to_saddle": float(row["newton"].final_x.norm(dim=-1).median()),
    }


def draw_escape(problems: list[tu.Problem], res: dict) -> plt.Figure:
    """Steps to escape against the depth of the start (the monkey saddle, jumped over at the
    tuned α, shows nothing more), one panel each."""
    plotted = [(i, p) for i, p in enumerate(problems) if p.name != "monkey_saddle"]
    fig, axes = plt.subplots(1, len(plotted), figsize=(5.2 * len(plotted), 4.2), sharey=True)
    for ax, (i, p) in zip(axes, plotted):
        depth = np.log10(p.fresh[:, 1].abs().numpy())
        for opt in tu.FIRST_ORDER:
            t = res[opt][i]
            k = t.steps.double().numpy()
            k[k < 0] = np.nan
            ax.plot(
                depth,
                k,
                "o",
                ms=4,
                color=tu.COLORS[opt],
                alpha=0.8,
                label=f"{tu.LABELS[opt]} (α = {t.lr:.2g}), {t.success:.0%}",
            )
        ax.set(xlabel="log₁₀ |θ₂| at the start", title=f"{p.name}: steps to escape")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("steps k until |θ₂| ≥ escape distance")
    fig.subplots_adjust(wspace=0.08)
    return fig


def compared(row: dict) -> str:
    """Momentum against GD at the tuned α on one saddle, in words. Where neither escapes from
    any start, both means are the budget + 1 and their ratio 1 says nothing: "neither escapes"."""
    if float(row["success"]["gd"]) == 0 and float(row["success"]["momentum"]) == 0:
        return "neither escapes"
    return ratio_words(float(row["mean_steps"]["gd"]) / float(row["mean_steps"]["momentum"]))


def judge(numbers: dict) -> Judgement:
    tuned_ok, grid_ok, parts = [], {}, []
    for name, row in numbers["problems"].items():
        steps = {k: float(v) for k, v in row["mean_steps"].items()}
        tuned = steps["gd"] / steps["momentum"]
        faster = [float(a) for a in row["grid_alphas_momentum_faster"]]
        if tuned >= HELPS:
            tuned_ok.append(name)
        if faster:
            grid_ok[name] = faster
        best = min(("adagrad", "rmsprop", "adam"), key=lambda o: steps[o])
        parts.append(
            f"{name}: GD {steps['gd']:.0f}, momentum {steps['momentum']:.0f} (ρ="
            f"{float(row.get('rho', 0.9)):g}, {compared(row)}), "
            f"{best} {steps[best]:.0f}; momentum ≥ {HELPS}× faster at {len(faster)} of "
            f"{len(row['grid_alphas_compared'])} equal α"
        )
    names = list(numbers["problems"])
    evidence = "mean steps to |θ₂| ≥ escape distance, tuned α — " + "; ".join(parts)
    words = {n: compared(r) for n, r in numbers["problems"].items()}
    say = {
        "headline": "momentum " + ", ".join(words.values()),
        "takeaway": (
            "With α tuned for each, momentum against GD escapes: "
            + ", ".join(f"{n} {w}" for n, w in words.items())
            + f" (the bar: {HELPS:g}× faster)."
        ),
    }
    if len(tuned_ok) == len(names):
        return Judgement("holds", evidence, **say)
    if not tuned_ok and not grid_ok:
        return Judgement("fails", evidence, **say)
    where = []
    if tuned_ok:
        where.append("with tuned α on " + ", ".join(tuned_ok))
    where += [
        f"on {n} only at equal α = {min(a):.2g}…{max(a):.2g}"
        for n, a in grid_ok.items()
        if n not in tuned_ok
    ]
    rest = [n for n in names if n not in tuned_ok and n not in grid_ok]
    return Judgement(
        "partly",
        evidence,
        f"momentum escapes ≥ {HELPS}× faster "
        + "; ".join(where)
        + ("; at no α on " + ", ".join(rest) if rest else ""),
        **say,
    )


register(
    Experiment(
        id="C8c",
        title="Saddle points: does momentum help to escape?",
        claim="saddle points → momentum helps to escape",
        criterion=(
            "from random starts 1e-8 to 1e-3 off the stable manifold of the saddles of x² − y², "
            "the monkey saddle x³ − 3xy² and the double well, every optimizer with α tuned on the "
            f"same grid ({PER_DECADE} a decade: neighbours 1.21× apart, finer than the bar) and "
            "budget to escape, momentum's ρ tuned with it over "
            f"{', '.join(map(str, RHOS))} (quick: {', '.join(map(str, QUICK_RHOS))}; ρ = 0 "
            "is GD); a run has escaped once its distance "
            "|θ₂| from the stable manifold θ₂ = 0 reaches 1 (double well: 0.5, halfway to a "
            "minimum). An α at which GD or momentum is unstable along the stable direction "
            "(αλ ≥ 2, momentum αλ ≥ 2(1 + ρ)) blows up rather than escapes: it counts as a "
            "miss and is not tuned to. Compare the mean steps to escape on fresh starts (a miss "
            "counts as budget "
            f"+ 1). Momentum helps on a saddle if GD needs ≥ {HELPS}× more steps. Holds if it "
            "helps on every saddle with each optimizer at its tuned α; fails if it helps nowhere, "
            "not even at one equal α of the grid; partly otherwise (naming where)"
        ),
        measure=measure,
        judge=judge,
    )
)
