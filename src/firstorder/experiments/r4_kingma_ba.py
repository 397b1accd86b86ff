"""R4: Kingma & Ba (2015), "Adam: A Method for Stochastic Optimization", fig. 2 style: a
multilayer network trained with minibatches by SGD, momentum, AdaGrad, RMSProp and Adam.

The paper trained a 2 × 1000 ReLU network on MNIST (minibatch 128, with and without dropout)
and found Adam's training cost falling as fast as or faster than the others'. Here: a
64-128-128-10 ReLU network on scikit-learn's digits, minibatch 64, cross-entropy, no dropout,
the notes' update rules (E1–E5; the momentum is the notes' heavy ball E2, not the paper's
Nesterov). Each optimizer's α is tuned DeepOBS-style (Schneider et al. 2019): the same log grid
for all, the best final training loss on one tuning seed wins, and the curves shown come from
fresh seeds that played no part in the choice.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

from firstorder import data as datasets
from firstorder import optim
from firstorder.experiments.base import Context, Experiment, Judgement, Measurement, register
from firstorder.nn import MLP
from firstorder.rules import RULES
from firstorder.train import compare

# the five rules of the paper's figure; label and colour are each rule's own (rules.RULES), but
# GD fed minibatch gradients is SGD, as the paper calls it
PAPER = ("gd", "momentum", "adagrad", "rmsprop", "adam")
OPTIMIZERS = {name: optim.OPTIMIZERS[name] for name in PAPER}
LABELS = {name: RULES[name].label for name in OPTIMIZERS} | {"gd": "SGD"}
COLORS = {name: RULES[name].color for name in OPTIMIZERS}
WIDTHS = [64, 128, 128, 10]
BATCH = 64
TARGET = 0.05  # the training loss R(θ) whose first crossing measures speed
WITHIN = 1.10  # Adam's final loss may exceed the lowest by at most this factor
DIVERGED = 10.0  # in the tuning figure, a final loss above this (or inf) is drawn as × here


def lr_grid(quick: bool) -> list[float]:
    """The log grid of α shared by every optimizer: decades (quick) or half decades (full)."""
    exponents = np.arange(-3, 0.01, 1.0) if quick else np.arange(-3.5, 0.51, 0.5)
    return [float(f"{10**e:.3g}") for e in exponents]


def train_all(optimizers: dict, d, epochs: int, seed: int, log_every: int) -> dict:
    """Every (name, α) of ``optimizers`` from the same initial network and minibatch order."""
    make = {
        key: (lambda p, c=OPTIMIZERS[name], lr=lr: c(p, lr=lr))
        for key, (name, lr) in optimizers.items()
    }
    return compare(
        lambda: MLP(WIDTHS, "relu", seed=seed),
        make,
        d,
        epochs=epochs,
        batch_size=BATCH,
        seed=seed,
        log_every=log_every,
    )


def final_risk(history, epochs: int) -> float:
    """R(θ) at the end, averaged over the records of the last epoch (a minibatch spike at the
    very last step says little about where training ended up); inf for a run that diverged."""
    if history.diverged_at is not None:
        return math.inf
    r = float(np.mean([r.train_risk for r in history.records if r.epoch >= epochs - 1]))
    return r if math.isfinite(r) else math.inf


def epochs_to(history, target: float) -> float | None:
    """The first logged epoch at which R(θ) ≤ target (None: never within the budget)."""
    return next((r.epoch for r in history.records if r.train_risk <= target), None)


def measure(ctx: Context) -> Measurement:
    epochs = ctx.pick(6, 15)
    lrs = lr_grid(ctx.quick)
    fresh = [ctx.seed + 1 + i for i in range(ctx.pick(1, 3))]
    d = datasets.load("digits", seed=ctx.seed, n_train=ctx.pick(720, 1437), n_test=360)
    log_every = math.ceil(len(d.y_train) / BATCH) // 2  # two records an epoch
    grid = {f"{n}@{lr:g}": (n, lr) for n in OPTIMIZERS for lr in lrs}
    tuning = train_all(grid, d, epochs, ctx.seed, log_every)
    finals = {n: [final_risk(tuning[f"{n}@{lr:g}"], epochs) for lr in lrs] for n in OPTIMIZERS}
    chosen = {n: lrs[int(np.argmin(finals[n]))] for n in OPTIMIZERS}
    results, curves = fresh_runs(chosen, d, epochs, fresh, log_every)
    fig = draw(curves, finals, chosen, lrs, epochs, len(fresh))
    figures = [ctx.figure(fig, "training_loss")]
    return Measurement(
        numbers={
            "dataset": "digits",
            "n_train": len(d.y_train),
            "widths": WIDTHS,
            "batch_size": BATCH,
            "epochs": epochs,
            "lr_grid": lrs,
            "tuning_seed": ctx.seed,
            "fresh_seeds": fresh,
            "target": TARGET,
            "tuning_final": finals,
            "chosen_at_grid_edge": [n for n in OPTIMIZERS if chosen[n] in (lrs[0], lrs[-1])],
            "optimizers": results,
        },
        figures=figures,
        explanation=(
            "Left: the training risk R(θ) per epoch of a 64-128-128-10 ReLU network on digits, "
            "each optimizer at the α that gave it the lowest final loss on the tuning seed "
            "(geometric mean over fresh seeds); the dotted line is the loss whose first "
            "crossing measures speed. Right: the tuning itself, final R(θ) against α on the "
            "shared log grid, with the chosen α starred and runs that blew up as ×; a star at "
            "the grid's edge would mean the grid cut that optimizer short."
        ),
    )


def fresh_runs(chosen: dict, d, epochs: int, fresh: list[int], log_every: int):
    """Every optimizer at its chosen α on the fresh seeds: per optimizer the final risks, the
    epochs to TARGET and their means (None: a seed never reached it), and the curves."""
    curves = {n: [] for n in OPTIMIZERS}
    results = {n: {"lr": chosen[n], "final": [], "epochs_to_target": []} for n in OPTIMIZERS}
    for seed in fresh:
        runs = train_all({n: (n, chosen[n]) for n in OPTIMIZERS}, d, epochs, seed, log_every)
        for n, h in runs.items():
            results[n]["final"].append(final_risk(h, epochs))
            results[n]["epochs_to_target"].append(epochs_to(h, TARGET))
            curves[n].append((h["epoch"], h["train_risk"]))
    for r in results.values():
        r["final_mean"] = float(np.mean(r["final"]))
        reached = [e for e in r["epochs_to_target"] if e is not None]
        r["epochs_to_target_mean"] = float(np.mean(reached)) if len(reached) == len(fresh) else None
    return results, curves


def draw(curves: dict, finals: dict, chosen: dict, lrs: list, epochs: int, n_fresh: int):
    """Left: the training risk of the fresh runs. Right: the tuning over the α grid."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11.5, 4.2))
    for n in OPTIMIZERS:
        epoch = curves[n][0][0]
        risk = np.exp(np.mean([np.log(np.maximum(c[1], 1e-12)) for c in curves[n]], axis=0))
        label = f"{LABELS[n]}, α = {chosen[n]:g}"
        ax1.semilogy(epoch, risk, color=COLORS[n], lw=1.6, label=label)
        tuned = np.array(finals[n])
        blown = ~(tuned < DIVERGED)  # diverged, or left far above the start R(θ₀) ≈ ln 10
        ax2.loglog(
            lrs, np.where(blown, np.nan, tuned), "o-", color=COLORS[n], ms=4, label=LABELS[n]
        )
        ax2.plot(np.array(lrs)[blown], [DIVERGED] * int(blown.sum()), "x", color=COLORS[n], ms=7)
        ax2.plot(chosen[n], min(finals[n]), "*", color=COLORS[n], mec="k", ms=12)
    ax1.axhline(TARGET, color="gray", ls=":", lw=1, label=f"R(θ) = {TARGET:g}")
    ax1.set(
        xlabel="epoch",
        ylabel="training risk R(θ) (cross-entropy)",
        title=f"tuned α, {n_fresh} fresh {'seed' if n_fresh == 1 else 'seeds'}, minibatch {BATCH}",
    )
    ax1.legend(fontsize=8)
    ax2.set(
        xlabel="learning rate α",
        ylabel=f"R(θ) over epoch {epochs} (tuning seed)",
        title="tuning: best final R(θ) on the grid (★), × blew up",
    )
    ax2.legend(fontsize=8)
    fig.subplots_adjust(wspace=0.3)  # not tight_layout(): an extra draw; saving crops anyway
    return fig


