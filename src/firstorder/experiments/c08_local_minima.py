"""C8d: "only local minima that are much worse than the global minimum are problematic" (and:
"the adam optimizer can deal with most geometric obstacles")."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from firstorder import curvature, landscapes, plots
from firstorder import data as datasets
from firstorder.experiments import _tuning as tu
from firstorder.experiments._obstacles import R_HI, R_LO, SADDLES, near_manifold, ring
from firstorder.experiments.base import Context, Experiment, Judgement, Measurement, register
from firstorder.nn import MLP
from firstorder.observe import value_and_grad
from firstorder.optim import Adam
from firstorder.train import train

TOL = 1e-3  # reached: f − f* < 1e-3 (or below the escape level on surfaces without a minimum)
SETTLED = 1e-2  # a run "ended in a minimum" where ‖g‖ < 1 % of the median ‖g‖ at the starts
MUCH_WORSE = 0.1  # much worse: f(min) − f* ≥ 10 % of the typical start's gap f(θ₀) − f*
DEALS = 0.8  # Adam deals with an obstacle when ≥ 80 % of its fresh starts reach the target
ONLY = 0.8  # "only much worse minima are problematic": they carry ≥ 80 % of the excess loss
LOCAL = ("two_wells", "himmelblau", "rastrigin", "styblinski_tang", "six_hump_camel")
QUICK_LOCAL = LOCAL[:3]  # a much worse well, four equal minima, a grid of minima
OTHER = (
    "canyon", "rotated_canyon", "rosenbrock", "beale", "booth",
    "plateau", "saddle", "monkey_saddle", "double_well",
)  # fmt: skip
OUTCOMES = ("reached", "slightly worse minimum", "much worse minimum", "elsewhere")
SHORT = {"gd": "GD", "momentum": "mom.", "adagrad": "Ada", "rmsprop": "RMS", "adam": "Adam"}
HARMLESS = 0.03  # a network's end point is harmless if its test accuracy is within 3 points
NET_WIDTHS = [2, 8, 2]  # a small tanh network on the spirals: small enough to get stuck


def problem(name: str, n_tune: int, n_fresh: int, seed: int) -> tu.Problem:
    """The landscape with the starts its obstacle calls for (as in C8a–C8c)."""
    land = landscapes.get(name)
    g = [tu.generator(seed, kind, name) for kind in ("tune", "fresh")]
    if name == "plateau":
        starts = [ring(n, gen, R_LO, R_HI) for n, gen in zip((n_tune, n_fresh), g)]
        target = land.f_star + TOL
    elif name in SADDLES:
        x_range, both, level = SADDLES[name]
        starts = [near_manifold(n, gen, x_range, both) for n, gen in zip((n_tune, n_fresh), g)]
        target = level
    else:
        starts = [tu.uniform_starts(land.window, n, gen) for n, gen in zip((n_tune, n_fresh), g)]
        target = land.f_star + TOL
    show = torch.tensor(land.starts[:2], dtype=torch.float64) if name in LOCAL else None
    return tu.Problem(name, land, starts[0], starts[1], target, show=show)


def outcomes(p: tu.Problem, t: tu.Tuned) -> dict:
    """Where each fresh run ended: reached, in a slightly or much worse minimum (‖g‖ small, H
    positive definite, whether the landscape lists that minimum or not), or elsewhere (still
    moving, diverged, stuck on a plain or at a saddle)."""
    land = p.landscape
    if not land.minima:  # a surface unbounded below: escaped or not
        reached = float((t.steps >= 0).double().mean())
        return {"fractions": [reached, 0.0, 0.0, 1 - reached], "gaps": []}
    f_star = land.f_star
    scale = float((land(p.fresh) - f_star).median())
    x = t.final_x
    g = value_and_grad(land, x)[1].norm(dim=-1)
    g0 = value_and_grad(land, p.fresh)[1].norm(dim=-1).median()
    lam_min = torch.linalg.eigvalsh(curvature.batch_hessian(land, x))[:, 0]
    rel = (t.final_f - f_star) / scale
    kind = torch.full_like(t.steps, 3)
    settled = (g < SETTLED * g0) & (lam_min > 0) & ~t.diverged
    kind[settled & (rel < MUCH_WORSE)] = 1
    kind[settled & (rel >= MUCH_WORSE)] = 2
    kind[t.steps >= 0] = 0
    return {
        "fractions": [float((kind == i).double().mean()) for i in range(4)],
        "gaps": rel[(kind == 1) | (kind == 2)].tolist(),  # every worse minimum a run ended in
        "start_gap": scale,
    }


def listed_gaps(p: tu.Problem, start_gap: float) -> list[float]:
    """(f(m) − f*)/start gap of every minimum m the landscape lists above f*: the baseline of
    where a run would end if a worse minimum caught it at random."""
    land = p.landscape
    return [(m.f - land.f_star) / start_gap for m in land.minima if m.f - land.f_star > 1e-9]


def network(ctx: Context) -> dict:
    """The notes' network (E8) on the spirals from several initialisations, full-batch Adam:
    where each run ends (training loss) and what that costs (test accuracy)."""
    d = datasets.load("spirals", seed=ctx.seed)
    inits = [ctx.seed * 100 + i for i in range(ctx.pick(6, 16))]
    epochs = ctx.pick(300, 1000)
    rows = {"final_loss": [], "start_loss": [], "test_accuracy": [], "grad_norm": []}
    for seed in inits:
        net = MLP(NET_WIDTHS, "tanh", seed=seed)
        h = train(
            net, Adam(net.parameters(), lr=0.03), d, epochs=epochs, batch_size=None, seed=seed,
            log_every=10**9,
        )  # fmt: skip
        rows["start_loss"].append(h.records[0].train_risk)
        rows["final_loss"].append(h.final.train_risk)
        rows["test_accuracy"].append(h.final.test_accuracy)
        rows["grad_norm"].append(h.final.grad_norm)
    return {"inits": inits, "epochs": epochs, "widths": NET_WIDTHS, **rows}


def draw(local: list, res: dict, table: dict, adam: dict, obstacle: dict, steps: int):
    """Top: every optimizer's paths on the surfaces with local minima. Bottom: where the fresh
    runs ended (left) and Adam's success on every obstacle (right)."""
    fig = plt.figure(figsize=(16, 8.2))
    grid = fig.add_gridspec(2, 2 * len(local), height_ratios=[1, 1.15], hspace=0.45, wspace=0.6)
    for i, p in enumerate(local):
        draw_paths(fig.add_subplot(grid[0, 2 * i : 2 * i + 2]), i, p, res)
    draw_outcomes(fig.add_subplot(grid[1, : len(local) + 1]), local, table, steps)
    draw_adam(fig.add_subplot(grid[1, len(local) + 2 :]), adam, obstacle, steps)
    return fig


