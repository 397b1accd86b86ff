"""C5: momentum is an accumulated weighted sum; for a constant g its speed tends to α‖g‖/(1−ρ)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from firstorder.experiments.base import Context, Experiment, Judgement, Measurement, register
from firstorder.optim import Momentum

FORMULA_TOL = 1e-12  # float64 rounding of a few hundred multiply-adds
LIMIT_TOL = 1e-3  # relative distance of the terminal speed from α‖g‖/(1−ρ)
ALPHA = 0.01


def velocities(rhos: list[float], grads: torch.Tensor) -> torch.Tensor:
    """s_k [K, len(rhos), d] of the real Momentum optimizer fed the gradients g_0, g_1, … [K, d],
    one param group per ρ (θ ← θ + s, so the update Δθ_k is s_k)."""
    thetas = [torch.zeros(grads.shape[1], dtype=torch.float64) for _ in rhos]
    opt = Momentum([{"params": [t], "rho": rho} for t, rho in zip(thetas, rhos)], lr=ALPHA)
    out = []
    for g in grads:
        before = torch.stack(thetas)
        for t in thetas:
            t.grad = g.clone()
        opt.step()
        out.append(torch.stack(thetas) - before)
    return torch.stack(out)


def notes_sum(rho: float, grads: torch.Tensor) -> torch.Tensor:
    """The notes' closed form s_k = −Σ_{i=0..k} ρⁱ α g_{k−i}, summed term by term."""
    K = grads.shape[0]
    return torch.stack(
        [-sum(rho**i * ALPHA * grads[k - i] for i in range(k + 1)) for k in range(K)]
    )


def measure(ctx: Context) -> Measurement:
    gen = torch.Generator().manual_seed(ctx.seed)
    rhos = ctx.pick([0.0, 0.5, 0.9, 0.99], [0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999])
    # 1. the weighted sum, on a random gradient sequence (no landscape: any g_k at all)
    K_rand = ctx.pick(60, 200)
    grads = torch.randn(K_rand, 5, generator=gen, dtype=torch.float64)
    grads *= 10 ** (torch.rand(K_rand, 1, generator=gen, dtype=torch.float64) * 4 - 2)
    s_rand = velocities(rhos, grads)
    sum_err = []
    for c, rho in enumerate(rhos):
        ref = notes_sum(rho, grads)
        sum_err.append(((s_rand[:, c] - ref).abs().max() / ref.abs().max()).item())
    # 2. the impulse response: one gradient e at k = 0, none after -> s_k = −α ρᵏ e
    impulse = torch.zeros(40, 1, dtype=torch.float64)
    impulse[0] = 1.0
    w = velocities(rhos, impulse)[:, :, 0] / -ALPHA  # [k, ρ]
    weights = {rho: w[:, c].tolist() for c, rho in enumerate(rhos)}
    # 3. a constant gradient g, fed until ρᵏ < 1e-5 ≪ LIMIT_TOL
    g = torch.tensor([3.0, -4.0], dtype=torch.float64)  # ‖g‖ = 5
    const = constant_gradient(rhos, g)
    figures = [ctx.figure(draw(rhos, const["speed"] / (ALPHA * g.norm()), weights), "speed")]
    reach90 = const["reach90"]
    return Measurement(
        numbers={
            "alpha": ALPHA,
            "rhos": rhos,
            "sum_rel_err": sum_err,
            "random_steps": K_rand,
            "terminal_speed_over_limit": const["terminal"],
            "cos_s_minus_g": const["cos_dir"],
            "constant_g_steps": const["steps"],
            "steps_to_90pct": reach90,
            "steps_to_90pct_predicted": const["reach90_pred"],
        },
        figures=figures,
        explanation=(
            "Left: for a constant gradient the speed ‖s_k‖ of the real momentum optimizer "
            "climbs to the dashed level α‖g‖/(1−ρ₁); it needs a few times 1/(1−ρ₁) steps to "
            f"get there ({reach90[-1]} steps to 90 % for ρ₁ = {rhos[-1]:g}). Right: a single "
            "gradient at k = 0 is still in s_k with weight ρ₁ᵏ, the accumulated weighted sum of "
            "the notes; the measured dots lie on the lines ρ₁ⁱ."
        ),
    )


def constant_gradient(rhos: list[float], g: torch.Tensor) -> dict:
    """Momentum fed a constant g until ρᵏ < 1e-5: the speed ‖s_k‖, its terminal value over the
    limit α‖g‖/(1−ρ), the direction of s against −g, and the steps to 90 % of the limit,
    measured and predicted by the sum."""
    steps = int(math.ceil(math.log(1e-5) / math.log(max(rhos))))
    s = velocities(rhos, g.expand(steps, 2))  # [K, C, d]
    speed = s.norm(dim=-1)  # [T, C]
    rho_t = torch.tensor(rhos, dtype=torch.float64)
    # steps until the speed is within 10 % of its limit: measured vs. the sum's prediction
    limit = ALPHA * g.norm() / (1 - rho_t)
    return {
        "steps": steps,
        "speed": speed,
        "terminal": (speed[-1] * (1 - rho_t) / (ALPHA * g.norm())).tolist(),
        "cos_dir": (-(s[-1] @ g) / (s[-1].norm(dim=-1) * g.norm())).tolist(),
        "reach90": [int((speed[:, c] < 0.9 * limit[c]).sum()) for c in range(len(rhos))],
        "reach90_pred": [
            0 if r == 0 else max(0, math.ceil(math.log(0.1) / math.log(r)) - 1) for r in rhos
        ],
    }