def when(t: float | None) -> float:
    """Epochs to the target as a number: inf where it was never reached."""
    return math.inf if t is None else float(t)


def epochs_words(v: float) -> str:
    return "never" if math.isinf(v) else f"{v:.2f}"


def judge(numbers: dict) -> Judgement:
    opts = numbers["optimizers"]
    final = {n: float(r["final_mean"]) for n, r in opts.items()}
    t = {n: when(r["epochs_to_target_mean"]) for n, r in opts.items()}
    others = [n for n in opts if n != "adam"]
    # pairwise, against every optimizer the claim names: Adam compares favourably with X if its
    # final loss is at most WITHIN × X's and it reaches the target loss no later than X
    lower = {n: final["adam"] <= WITHIN * final[n] for n in others}
    sooner = {n: t["adam"] <= t[n] for n in others}
    favourable = [n for n in others if lower[n] and sooner[n]]
    best = min(final, key=final.get)
    ratio = final["adam"] / final[best] if final[best] > 0 else math.inf
    data = (
        f"{numbers.get('dataset', 'digits')} ({numbers.get('n_train', '?')} 8×8 images; not "
        "MNIST, and small enough to be memorised)"
    )
    evidence = (
        f"{data}: final R(θ) "
        + ", ".join(f"{LABELS.get(n, n)} {final[n]:.2g} (α={opts[n]['lr']:g})" for n in opts)
        + f"; epochs to R ≤ {float(numbers['target']):g}: "
        + ", ".join(f"{LABELS.get(n, n)} {epochs_words(t[n])}" for n in opts)
    )
    if numbers.get("chosen_at_grid_edge"):
        edge = ", ".join(LABELS.get(n, n) for n in numbers["chosen_at_grid_edge"])
        evidence += f"; α at the grid's edge for {edge}"
    names = ", ".join(LABELS.get(n, n) for n in favourable) or "none of them"
    say = {
        "headline": f"Adam ahead of {len(favourable)}/{len(others)}",
        "takeaway": (
            f"On digits (not MNIST) Adam, tuned like the others, compares favourably (final loss "
            f"within {WITHIN - 1:.0%} and the target loss no later) with {names}; its final loss "
            f"is {ratio:.2g}× the lowest ({LABELS.get(best, best)})."
        ),
    }
    if len(favourable) == len(others):
        return Judgement("holds", evidence, **say)
    if not favourable:
        return Judgement("fails", evidence, **say)
    behind = [behind_words(n, final, t, lower[n], sooner[n]) for n in others if n not in favourable]
    return Judgement(
        "partly",
        evidence,
        f"on {data}, Adam compares favourably with {names} but not with " + "; ".join(behind),
        **say,
    )