def draw_paths(ax: plt.Axes, i: int, p: tu.Problem, res: dict) -> None:
    """Every optimizer's shown paths on the i-th surface with local minima."""
    plots.contour(ax, p.landscape)
    for opt in tu.FIRST_ORDER:
        xy = res[opt][i].shown.numpy()
        for b in range(xy.shape[1]):
            ax.plot(
                xy[:, b, 0],
                xy[:, b, 1],
                "-",
                color=tu.COLORS[opt],
                lw=1.2,
                label=tu.LABELS[opt] if b == 0 else None,
            )
            ax.plot(xy[-1, b, 0], xy[-1, b, 1], "o", color=tu.COLORS[opt], ms=4, mec="k")
    ax.plot(*p.show.numpy().T, "o", color="w", mec="k", ms=6)
    (x0, x1), (y0, y1) = p.landscape.window
    ax.set(xlim=(x0, x1), ylim=(y0, y1))  # the contours fill the panel; paths may leave it
    ax.set_title(p.name, fontsize=11)
    if i:
        ax.set_ylabel("")
    if i == 0:
        ax.legend(fontsize=8, loc="lower left")


def draw_outcomes(ax: plt.Axes, local: list, table: dict, steps: int) -> None:
    """Stacked bars: where each optimizer's fresh runs ended on each surface."""
    names_local = [p.name for p in local]
    colors = ("tab:green", "gold", "tab:red", "0.6")
    width = 0.8 / len(tu.FIRST_ORDER)
    for j, opt in enumerate(tu.FIRST_ORDER):
        x = np.arange(len(local)) + (j - 2) * width
        bottom = np.zeros(len(local))
        for k, (label, col) in enumerate(zip(OUTCOMES, colors)):
            h = np.array([table[n][opt]["fractions"][k] for n in names_local])
            ax.bar(
                x,
                h,
                width * 0.95,
                bottom=bottom,
                color=col,
                edgecolor="k",
                lw=0.3,
                label=label if j == 0 else None,
            )
            bottom += h
        for xi in x:
            ax.text(xi, 1.02, SHORT[opt], rotation=90, ha="center", va="bottom", fontsize=8)
    ax.set_xticks(np.arange(len(local)), names_local, fontsize=8)
    ax.set(
        ylabel="fraction of fresh starts",
        ylim=(0, 1.25),
        title=f"where the runs end, tuned α, {steps} steps",
    )
    ax.legend(fontsize=7, loc="upper center", ncol=4, bbox_to_anchor=(0.5, -0.1))


