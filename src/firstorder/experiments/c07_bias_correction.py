"""C7: Adam's bias correction "prevents the update step from exploding" (r starts at zero)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from firstorder import landscapes
from firstorder.experiments.base import (
    Context,
    Experiment,
    Judgement,
    Measurement,
    register,
    updates,
)
from firstorder.optim import Adam
from firstorder.run import run

EXPLODES = 2.0  # an uncorrected step of at least 2α, where the corrected one is ≈ α
CORRECTED_MAX = 1.5  # the corrected steps stay below 1.5α
STALLS = 0.5  # an uncorrected first step below α/2: a cold start, not an explosion
ALPHA = 1e-3


def adam_updates(grads, rho1, rho2, bias_correction: bool) -> torch.Tensor:
    """Δθ_k [K, C, d] of Adam; row c of θ uses ρ₁ = rho1[c], ρ₂ = rho2[c] ([C, 1] tensors)."""
    return updates(Adam, grads, lr=ALPHA, rho1=rho1, rho2=rho2, bias_correction=bias_correction)


def _short(v: float) -> str:
    return f"{v:.0f}" if v >= 99.5 else f"{v:.2g}"


def measure(ctx: Context) -> Measurement:
    rho1s = ctx.pick([0.0, 0.5, 0.9, 0.99], [0.0, 0.5, 0.8, 0.9, 0.95, 0.99])
    rho2s = ctx.pick([0.9, 0.99, 0.999, 0.9999], [0.9, 0.99, 0.999, 0.9999, 0.99999])
    pairs = [(a, b) for a in rho1s for b in rho2s]
    r1 = torch.tensor([a for a, _ in pairs], dtype=torch.float64).view(-1, 1)
    r2 = torch.tensor([b for _, b in pairs], dtype=torch.float64).view(-1, 1)

    # 1. a constant gradient with coordinates over six orders of magnitude (all ≫ ε)
    K = ctx.pick(300, 3000)
    g = torch.tensor([1e-3, 1.0, 1e3], dtype=torch.float64)
    grads = g.expand(K, len(pairs), 3)
    step = {bc: (adam_updates(grads, r1, r2, bc).abs() / ALPHA).amax(-1) for bc in (True, False)}
    unc, cor = step[False], step[True]  # [K, C]: |Δθ_k| / α, largest coordinate
    # 2. a noisy gradient (mean 1, noise 1) for the same settings
    gen = torch.Generator().manual_seed(ctx.seed)
    noisy = 1.0 + torch.randn(K, len(pairs), 32, generator=gen, dtype=torch.float64)
    noisy_unc = (adam_updates(noisy, r1, r2, False).abs() / ALPHA).amax(-1).amax(0)
    noisy_cor = (adam_updates(noisy, r1, r2, True).abs() / ALPHA).amax(-1).amax(0)
    canyon = {bc: canyon_peak(rho1s, rho2s, bc) for bc in (True, False)}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
    draw_grid(fig, ax1, unc, rho1s, rho2s)
    draw_first_steps(ax2, unc, cor, pairs, K)
    for ax in fig.axes:
        ax.minorticks_off()  # minor log ticks cost more to draw than the data
    fig.subplots_adjust(wspace=0.25)
    figures = [ctx.figure(fig, "bias_correction")]
    default_peak = unc[:, pairs.index((0.9, 0.999))].max().item() if (0.9, 0.999) in pairs else 0
    return Measurement(
        numbers={
            "rho1s": rho1s,
            "rho2s": rho2s,
            "steps": K,
            "uncorrected_first": unc[0].tolist(),
            "uncorrected_peak": unc.amax(0).tolist(),
            "uncorrected_peak_step": (unc.argmax(0) + 1).tolist(),
            "corrected_first": cor[0].tolist(),
            "corrected_peak": cor.amax(0).tolist(),
            "noisy_uncorrected_peak": noisy_unc.tolist(),
            "noisy_corrected_peak": noisy_cor.tolist(),
            "canyon_uncorrected_peak": canyon[False].tolist(),
            "canyon_corrected_peak": canyon[True].tolist(),
        },
        figures=figures,
        explanation=(
            "Left: the largest update of Adam without bias correction, in units of α, for a "
            "constant gradient, and its first step (1−ρ₁)/√(1−ρ₂)·α. With the default "
            f"ρ₁ = 0.9, ρ₂ = 0.999 the uncorrected steps overshoot to {default_peak:.2g}α; where "
            "ρ₁ is close to ρ₂ the uncorrected start is too small instead (blue). Right: with the "
            "correction (dashed) every step is α from k = 1 on: it removes the overshoot and the "
            "stall alike."
        ),
    )


def canyon_peak(rho1s: list, rho2s: list, bias_correction: bool) -> torch.Tensor:
    """Adam on the canyon from its three starts, first 100 steps: the largest step ‖Δθ‖/(α√d),
    median over the starts, one per (ρ₁, ρ₂)."""
    res = run(
        landscapes.get("canyon"),
        "adam",
        steps=100,
        lr=0.05,
        rho1=rho1s,
        rho2=rho2s,
        bias_correction=bias_correction,
        record="curves",
    )
    return res.step_length.amax(0).median(-1).values / (0.05 * 2**0.5)


def draw_grid(fig: plt.Figure, ax1: plt.Axes, unc: torch.Tensor, rho1s: list, rho2s: list) -> None:
    """Per (ρ₁, ρ₂): the uncorrected step farthest from α (colour), its peak and first step."""
    shape = (len(rho1s), len(rho2s))
    peak, first = unc.amax(0).view(shape).numpy(), unc[0].view(shape).numpy()
    # colour each cell by the uncorrected step that is farthest from α (in log scale)
    logs = torch.log10(unc)
    far = logs.gather(0, logs.abs().argmax(0, keepdim=True))[0].view(shape).numpy()
    lim = max(np.abs(far).max(), 0.5)
    im = ax1.imshow(far, cmap="RdBu_r", vmin=-lim, vmax=lim, origin="lower")
    for i in range(len(rho1s)):
        for j in range(len(rho2s)):
            ax1.text(
                j,
                i,
                f"max {_short(peak[i, j])}\nk=1: {_short(first[i, j])}",
                ha="center",
                va="center",
                fontsize=8,
                color="w" if abs(far[i, j]) > 0.6 * lim else "k",
            )
    ax1.set_xticks(range(len(rho2s)), [f"{v:g}" for v in rho2s])
    ax1.set_yticks(range(len(rho1s)), [f"{v:g}" for v in rho1s])
    ax1.set(
        xlabel="ρ₂",
        ylabel="ρ₁",
        title="without correction: step / α, constant g\n(red: too large, blue: too small)",
    )
    fig.colorbar(im, ax=ax1, label="log₁₀ (the step farthest from α, in α)")


def draw_first_steps(
    ax2: plt.Axes, unc: torch.Tensor, cor: torch.Tensor, pairs: list, K: int
) -> None:
    k = np.arange(1, K + 1)
    shown = [(0.9, 0.999), (0.0, 0.999), (0.9, 0.9)]
    colors = ["C0", "C3", "C2"]
    for (a, b), col in zip(shown, colors):
        if (a, b) not in pairs:
            continue
        c = pairs.index((a, b))
        ax2.loglog(k, unc[:, c], color=col, label=f"ρ₁={a:g}, ρ₂={b:g}: no correction")
        ax2.loglog(
            k,
            cor[:, c],
            color=col,
            ls=(0, (4, 4)),
            lw=2.5,
            alpha=0.6,
            label=f"ρ₁={a:g}, ρ₂={b:g}: corrected",
        )
    ax2.set(
        xlabel="step k",
        ylabel="|Δθ_k| / α   (constant g)",
        title="the first steps with and without the correction",
    )
    ax2.legend(fontsize=7.5)


def judge(numbers: dict) -> Judgement:
    rho1s, rho2s = numbers["rho1s"], numbers["rho2s"]
    pairs = [(a, b) for a in rho1s for b in rho2s]
    unc_peak = [float(v) for v in numbers["uncorrected_peak"]]
    unc_first = [float(v) for v in numbers["uncorrected_first"]]
    cor_peak = [float(v) for v in numbers["corrected_peak"]]
    prevented = [u >= EXPLODES and c <= CORRECTED_MAX for u, c in zip(unc_peak, cor_peak)]
    stalls = [u < STALLS for u in unc_first]
    n = len(pairs)
    default = pairs.index((0.9, 0.999)) if (0.9, 0.999) in pairs else 0
    evidence = (
        f"uncorrected steps reach ≥{EXPLODES:g}α (corrected ≤{CORRECTED_MAX:g}α) in "
        f"{sum(prevented)}/{n} (ρ₁, ρ₂) settings, up to {max(unc_peak):.3g}α; uncorrected first "
        f"step <{STALLS:g}α in {sum(stalls)}/{n}; at ρ₁=0.9, ρ₂=0.999: peak "
        f"{unc_peak[default]:.3g}α uncorrected vs {cor_peak[default]:.3g}α corrected"
    )
    say = {
        "headline": f"{sum(prevented)}/{n} settings explode uncorrected",
        "takeaway": (
            f"Without bias correction Adam's early steps reach ≥ {EXPLODES:g}α in "
            f"{sum(prevented)} of {n} (ρ₁, ρ₂) settings (up to {max(unc_peak):.3g}α), and the "
            f"correction keeps them ≤ {CORRECTED_MAX:g}α; where ρ₁ is close to ρ₂ it instead "
            f"lifts a first step below {STALLS:g}α ({sum(stalls)} settings)."
        ),
    }
    if all(prevented):
        return Judgement("holds", evidence, **say)
    if any(prevented):
        memory = [(1 - a) / (1 - b) for a, b in pairs]
        yes = min(m for m, ok in zip(memory, prevented) if ok)
        no = [f"{a:g}/{b:g}" for (a, b), ok in zip(pairs, prevented) if not ok]
        stall = [f"{a:g}/{b:g}" for (a, b), s in zip(pairs, stalls) if s]
        conditions = (
            "an explosion to prevent exists only where ρ₂ averages over many more steps than "
            f"ρ₁: (1−ρ₁)/(1−ρ₂) ≥ {yes:.3g} in this grid (the default 0.9/0.999 included); none "
            f"at ρ₁/ρ₂ = {', '.join(no)}. Where ρ₁ is close to ρ₂ the uncorrected start is too "
            f"small (first step < {STALLS:g}α at {', '.join(stall) or '—'}) and the correction "
            "prevents a stall"
        )
        return Judgement("partly", evidence, conditions, **say)
    return Judgement("fails", evidence, **say)


register(
    Experiment(
        id="C7",
        title="Adam's bias correction prevents exploding first steps?",
        claim=(
            "r is initialized with zero and to prevent the update step from exploding there is "
            "an additional normalization resulting in something like a warm start"
        ),
        criterion=(
            "for each (ρ₁, ρ₂) of a grid, feed Adam a constant gradient (coordinates 1e-3, 1, 1e3) "
            "with and without bias correction; the correction prevents an explosion in a setting "
            f"if some uncorrected step is ≥ {EXPLODES:g}α while every corrected step is ≤ "
            f"{CORRECTED_MAX:g}α. Holds if it does in every setting, partly if in some (the others "
            f"named: there the uncorrected first step is < {STALLS:g}α, a stall), fails if in none"
        ),
        measure=measure,
        judge=judge,
    )
)