def draw(rhos: list[float], speed: torch.Tensor, weights: dict) -> plt.Figure:
    """Left: the speed in units of α‖g‖ against 1/(1−ρ₁). Right: the impulse response."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(rhos)))
    k = np.arange(1, speed.shape[0] + 1)
    for c, (rho, col) in enumerate(zip(rhos, colors)):
        ax1.loglog(k, speed[:, c], color=col, label=f"ρ₁ = {rho:g}")
        ax1.axhline(1 / (1 - rho), color=col, ls="--", lw=0.9)
        w = np.abs(np.array(weights[rho]))
        i = np.arange(len(w))
        ax2.semilogy(i, np.where(w > 0, w, np.nan), "o", color=col, ms=4, label=f"ρ₁ = {rho:g}")
        ax2.semilogy(i, np.where(rho**i > 0, rho**i, np.nan), "-", color=col, lw=0.8)
    ax1.set(xlabel="step k", ylabel="‖s_k‖ / (α‖g‖)", title="constant g: speed → 1/(1−ρ₁) (dashed)")
    ax1.legend(fontsize=8)
    ax2.set(
        xlabel="age i of the gradient g_(k−i)",
        ylabel="its weight in s_k:  |s_k| / α",
        title="one gradient at k = 0: its weight ρ₁ⁱ (lines)",
        ylim=(1e-12, 2),
    )
    for ax in fig.axes:
        ax.minorticks_off()  # minor log ticks cost more to draw than the data
    fig.subplots_adjust(wspace=0.25)
    return fig


def judge(numbers: dict) -> Judgement:
    rhos = numbers["rhos"]
    sum_err = max(float(e) for e in numbers["sum_rel_err"])
    off = [abs(float(t) - 1) for t in numbers["terminal_speed_over_limit"]]
    cos_ok = all(float(c) > 1 - 1e-9 for c in numbers["cos_s_minus_g"])
    limit_ok = [o <= LIMIT_TOL for o in off]
    evidence = (
        "derivation checked (a geometric series, exact up to rounding): "
        f"s_k matches −Σρⁱαg_(k−i) to {sum_err:.1e}; terminal ‖s‖(1−ρ)/(α‖g‖) = "
        + ", ".join(f"{float(t):.4f}" for t in numbers["terminal_speed_over_limit"])
        + f" for ρ = {', '.join(f'{r:g}' for r in rhos)}; 90 % of the speed after "
        + ", ".join(str(n) for n in numbers["steps_to_90pct"])
        + " steps"
    )
    say = {
        "headline": f"sum exact to {sum_err:.0e}",
        "takeaway": (
            f"Momentum's velocity is the weighted sum −Σρⁱαg_(k−i) (to {sum_err:.0e}); under a "
            f"constant gradient it settles at α‖g‖/(1−ρ), within {max(off):.0e}, after "
            f"{max(int(n) for n in numbers['steps_to_90pct'])} steps at ρ = {rhos[-1]:g}."
        ),
    }
    if sum_err <= FORMULA_TOL and all(limit_ok) and cos_ok:
        return Judgement("holds", evidence, **say)
    if sum_err <= FORMULA_TOL and any(limit_ok):
        where = ", ".join(f"{r:g}" for r, ok in zip(rhos, limit_ok) if ok)
        return Judgement("partly", evidence, f"the limit is reached for ρ = {where} only", **say)
    return Judgement("fails", evidence, **say)


register(
    Experiment(
        id="C5",
        title="Momentum is an accumulated weighted sum with speed α‖g‖/(1−ρ)",
        claim=(
            # the report wraps a claim in “ ”: the inner marks close and reopen the quote
            "the momentum acts as an accumulated weighted sum” s_k = −Σᵢ ρ₁ⁱ α g_{k−i}; for "
            "constant g, “lim s_k = −α g/(1−ρ₁)”, “the parameters move with a speed of "
            "α‖g‖/(1−ρ)"
        ),
        criterion=(
            "holds if, for every ρ of the grid, the velocity s_k of the Momentum optimizer fed a "
            f"random gradient sequence equals −Σᵢ ρⁱ α g_(k−i) to {FORMULA_TOL:g} relative, and "
            "for a constant gradient (the linear surface gᵀx) the terminal speed ‖s‖ is within "
            f"{LIMIT_TOL:g} (relative) of α‖g‖/(1−ρ) and s points along −g; partly if the sum "
            "holds but the limit only for some ρ; fails otherwise"
        ),
        measure=measure,
        judge=judge,
    )
)