def draw_adam(ax: plt.Axes, adam: dict, obstacle: dict, steps: int) -> None:
    """Horizontal bars: Adam's success on every obstacle, coloured by the kind of obstacle."""
    names = list(adam)
    kinds = list(dict.fromkeys(obstacle.values()))
    cmap = dict(zip(kinds, ("tab:red", "tab:blue", "tab:orange", "tab:purple")))
    ax.barh(
        np.arange(len(names)),
        [adam[n]["fractions"][0] for n in names],
        color=[cmap[obstacle[n]] for n in names],
    )
    ax.axvline(DEALS, color="k", ls=":", lw=1)
    ax.set_yticks(np.arange(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    for k in kinds:
        ax.barh([0], [0], color=cmap[k], label=k)
    ax.set(
        xlabel="fraction reaching the target",
        xlim=(0, 1),
        title=f"Adam on every obstacle, tuned α, {steps} steps",
    )
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))


def measure(ctx: Context) -> Measurement:
    steps = ctx.pick(200, 1000)
    n_tune, n_fresh = ctx.pick((6, 24), (16, 96))
    lrs = tu.lr_grid(1e-3, 10.0)
    local = [problem(n, n_tune, n_fresh, ctx.seed) for n in ctx.pick(QUICK_LOCAL, LOCAL)]
    other = [problem(n, n_tune, n_fresh, ctx.seed) for n in OTHER]
    res = {opt: tu.tune(local, opt, steps=steps, lrs=lrs) for opt in tu.FIRST_ORDER}
    adam_other = tu.tune(other, "adam", steps=steps, lrs=lrs)

    table = {}
    for i, p in enumerate(local):
        table[p.name] = {
            opt: {"lr": res[opt][i].lr, **outcomes(p, res[opt][i])} for opt in tu.FIRST_ORDER
        }
    adam = {p.name: outcomes(p, res["adam"][i]) for i, p in enumerate(local)}
    adam.update({p.name: outcomes(p, t) for p, t in zip(other, adam_other)})
    obstacle = {n: landscapes.get(n).obstacles[0] for n in adam}
    baseline = {p.name: listed_gaps(p, table[p.name]["adam"].get("start_gap", 1.0)) for p in local}
    net = network(ctx)
    adam_lr = {p.name: t.lr for p, t in zip(local + other, res["adam"] + adam_other)}

    figures = [ctx.figure(draw(local, res, table, adam, obstacle, steps), "outcomes")]

    return Measurement(
        numbers={
            "budget": steps,
            "fresh_starts": n_fresh,
            "much_worse": MUCH_WORSE,
            "local": table,
            "adam": adam,
            "adam_lr": adam_lr,
            "obstacle": obstacle,
            "baseline_gaps": baseline,
            "network": net,
        },
        figures=figures,
        explanation=(
            f"Top: every optimizer at its tuned α from the same two starts (white) on "
            f"{len(local)} surfaces with local minima. Bottom left: where the fresh runs end: at "
            "the global minimum (or one as good, like Himmelblau's four), in a minimum slightly "
            "or much worse, or elsewhere. Bottom right: Adam's success on every obstacle "
            f"surface, coloured by obstacle. Not drawn: the network case, {len(net['inits'])} "
            f"initialisations of a {'-'.join(map(str, NET_WIDTHS))} tanh network on the "
            "spirals, ending at training losses "
            + ", ".join(f"{v:.3f}" for v in sorted(net["final_loss"]))
            + " (test accuracy "
            + ", ".join(f"{a:.0%}" for _, a in sorted(zip(net["final_loss"], net["test_accuracy"])))
            + ")."
        ),
    )


