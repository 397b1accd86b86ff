"""C8a: "canyons / ill conditioned hessians → normalization with the second moments helps"."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from firstorder.experiments import _tuning as tu
from firstorder.experiments._obstacles import HELPS, canyon_problem, ring
from firstorder.experiments.base import (
    Context,
    Experiment,
    Judgement,
    Measurement,
    parts_verdict,
    ratio_words,
    register,
)

TARGET = 1e-6  # reached once f − f* < 1e-6 (starts have f between 2/κ and 8)
STEPS = ("fewer steps", "more steps")  # a speed-up's two directions, in words
ILL = 100  # the canyons the claim is about: κ ≥ 100
# (normalized rule, the same rule without the normalization by √r)
PAIRS = (("rmsprop", "gd"), ("adagrad", "gd"), ("adam", "momentum"))


def measure(ctx: Context) -> Measurement:
    kappas = ctx.pick([100, 1000], [10, 100, 1000, 10_000])
    angles = ctx.pick([0.0, 45.0], [0.0, 15.0, 45.0])
    steps = ctx.pick(150, 500)
    n_tune, n_fresh = ctx.pick((6, 16), (16, 96))
    lrs = tu.lr_grid(1e-3, 10.0)
    problems = canyon_problems(ctx.seed, kappas, angles, n_tune, n_fresh)
    results = {opt: tu.tune(problems, opt, steps=steps, lrs=lrs) for opt in tu.FIRST_ORDER}
    results["newton"] = tu.tune(problems, "newton", steps=steps, lrs=[1.0])
    by_problem = {p.name: {opt: results[opt][i] for opt in tu.ALL} for i, p in enumerate(problems)}
    table = {}
    for p in problems:
        row = by_problem[p.name]
        table[p.name] = {
            "kappa": p.landscape.params["kappa"],
            "angle": p.landscape.params["angle"],
            "lr": {o: t.lr for o, t in row.items()},
            "success": {o: t.success for o, t in row.items()},
            "mean_steps": {o: t.mean_steps for o, t in row.items()},
            "speedup": {f"{a}/{b}": row[b].mean_steps / row[a].mean_steps for a, b in PAIRS},
        }
    # figure 1: the same three starts, κ = 100, axis-aligned and rotated by 45°
    shown = [p for p in problems if p.show is not None]
    fig = tu.trajectory_panels(
        [(p.landscape, by_problem[p.name]) for p in shown],
        [p.name for p in shown],
        f"canyons ½θᵀHθ, κ = 100: every optimizer at its tuned α, {steps} steps at most",
    )
    figures = [ctx.figure(fig, "trajectories")]
    fig = draw_steps(problems, table, by_problem, steps, max(kappas), angles)
    figures.append(ctx.figure(fig, "steps"))
    return Measurement(
        numbers={
            "kappas": kappas,
            "angles": angles,
            "budget": steps,
            "fresh_starts": n_fresh,
            "lr_grid": [lrs[0], lrs[-1], len(lrs)],
            "problems": table,
        },
        figures=figures,
        explanation=(
            "Top figure: from the same three starts, the rules that divide by √r (AdaGrad, "
            "RMSProp, Adam) cut straight across the axis-aligned canyon, while on the same canyon "
            "rotated by 45° they zig-zag like gradient descent. Bottom: mean steps to target over "
            "fresh starts, each optimizer at its own tuned α; the normalization pays off only "
            "where the canyon's axes are the coordinate axes, since √r rescales coordinates, not "
            "eigen-directions; Newton needs one step on every canyon."
        ),
    )


def canyon_problems(
    seed: int, kappas: list, angles: list, n_tune: int, n_fresh: int
) -> list[tu.Problem]:
    """One quadratic canyon per (angle, κ), starts on a ring; the same three shown starts on
    the κ = 100 canyons at 0° and 45°."""
    show = ring(3, tu.generator(seed, "show"), 3.0, 3.5)
    return [
        canyon_problem(
            seed,
            kappa,
            angle,
            n_tune,
            n_fresh,
            TARGET,
            show=show if kappa == 100 and angle in (0.0, 45.0) else None,
        )
        for angle in angles
        for kappa in kappas
    ]


def draw_steps(problems, table: dict, by_problem: dict, steps: int, big: float, angles: list):
    """Figure 2: steps to target per optimizer and canyon; loss curves at the largest κ."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    ax = axes[0]
    names = [p.name for p in problems]
    width = 0.8 / len(tu.ALL)
    for j, opt in enumerate(tu.ALL):
        vals = [table[n]["mean_steps"][opt] for n in names]
        ax.bar(
            np.arange(len(names)) + (j - 2.5) * width,
            vals,
            width,
            color=tu.COLORS[opt],
            label=tu.LABELS[opt],
        )
    ax.axhline(steps + 1, color="k", ls=":", lw=1, label="budget (not reached)")
    tu.log_axis(ax, "y")
    ax.set_xticks(np.arange(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set(ylabel="mean steps k to f − f* < 1e-6", title="tuned α, fresh starts")
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.3))
    for ax, angle in zip(axes[1:], (angles[0], angles[-1])):
        name = f"κ={big:g}, θ={angle:g}°"
        tu.loss_curves(ax, by_problem[name], 0.0, f"loss, {name}", TARGET)
    fig.subplots_adjust(wspace=0.28)
    return fig


def judge(numbers: dict) -> Judgement:
    helped, not_helped, parts = [], [], []
    for name, row in numbers["problems"].items():
        if float(row["kappa"]) < ILL:
            continue
        wins = sum(float(v) >= HELPS for v in row["speedup"].values())
        (helped if wins >= 2 else not_helped).append(name)
        parts.append(
            f"{name}: "
            + ", ".join(f"{k} {ratio_words(float(v), *STEPS)}" for k, v in row["speedup"].items())
        )
    evidence = "steps of the normalized rule against the rule without it — " + "; ".join(parts)
    best = {
        name: max(float(v) for v in row["speedup"].values())
        for name, row in numbers["problems"].items()
        if float(row["kappa"]) >= ILL
    }
    say = {
        "headline": f"at best {ratio_words(max(best.values()), *STEPS)}",
        "takeaway": (
            f"On canyons with κ ≥ {ILL:g}, dividing by √r takes ≥ {HELPS:g}× fewer steps on "
            + (", ".join(helped) or "none of them")
            + (f" but not on {', '.join(not_helped)}" if not_helped else "")
            + f" (at best: {', '.join(ratio_words(v, *STEPS) for v in best.values())})."
        ),
    }
    return parts_verdict(
        {name: name in helped for name in helped + not_helped},
        evidence,
        f"helps on {', '.join(helped)}; not on {', '.join(not_helped)} (the normalization acts "
        "per coordinate, so it needs the canyon aligned with the axes)",
        **say,
    )


register(
    Experiment(
        id="C8a",
        title="Canyons: does normalizing by the second moments help?",
        claim="canyons / ill conditioned hessians → normalization with the second moments helps",
        criterion=(
            "on quadratic canyons with κ ≥ 100, axis-aligned and rotated, every optimizer tuned "
            "on the same α grid and step budget (DeepOBS protocol), compare on fresh random starts "
            "the mean steps to f − f* < 1e-6 (a miss counts as budget + 1) of each rule with the "
            "normalization against the same rule without it: RMSProp and AdaGrad against GD, Adam "
            f"against momentum. A canyon counts as helped when ≥ 2 of the 3 pairs are ≥ {HELPS}× "
            "faster. Holds if every canyon is helped, fails if none is, partly otherwise (naming "
            "the canyons where it helps)"
        ),
        measure=measure,
        judge=judge,
    )
)
