"""E6: θ_{t+1} = θ_t − η(t) m̂_t/(√v̂_t + ε), a time-dependent learning rate under minibatch noise.

With noisy gradients g = ∇f + σξ a constant step never settles: near the minimum the noise
keeps kicking θ, and f hovers at a floor that grows with the step size (for SGD on ½λθ²,
E[f] → ασ²/(2(2 − αλ)) ≈ ασ²/4 per coordinate; Adam's step α m̂/√v̂ with v̂ ≈ σ² behaves the
same, so its floor grows with α too). A decaying η(t) shrinks the kicks as it goes: the floor
falls with η(t), which is why the notes give Adam a time-dependent η(t), and what AdaGrad's
growing r does by itself.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from firstorder.experiments import _tuning as tu
from firstorder.experiments._noise import noisy_quadratic
from firstorder.experiments.base import (
    Context,
    Experiment,
    Judgement,
    Measurement,
    ratio_words,
    register,
)
from firstorder.optim import GD, Adam

DIM = 10
LAM = torch.logspace(-0.5, 0, DIM, dtype=torch.float64)  # H = diag(λ), κ = √10
SIGMA = 1.0  # the gradient noise per coordinate: a minibatch gradient's spread
LRS = [0.01, 0.03, 0.1, 0.3]  # constant α (Adam) and η₀ of the schedule
SGD_LRS = [0.03, 0.1, 0.3, 1.0]  # αλ_max ≤ 1: every one stable
SLOPE = (0.75, 1.25)  # floor ∝ α: the log-log slope of the floor against α within this band
REMOVED = 5.0  # the schedule removes the floor: final f ≥ 5× below the constant-η floor
TAU = 50.0  # η(t) = η₀/(1 + (t − T/2)/τ) in the second half: η₀/21 at T = 2000


def schedule(t: int, steps: int) -> float:
    """η(t)/η₀: constant for the first half (both runs reach the same floor), then decaying
    like 1/t with time constant τ (Robbins–Monro: Σ η = ∞, Σ η² < ∞)."""
    return 1.0 / (1.0 + max(0, t - steps // 2) / TAU)


def noisy_run(optimizer, lrs: list[float], steps: int, starts: int, gen, decay: bool):
    """f(θ_t) = ½ Σ λᵢθᵢ² along the real optimizer fed g = λ⊙θ + σξ: [T+1, configs, starts]."""
    theta0 = torch.full((starts, DIM), 0.5, dtype=torch.float64)
    when = (lambda t: schedule(t, steps)) if decay else None
    return noisy_quadratic(optimizer, LAM, theta0, lrs, steps, SIGMA, gen, when)[0]


def floor(f: torch.Tensor) -> list[float]:
    """The noise floor per config: mean f over the last quarter of the steps (and the starts)."""
    return f[-len(f) // 4 :].mean((0, 2)).tolist()


def measure(ctx: Context) -> Measurement:
    steps = ctx.pick(2000, 8000)
    starts = ctx.pick(8, 32)
    gen = tu.generator(ctx.seed, "E6")
    runs = {
        ("adam", "constant"): noisy_run(Adam, LRS, steps, starts, gen, False),
        ("adam", "decaying"): noisy_run(Adam, LRS, steps, starts, gen, True),
        ("gd", "constant"): noisy_run(GD, SGD_LRS, steps, starts, gen, False),
        ("gd", "decaying"): noisy_run(GD, SGD_LRS, steps, starts, gen, True),
    }
    floors = {f"{o} {kind}": floor(f) for (o, kind), f in runs.items()}
    # SGD's floor from theory, Σᵢ ασ²/(2(2 − αλᵢ)): an independent check of the measurement
    theory = [float((a * SIGMA**2 / (2 * (2 - a * LAM))).sum()) for a in SGD_LRS]

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3))
    ax = axes[0]
    k = np.arange(steps + 1)
    every = max(1, steps // 400)
    i = LRS.index(0.1)
    for kind, style in (("constant", "-"), ("decaying", "--")):
        med = runs[("adam", kind)][:, i].median(-1).values.numpy()
        label = "constant η = 0.1" if kind == "constant" else "η(t) decaying from T/2"
        ax.plot(k[::every], med[::every], style, color=tu.COLORS["adam"], label=f"Adam, {label}")
    tu.log_axis(ax, "y")
    ax.set(xlabel="step t", ylabel="median f(θ_t)")
    ax.set_title(f"Adam on a noisy quadratic (σ = {SIGMA:g})", fontsize=10)
    ax.legend(fontsize=8)
    ax = axes[1]
    for o, lrs in (("adam", LRS), ("gd", SGD_LRS)):
        c = tu.COLORS[o]
        ax.plot(lrs, floors[f"{o} constant"], "o-", color=c, label=f"{tu.LABELS[o]}, constant")
        ax.plot(lrs, floors[f"{o} decaying"], "s--", color=c, label=f"{tu.LABELS[o]}, η(t)")
    ax.plot(SGD_LRS, theory, "k:", lw=1, label="SGD theory Σ ασ²/(2(2 − αλ))")
    tu.log_axis(ax, "xy")
    ax.set(xlabel="α (η₀ for the schedule)", ylabel="floor: mean f, last quarter")
    ax.set_title("the noise floor against α: constant η and η(t)", fontsize=10)
    ax.legend(fontsize=7)
    fig.subplots_adjust(wspace=0.3)
    return Measurement(
        numbers={
            "steps": steps,
            "starts": starts,
            "sigma": SIGMA,
            "tau": TAU,
            "lrs": {"adam": LRS, "gd": SGD_LRS},
            "floors": floors,
            "sgd_floor_theory": theory,
        },
        figures=[ctx.figure(fig, "schedule")],
        explanation=(
            f"A {DIM}-dimensional quadratic (κ = √10) whose gradients carry noise σξ, as "
            "minibatch gradients do. Left: Adam at a constant η falls to a floor and hovers "
            f"there; with η(t) = η₀/(1 + (t − T/2)/{TAU:g}) from half-way on, f falls further. "
            "Right: the floor (mean f over the last quarter of the run) against the step "
            "size, for Adam and SGD, constant and decaying; the dotted line is SGD's floor "
            "from theory."
        ),
    )


def judge(numbers: dict) -> Judgement:
    floors = {k: [float(v) for v in vs] for k, vs in numbers["floors"].items()}
    slopes, gains, where = {}, {}, {}
    for o in ("adam", "gd"):
        lrs = [float(a) for a in numbers["lrs"][o]]
        slopes[o] = float(np.polyfit(np.log(lrs), np.log(floors[f"{o} constant"]), 1)[0])
        ratio = [c / d for c, d in zip(floors[f"{o} constant"], floors[f"{o} decaying"])]
        gains[o] = min(ratio)
        where[o] = [a for a, r in zip(lrs, ratio) if r >= REMOVED]
    prop = {o: SLOPE[0] <= s <= SLOPE[1] for o, s in slopes.items()}
    removed = {o: g >= REMOVED for o, g in gains.items()}
    evidence = (
        "noise floor ∝ α^slope: "
        + ", ".join(f"{tu.LABELS[o]} {s:.2f}" for o, s in slopes.items())
        + "; η(t)'s floor against the constant one's, at worst: "
        + ", ".join(
            f"{ratio_words(g, 'lower', 'higher')} ({tu.LABELS[o]})" for o, g in gains.items()
        )
        + f" over every η₀ ({numbers['steps']} steps, σ = {float(numbers['sigma']):g})"
    )
    say = {
        "headline": f"η(t): floor at worst {ratio_words(gains['adam'], 'lower', 'higher')} (Adam)",
        "takeaway": (
            f"Under gradient noise a constant step leaves f at a floor that grows like "
            f"α^{slopes['adam']:.2f} for Adam (SGD α^{slopes['gd']:.2f}); a decaying η(t) "
            f"leaves f, at the worst η₀, {ratio_words(gains['adam'], 'lower', 'higher')} (SGD "
            f"{ratio_words(gains['gd'], 'lower', 'higher')})."
        ),
    }
    if all(prop.values()) and all(removed.values()):
        return Judgement("holds", evidence, **say)
    if not any(prop.values()) and not any(where.values()):
        return Judgement("fails", evidence, **say)
    conditions = []
    for o in ("adam", "gd"):
        name = tu.LABELS[o]
        if not prop[o]:
            conditions.append(f"{name}'s floor grows as α^{slopes[o]:.2f}, not ∝ α")
        if not removed[o]:
            conditions.append(
                f"η(t) lowers {name}'s floor ≥ {REMOVED:g}× only at η₀ ∈ {{"
                + ", ".join(f"{a:g}" for a in where[o])
                + f"}} within {numbers['steps']} steps (from a small η₀ the decayed steps are "
                "too small to reach the lower floor in time)"
            )
    return Judgement("partly", evidence, "; ".join(conditions), **say)


register(
    Experiment(
        id="E6",
        title="η(t): a decaying learning rate removes the noise floor",
        claim=(
            "η(t) is the (possibly time-dependent) learning rate: θ_{t+1} = θ_t − η(t) "
            "m̂_t/(√v̂_t + ε); with minibatch noise a constant η leaves a noise floor ∝ η, "
            "which a decaying η(t) removes"
        ),
        criterion=(
            f"on a {DIM}-dimensional quadratic (κ = √10) with gradient noise σ = {SIGMA:g}, run "
            "the real Adam and SGD from the same start, at constant α and at η(t) = η₀ for the "
            f"first half, η₀/(1 + (t − T/2)/{TAU:g}) after, over 4 values each; the floor is the "
            "mean f over the last quarter. "
            f"Holds if, for both, the floor grows as α^s with s in [{SLOPE[0]}, {SLOPE[1]}] and "
            f"η(t) ends ≥ {REMOVED:g}× below the constant-η floor at every η₀; fails if "
            "neither part holds for either; partly otherwise"
        ),
        measure=measure,
        judge=judge,
    )
)
