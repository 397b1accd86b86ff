"""C1: "the first step of Adam is equivalent to AdaGrad"."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from firstorder.experiments.base import (
    Context,
    Experiment,
    Judgement,
    Measurement,
    register,
    updates,
)
from firstorder.optim import AdaGrad, Adam

TOLERANCE = 1e-12  # float64 rounding of a few operations


def measure(ctx: Context) -> Measurement:
    gen = torch.Generator().manual_seed(ctx.seed)
    n = ctx.pick(500, 20_000)
    # gradients over 14 orders of magnitude, both signs; theta's value does not matter
    g1 = torch.randn(n, generator=gen, dtype=torch.float64) * 10 ** (
        torch.rand(n, generator=gen, dtype=torch.float64) * 14 - 10
    )
    later = [torch.randn(n, generator=gen, dtype=torch.float64) for _ in range(19)]
    settings = [
        (r1, r2, lr) for r1 in (0.0, 0.5, 0.9, 0.99) for r2 in (0.9, 0.999) for lr in (1e-3, 0.1)
    ]
    worst_first, diff_by_step = 0.0, []
    for rho1, rho2, lr in settings:
        grads = torch.stack([g1, *later])
        adam = updates(Adam, grads, lr=lr, rho1=rho1, rho2=rho2, eps=1e-8)
        ada = updates(AdaGrad, grads, lr=lr, eps=1e-8)
        rel = [((a - b).abs().max() / b.abs().max()).item() for a, b in zip(adam, ada)]
        worst_first = max(worst_first, rel[0])
        if (rho1, rho2, lr) == (0.9, 0.999, 1e-3):
            diff_by_step = rel
            first_adam, first_ada = adam[0], ada[0]
    formula = -1e-3 * g1 / (g1.abs() + 1e-8)
    worst_formula = ((first_adam - formula).abs().max() / formula.abs().max()).item()

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    idx = torch.argsort(g1.abs())[:: max(1, n // 400)]
    ax1.loglog(g1.abs()[idx], first_ada.abs()[idx], "o", ms=6, mfc="none", label="AdaGrad, k = 1")
    ax1.loglog(g1.abs()[idx], first_adam.abs()[idx], ".", ms=3, label="Adam, k = 1")
    ax1.axvline(1e-8, color="gray", ls=":", label="|g| = ε")
    ax1.set(xlabel="|g|", ylabel="|Δθ| at the first step", title="first step: α|g|/(|g|+ε)")
    ax1.legend()
    ax2.semilogy(range(1, len(diff_by_step) + 1), np.maximum(diff_by_step, 1e-17), "o-")
    ax2.set(
        xlabel="step k",
        ylabel="max |Δθ_Adam − Δθ_AdaGrad| / max |Δθ_AdaGrad|",
        title="equal at k = 1 only (ρ₁=0.9, ρ₂=0.999)",
    )
    figures = [ctx.figure(fig, "first_step")]
    return Measurement(
        numbers={
            "settings": len(settings),
            "gradients": n,
            "max_rel_diff_first_step": worst_first,
            "max_rel_diff_to_formula": worst_formula,
            "rel_diff_by_step": diff_by_step,
        },
        figures=figures,
        explanation=(
            "Left: the size of the first step of Adam and of AdaGrad for gradients from 1e-10 to "
            "1e4; the two coincide and follow α|g|/(|g|+ε), a step of nearly α whatever |g| is, "
            "until |g| falls below ε. Right: from the second step on the two rules part, since "
            "Adam forgets old gradients and AdaGrad sums them."
        ),
    )


def judge(numbers: dict) -> Judgement:
    first = float(numbers["max_rel_diff_first_step"])
    formula = float(numbers["max_rel_diff_to_formula"])
    worst = max(first, formula)
    headline = f"equal to {worst:.0e}"
    if first <= TOLERANCE and formula <= TOLERANCE:
        return Judgement(
            "holds",
            f"derivation checked (an identity, exact up to rounding): first steps agree to "
            f"{first:.1e} (relative) over {numbers['settings']} settings of ρ₁, ρ₂, α; both "
            "equal α g/(|g|+ε)",
            takeaway=(
                "At k = 1 Adam's bias correction makes ŝ = g and r̂ = g⊙g, so its first step is "
                f"AdaGrad's, α g/(|g|+ε) (measured equal to {worst:.0e} relative)."
            ),
            headline=headline,
        )
    return Judgement(
        "fails",
        f"first steps differ by {first:.2e} relative",
        takeaway=f"Adam's first step differs from AdaGrad's by {first:.1e} relative.",
        headline=f"differ by {worst:.0e}",
    )


register(
    Experiment(
        id="C1",
        title="Adam's first step is AdaGrad's",
        claim="the first step of Adam is equivalent to AdaGrad",
        criterion=(
            "holds if, for every ρ₁ ∈ {0, 0.5, 0.9, 0.99}, ρ₂ ∈ {0.9, 0.999}, α ∈ {1e-3, 0.1} "
            "and gradients spanning 14 orders of magnitude, the first update of Adam equals the "
            f"first update of AdaGrad and α g/(|g|+ε) to {TOLERANCE:g} relative; fails otherwise"
        ),
        measure=measure,
        judge=judge,
    )
)