def behind_words(n: str, final: dict, t: dict, lower: bool, sooner: bool) -> str:
    """Where Adam is behind optimizer n: its final loss, the epochs to the target, or both."""
    return (
        f"{LABELS.get(n, n)} ("
        + " and ".join(
            w
            for w, bad in (
                (f"a final loss {final[n] / final['adam']:.2g}× Adam's", not lower),
                (
                    f"the target after {epochs_words(t[n])} epochs, Adam {epochs_words(t['adam'])}",
                    not sooner,
                ),
            )
            if bad
        )
        + ")"
    )


register(
    Experiment(
        id="R4",
        kind="reproduction",
        title="Adam against SGD, momentum, AdaGrad, RMSProp on an MLP (Kingma & Ba 2015, fig. 2)",
        claim=(
            'Kingma & Ba (2015): "Empirical results demonstrate that Adam works well in '
            'practice and compares favorably to other stochastic optimization methods"; on a '
            "multilayer ReLU network (their fig. 2) Adam's training cost falls at least as fast "
            "as that of SGD with momentum, AdaGrad and RMSProp"
        ),
        criterion=(
            f"each optimizer tuned on a shared log grid of α (lowest final training loss, R(θ) "
            f"averaged over the last epoch, on one seed), then run on fresh seeds; holds if "
            f"Adam compares favourably with an optimizer if its final training loss (mean over "
            f"the fresh seeds) is at most {WITHIN:g}× that optimizer's AND it reaches "
            f"R(θ) ≤ {TARGET:g} in no more epochs. Holds if Adam compares favourably with every "
            "one the claim names (SGD, momentum, AdaGrad, RMSProp); fails if with none; partly "
            "otherwise (naming who is ahead, and on what). The data are digits, not MNIST"
        ),
        measure=measure,
        judge=judge,
    )
)