def judge(numbers: dict) -> Judgement:
    share, baseline, n_much = surface_shares(numbers)
    informative = baseline < ONLY
    n = network_harm(numbers["network"])
    only = n["harmless"] and (share >= ONLY or not informative) and n_much + len(n["much"]) > 0
    # 2. Adam on every obstacle: mean success over the surfaces of each obstacle
    by_kind: dict[str, list[float]] = {}
    for name, out in numbers["adam"].items():
        by_kind.setdefault(numbers["obstacle"][name], []).append(float(out["fractions"][0]))
    dealt = {k: float(np.mean(v)) for k, v in by_kind.items()}
    ok = [k for k, v in dealt.items() if v >= DEALS]
    most = len(ok) > len(dealt) / 2
    evidence = judge_evidence(numbers, share, baseline, n, dealt)
    acc, best, slight_net = n["acc"], n["best"], n["slight"]
    say = {
        "headline": f"slightly worse: {min((acc[i] for i in slight_net), default=acc[best]):.0%}"
        f" vs best {acc[best]:.0%} test accuracy",
        "takeaway": (
            "A network that ends slightly above the best loss reaches "
            + (
                f"{np.mean([acc[i] for i in slight_net]):.0%} test accuracy"
                if slight_net
                else "(no such run)"
            )
            + f" against the best run's {acc[best]:.0%}; on 2-D surfaces much worse minima carry "
            f"{share:.0%} of the excess loss ({baseline:.0%} for a random worse minimum); Adam "
            f"reaches the target on ≥ {DEALS:.0%} of starts for {len(ok)} of {len(dealt)} "
            f"obstacles ({', '.join(ok) or 'none'}) within {numbers['budget']} steps."
        ),
    }
    if only and most:
        return Judgement("holds", evidence, **say)
    if not only and not most:
        return Judgement("fails", evidence, **say)
    return Judgement("partly", evidence, judge_conditions(numbers, only, ok, n, share), **say)


def surface_shares(numbers: dict) -> tuple[float, float, int]:
    """Local minima: of the excess loss of runs that ended in a worse minimum (every optimizer,
    every surface with local minima), the share in much worse minima, the same share had each
    trapped run ended in a worse minimum of its surface drawn at random, and the number of runs
    that ended in a much worse minimum.

    Much worse minima carry most of the excess by definition (their gaps are the larger ones),
    so the surfaces speak only where the baseline is below ONLY; otherwise the network decides.
    """
    much = slight = base_much = base_all = 0.0
    n_much = 0  # surface runs that ended in a much worse minimum
    for name, per_opt in numbers["local"].items():
        listed = [float(g) for g in numbers["baseline_gaps"][name]]
        for out in per_opt.values():
            gaps = [float(g) for g in out["gaps"]]
            much += sum(g for g in gaps if g >= MUCH_WORSE)
            slight += sum(g for g in gaps if g < MUCH_WORSE)
            n_much += sum(g >= MUCH_WORSE for g in gaps)
            if listed:
                base_much += len(gaps) * sum(g for g in listed if g >= MUCH_WORSE) / len(listed)
                base_all += len(gaps) * sum(listed) / len(listed)
    share = much / (much + slight) if much + slight > 0 else 1.0
    baseline = base_much / base_all if base_all > 0 else 1.0
    return share, baseline, n_much


def network_harm(net: dict) -> dict:
    """The network: are the runs that end slightly above the best one harmless (test accuracy
    within HARMLESS of the best run's)? That is what "not problematic" means in practice."""
    loss = [float(v) for v in net["final_loss"]]
    acc = [float(v) for v in net["test_accuracy"]]
    best = int(np.argmin(loss))
    span = float(np.median([float(v) for v in net["start_loss"]])) - loss[best]
    rel = [(v - loss[best]) / span for v in loss]
    slight_net = [i for i, r in enumerate(rel) if 0 < r < MUCH_WORSE]
    # with no run slightly above the best, "slightly worse is harmless" has nothing to stand on:
    # all() of nothing is True, so that part cannot tell rather than hold
    told = bool(slight_net)
    return {
        "loss": loss,
        "acc": acc,
        "best": best,
        "slight": slight_net,
        "much": [i for i, r in enumerate(rel) if r >= MUCH_WORSE],
        "told": told,
        "harmless": told and all(acc[i] >= acc[best] - HARMLESS for i in slight_net),
        "lost": max((acc[best] - acc[i] for i in slight_net), default=0.0),
    }


