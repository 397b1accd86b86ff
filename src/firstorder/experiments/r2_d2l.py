"""R2: Dive into Deep Learning (Zhang et al.), §12.6 "Momentum": the canyon f = 0.1x₁² + 2x₂².

d2l shows gradient descent converging at η = 0.4 and diverging at η = 0.6 (λ_max = 4, so the
threshold is 2/λ_max = 0.5), and states that momentum (v ← βv + g, x ← x − ηv, the same
trajectories as the notes' s ← ρs − αg for constant α) converges iff 0 < ηλ < 2 + 2β.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, NullLocator

from firstorder import landscapes
from firstorder.experiments import _tuning as tu
from firstorder.experiments.base import Context, Experiment, Judgement, Measurement, register
from firstorder.run import run

LAM_MAX = 4.0
START = [[-5.0, -2.0]]  # d2l's start
TARGET = 1e-6
REL_TOL = 0.03  # measured stability boundary within 3 % of (2 + 2ρ)/λ_max


def measure(ctx: Context) -> Measurement:
    f = landscapes.get("canyon")
    steps = ctx.pick(300, 1000)
    gd = run(f, "gd", starts=START, steps=steps, lr=[0.4, 0.6], bound=1e8, record="curves")
    f0 = float(gd.f[0, 0, 0])
    gd_final = [float(v) for v in gd.final_f[:, 0]]
    gd_diverged = [bool(v >= 0) for v in gd.diverged_at[:, 0]]
    n_a, n_r = ctx.pick((121, 20), (301, 40))
    lrs = [float(v) for v in np.linspace(0.01, 1.2, n_a)]
    rhos = [float(v) for v in np.linspace(0.0, 0.95, n_r)]
    reached, boundary = momentum_boundary(f, lrs, rhos, steps, f0)
    predicted = [(2 + 2 * rho) / LAM_MAX for rho in rhos]
    rel_err = [abs(b / p - 1) for b, p in zip(boundary, predicted)]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    draw_map(fig, axes[0], reached, lrs, rhos, boundary, steps)
    draw_gd(axes[1], gd)
    fig.subplots_adjust(wspace=0.3)
    return Measurement(
        numbers={
            "gd_lrs": [0.4, 0.6],
            "gd_final_f": gd_final,
            "gd_diverged": gd_diverged,
            "f0": f0,
            "rhos": rhos,
            "boundary": boundary,
            "predicted": predicted,
            "rel_err": rel_err,
            "grid_spacing": lrs[1] - lrs[0],
        },
        figures=[ctx.figure(fig, "d2l")],
        explanation=(
            "Left: steps to reach f < 1e-6 for every α and ρ on d2l's canyon; the measured edge "
            "of the stable region (white dots) lies on the line αλ_max = 2 + 2ρ, so momentum "
            "allows steps up to (1 + ρ) times larger than GD's 2/λ_max. Right: GD at α = 0.4 "
            "converges and at α = 0.6 diverges, as d2l shows."
        ),
    )


def momentum_boundary(f, lrs: list[float], rhos: list[float], steps: int, f0: float):
    """Momentum over the α × ρ grid: the steps to target [α, ρ] (−1: not reached) and, per ρ,
    the largest stable α (reached the target, or still below the start value at the end)."""
    n_a, n_r = len(lrs), len(rhos)
    res = run(
        f,
        "momentum",
        starts=START,
        steps=steps,
        lr=lrs,
        rho=rhos,
        tol_f=TARGET,
        bound=1e8,
        record="final",
    )
    reached = res.steps_to_target[:, 0].view(n_a, n_r)
    stable = ((reached >= 0) | (res.final_f[:, 0] < f0).view(n_a, n_r)) & (
        res.diverged_at[:, 0].view(n_a, n_r) < 0
    )
    boundary = []
    for j in range(n_r):
        ok = [lrs[i] for i in range(n_a) if stable[i, j]]
        boundary.append(max(ok) if ok else 0.0)
    return reached, boundary


def draw_map(
    fig: plt.Figure, ax: plt.Axes, reached, lrs: list, rhos: list, boundary: list, steps: int
) -> None:
    steps_map = reached.double().numpy()
    steps_map[steps_map < 0] = np.nan
    mesh = ax.pcolormesh(
        rhos,
        lrs,
        steps_map,
        shading="nearest",
        cmap="viridis",
        norm=plt.matplotlib.colors.LogNorm(),
    )
    bar = fig.colorbar(mesh, ax=ax, label="steps k to f < 1e-6 (blank: not reached)")
    bar.ax.yaxis.set_minor_locator(NullLocator())
    bar.set_ticks([v for v in (20, 30, 50, 100, 200, 300, 500, 1000) if v <= steps])
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    rr = np.linspace(0, max(rhos), 50)
    ax.plot(rr, (2 + 2 * rr) / LAM_MAX, "r-", lw=2, label="αλ_max = 2 + 2ρ")
    ax.plot(rhos, boundary, "o", color="w", mec="k", ms=5, label="largest stable α measured")
    ax.set(xlabel="ρ", ylabel="α", title="momentum on 0.1θ₁² + 2θ₂², from (−5, −2)")
    ax.legend(fontsize=8, loc="upper left")


def draw_gd(ax: plt.Axes, gd) -> None:
    for lr, col in ((0.4, "tab:blue"), (0.6, "tab:red")):
        c = gd.f[:, [0.4, 0.6].index(lr), 0].numpy()
        ax.plot(np.arange(len(c)), c, color=col, label=f"GD, α = {lr} (αλ_max = {lr * 4:g})")
    tu.log_axis(ax, "y")
    ax.set(
        xlabel="step k",
        ylabel="f(θ_k)",
        title="d2l's GD thresholds: 0.4 converges, 0.6 not",
        ylim=(1e-12, 1e8),
    )
    ax.legend(fontsize=8)


def judge(numbers: dict) -> Judgement:
    conv = float(numbers["gd_final_f"][0]) < TARGET and not numbers["gd_diverged"][0]
    div = numbers["gd_diverged"][1] or float(numbers["gd_final_f"][1]) > float(numbers["f0"])
    worst = max(float(e) for e in numbers["rel_err"])
    evidence = (
        f"GD α=0.4: f_T = {float(numbers['gd_final_f'][0]):.1e}; α=0.6: "
        + (
            "diverged"
            if numbers["gd_diverged"][1]
            else f"f_T = {float(numbers['gd_final_f'][1]):.1e}"
        )
        + f"; momentum's largest stable α within {worst:.1%} of (2+2ρ)/λ_max for all "
        f"{len(numbers['rhos'])} ρ ∈ [0, {max(numbers['rhos']):g}]"
    )
    ok = [conv and div, worst <= REL_TOL]
    say = {
        "headline": f"α_max within {worst:.1%} of (2+2ρ)/λ_max",
        "takeaway": (
            f"On 0.1x₁² + 2x₂² GD {'converges' if conv else 'does not converge'} at α = 0.4 and "
            f"{'diverges' if div else 'does not diverge'} at 0.6, and momentum's largest stable "
            f"α is (2+2ρ)/λ_max to {worst:.1%}."
        ),
    }
    if all(ok):
        return Judgement("holds", evidence, **say)
    if not any(ok):
        return Judgement("fails", evidence, **say)
    return Judgement(
        "partly",
        evidence,
        "GD thresholds reproduced" if ok[0] else "momentum boundary reproduced, GD thresholds not",
        **say,
    )


register(
    Experiment(
        id="R2",
        kind="reproduction",
        title="d2l: GD and momentum thresholds on the canyon 0.1x₁² + 2x₂²",
        claim=(
            "Dive into Deep Learning, §12.6: on f = 0.1x₁² + 2x₂², gradient descent converges "
            "with η = 0.4 and diverges with η = 0.6; momentum converges iff 0 < ηλ < 2 + 2β"
        ),
        criterion=(
            "from d2l's start (−5, −2): GD at α = 0.4 reaches f < 1e-6 and at α = 0.6 leaves the "
            "bound or ends above f(θ₀); over an α × ρ grid (Δα = 0.01) the largest α at which "
            "momentum reaches f < 1e-6 or ends below f(θ₀) is within "
            f"{REL_TOL:.0%} of (2 + 2ρ)/λ_max for every ρ. Holds if both; fails if neither"
        ),
        measure=measure,
        judge=judge,
        seeded=False,  # d2l's fixed start and grid: nothing random
    )
)