def judge_evidence(numbers: dict, share: float, baseline: float, n: dict, dealt: dict) -> str:
    acc, best, slight_net, much_net = n["acc"], n["best"], n["slight"], n["much"]
    adam_local = [numbers["local"][k]["adam"]["fractions"] for k in numbers["local"]]
    return (
        f"much worse minima carry {share:.0%} of the excess loss of trapped runs (all "
        f"optimizers; {baseline:.0%} if each had ended in a listed worse minimum at random"
        + ("" if baseline < ONLY else ": by construction, so the surfaces cannot tell")
        + f"); network ({len(n['loss'])} inits on the spirals): {len(slight_net)} end slightly "
        f"and {len(much_net)} much above the best loss, test accuracy "
        + (
            f"{min(acc[i] for i in slight_net):.0%}–{max(acc[i] for i in slight_net):.0%}"
            if slight_net
            else "—"
        )
        + " (slightly worse) and "
        + (f"{np.mean([acc[i] for i in much_net]):.0%}" if much_net else "—")
        + f" (much worse) against {acc[best]:.0%} for the best; Adam ends in a much worse "
        f"minimum on {np.mean([float(f[2]) for f in adam_local]):.0%} of starts on surfaces "
        "with local minima; Adam's success by obstacle: "
        + ", ".join(f"{k} {v:.0%}" for k, v in dealt.items())
        + f" ({numbers['budget']} steps)"
    )


def judge_conditions(numbers: dict, only: bool, ok: list, n: dict, share: float) -> str:
    """The conditions of a ``partly``: which half of the claim failed, and how."""
    if only:
        return (
            "the harm of local minima is in the much worse ones (on the network, runs that end "
            f"slightly above the best lose at most {n['lost']:.0%} of test accuracy), but within "
            f"{numbers['budget']} steps Adam reaches the target on ≥ {DEALS:.0%} of starts "
            "only on the " + (", ".join(ok) or "no") + " obstacles"
        )
    if not n["told"]:
        return (
            f"Adam reaches the target on ≥ {DEALS:.0%} of starts on the {', '.join(ok)} "
            "obstacles, but whether slightly worse minima are harmless cannot be told: no "
            f"network run of {len(n['loss'])} ended slightly above the best loss"
        )
    acc, best = n["acc"], n["best"]
    return (
        f"Adam reaches the target on ≥ {DEALS:.0%} of starts on the {', '.join(ok)} "
        "obstacles, but slightly worse minima are problematic too: "
        + (
            f"on the network, runs ending slightly above the best lose up to "
            f"{acc[best] - min(acc[i] for i in n['slight']):.0%} of test accuracy"
            if not n["harmless"]
            else f"on the surfaces they carry {1 - share:.0%} of the excess loss"
        )
    )


register(
    Experiment(
        id="C8d",
        title="Local minima, and does Adam deal with most obstacles?",
        claim=(
            "only local minima that are much worse than the global minimum are problematic "
            "(and: the adam optimizer can deal with most geometric obstacles)"
        ),
        criterion=(
            "every optimizer, α tuned on the same grid and budget, from fresh random starts on "
            "five surfaces with local minima; Adam also on the canyon, flat and saddle surfaces "
            "(starts as in C8a–C8c). A run reaches the target at f − f* < 1e-3 (or below the "
            "escape level); otherwise it ends in a minimum (‖g‖ < 1e-2, H positive definite) that "
            f"is much worse (f − f* ≥ {MUCH_WORSE:.0%} of the median start gap) or slightly worse, "
            "or elsewhere. On the surfaces, only much worse minima are problematic if they carry "
            f"≥ {ONLY:.0%} of the excess loss of all runs that ended in a worse minimum, counted "
            "only where a baseline (each run in a listed worse minimum at random) stays below "
            f"{ONLY:.0%}, since much worse minima carry most of it by definition. On a network "
            f"({'-'.join(map(str, NET_WIDTHS))} tanh on the spirals, full-batch Adam from several "
            "initialisations), runs that end slightly above the best loss must be harmless: test "
            f"accuracy within {HARMLESS:.0%} of the best run's, and at least one must (else that "
            "part cannot tell, and the verdict is at most partly). Adam deals "
            f"with an obstacle (canyon, flat, saddle, local minima) when its surfaces average ≥ "
            f"{DEALS:.0%} success. Holds if both, with Adam dealing with more than half the "
            "obstacles; fails if neither; partly if one"
        ),
        measure=measure,
        judge=judge,
    )
)
