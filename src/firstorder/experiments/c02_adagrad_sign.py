"""C2: AdaGrad "normalizes away the magnitude of the gradient", a step "similar to sign(∇R)"."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from firstorder import landscapes, plots
from firstorder.experiments.base import (
    Context,
    Experiment,
    Judgement,
    Measurement,
    register,
    updates,
)
from firstorder.observe import value_and_grad
from firstorder.optim import AdaGrad
from firstorder.run import run

EPS = 1e-7  # AdaGrad's default ε
SIGN_LIKE = 0.95  # cos(Δθ, −sign g) at least this: "similar to sign(∇R)"
INVARIANT = 1e-3  # trajectory on c·R within this (relative) of the one on R: magnitude removed
SCALES = [1e-2, 1.0, 1e2, 1e4, 1e7]  # typical |g| in units of ε
SURFACE_SCALES = [1e-9, 1e-6, 1e-3, 1.0, 1e3]  # c in c·R for the canyon (|g| ≈ 1 at c = 1)
LRS = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]
ALPHA = 0.1


def cos_to_sign(step: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """cos(Δθ, −sign g) over the last axis (1: every coordinate moves by the same amount)."""
    sign = torch.sign(g)
    return -(step * sign).sum(-1) / (step.norm(dim=-1) * sign.norm(dim=-1)).clamp_min(1e-300)


def measure(ctx: Context) -> Measurement:
    gen = torch.Generator().manual_seed(ctx.seed)
    K = ctx.pick(200, 1000)  # controlled sequences (cheap)
    T = ctx.pick(120, 1000)  # landscape runs
    d = 40
    cos, gd_cos, size = controlled(gen, K, d)
    traj_cos, traj_gd_cos = along_quadratics(T)
    copies, deviation = scaled_canyons(T)
    stable, final = stability(T)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    draw_cosines(axes[0], cos, traj_cos, traj_gd_cos)
    draw_copies(axes[1], copies)
    draw_stability(axes[2], final, T)
    for ax in fig.axes:
        ax.minorticks_off()  # minor log ticks cost more to draw than the data
    fig.subplots_adjust(wspace=0.25)
    figures = [ctx.figure(fig, "sign_like")]

    med = cos.median(0).values  # [kind, scale]
    fin = {n: [float(v) if math.isfinite(v) else "inf" for v in final[n].tolist()] for n in final}
    return Measurement(
        numbers={
            "scales_over_eps": SCALES,
            "steps": K,
            "landscape_steps": T,
            "dim": d,
            "cos_first_constant": cos[0, 0].tolist(),
            "cos_median_constant": med[0].tolist(),
            "cos_first_noisy": cos[0, 1].tolist(),
            "cos_median_noisy": med[1].tolist(),
            "gd_cos_median": gd_cos.median(0).values[0].tolist(),
            "step_size_first_constant": size[0, 0].tolist(),
            "step_size_last_constant": size[-1, 0].tolist(),
            "quadratic_cos_first": {n: v[0].tolist() for n, v in traj_cos.items()},
            "quadratic_cos_median": {n: v.median(0).values.tolist() for n, v in traj_cos.items()},
            "quadratic_gd_cos_median": {
                n: v.median(0).values.tolist() for n, v in traj_gd_cos.items()
            },
            "surface_scales": SURFACE_SCALES,
            "surface_deviation": deviation,
            "lrs": LRS,
            "stable_gd": stable["gd"],
            "stable_adagrad": stable["adagrad"],
            "final_over_start_gd": fin["gd"],
            "final_over_start_adagrad": fin["adagrad"],
        },
        figures=figures,
        explanation=(
            "Left: the cosine between AdaGrad's step and −α·sign(g) (1 means every coordinate "
            "moves by the same amount). It is 1 for a constant gradient well above ε, but not for "
            "gradients below ε, for noisy gradients, or along a real descent where some "
            "coordinates converge first (dotted: plain GD on the same path). Middle: rescaling "
            "the surface by c leaves the trajectory unchanged until c·|g| nears ε. Right: GD "
            "blows up above α = 2/λ_max = 0.5, AdaGrad makes progress at every α tried."
        ),
    )


def controlled(gen: torch.Generator, K: int, d: int) -> tuple[torch.Tensor, ...]:
    """AdaGrad fed controlled gradients: coordinates spread over 3 decades around a typical
    scale c·ε, constant (consistent) or noisy (each coordinate's noise as large as its mean).
    cos(Δθ, −sign g) [K, kind, scale], the same for GD's −αg, and |Δθ| in units of α·√d."""
    m = 10 ** (torch.rand(d, generator=gen, dtype=torch.float64) * 3 - 1.5)
    m *= torch.where(torch.rand(d, generator=gen) < 0.5, -1.0, 1.0).double()
    xi = torch.randn(K, len(SCALES), d, generator=gen, dtype=torch.float64)
    c = torch.tensor(SCALES, dtype=torch.float64).view(-1, 1) * EPS
    grads = torch.stack([(c * m).expand(K, -1, -1), c * m * (1 + xi)], 1)  # [K, kind, scale, d]
    steps = updates(AdaGrad, grads, lr=ALPHA, eps=EPS)
    cos = cos_to_sign(steps, grads)  # [K, kind, scale]
    gd_cos = cos_to_sign(-grads, grads)  # the GD step −αg, for comparison
    size = steps.norm(dim=-1) / (ALPHA * math.sqrt(d))  # 1 for a step α·sign(g)
    return cos, gd_cos, size


def along_quadratics(T: int) -> tuple[dict, dict]:
    """cos(Δθ, −sign g) along AdaGrad trajectories on a 10-D quadratic, κ = 1000, axis-aligned
    and rotated, and the same for GD's step −αg at the same points."""
    traj_cos, traj_gd_cos = {}, {}
    for name, kw in (("aligned", {}), ("rotated", {"seed": 1})):
        f = landscapes.get("quadratic", kappa=1e3, dim=10, **kw)
        r = run(f, "adagrad", steps=T, lr=ALPHA, eps=EPS)
        x = r.x[:, 0]  # [K+1, starts, d]
        _, g = value_and_grad(f, x[:-1])
        traj_cos[name] = cos_to_sign(x[1:] - x[:-1], g)  # [K, starts]
        traj_gd_cos[name] = cos_to_sign(-g, g)
    return traj_cos, traj_gd_cos


def scaled_canyons(T: int) -> tuple[torch.Tensor, list[float]]:
    """AdaGrad on the canyon scaled by c: 5 independent copies side by side in one 10-D run.
    The paths [T+1, starts, c, 2] and each c's worst deviation from the path at c = 1."""
    canyon = landscapes.get("canyon")
    n = len(SURFACE_SCALES)

    def scaled(x: torch.Tensor) -> torch.Tensor:
        return sum(s * canyon(x[..., 2 * j : 2 * j + 2]) for j, s in enumerate(SURFACE_SCALES))

    starts = torch.tensor(canyon.starts, dtype=torch.float64).repeat(1, n)
    copies = run(scaled, "adagrad", starts=starts, steps=T, lr=1.0, eps=EPS).x[:, 0]
    copies = copies.view(T + 1, -1, n, 2)  # [T+1, starts, c, 2]
    ref = copies[:, :, SURFACE_SCALES.index(1.0)]
    dev = (copies - ref.unsqueeze(2)).norm(dim=-1).amax(0) / ref[0].norm(dim=-1).unsqueeze(-1)
    return copies, dev.amax(0).tolist()  # [c]: worst start


def stability(T: int) -> tuple[dict, dict]:
    """GD and AdaGrad over α on the canyon (λ_max = 4: GD is stable only for α < 0.5): whether
    every start converged, and the worst R(θ_T)/R(θ₀) (inf: diverged)."""
    canyon = landscapes.get("canyon")
    f0 = canyon(torch.tensor(canyon.starts, dtype=torch.float64))
    stable, final = {}, {}
    for rule in ("gd", "adagrad"):
        hyper = {"eps": EPS} if rule == "adagrad" else {}
        r = run(canyon, rule, steps=T, lr=LRS, record="final", bound=1e6, **hyper)
        ok = (r.diverged_at < 0) & (r.final_f < f0)
        stable[rule] = ok.all(-1).tolist()
        final[rule] = torch.where(r.diverged_at < 0, r.final_f / f0, torch.inf).amax(-1)
    return stable, final


def draw_cosines(ax: plt.Axes, cos: torch.Tensor, traj_cos: dict, traj_gd_cos: dict) -> None:
    big, tiny = SCALES.index(1e4), SCALES.index(1e-2)
    lines = [
        (cos[:, 0, big], "C0", "-", "constant g, |g| ≈ 1e4 ε"),
        (cos[:, 1, big], "C1", "-", "noisy g, |g| ≈ 1e4 ε"),
        (cos[:, 0, tiny], "C3", "-", "constant g, |g| ≈ 0.01 ε"),
        (traj_cos["aligned"][:, 0], "C2", "-", "quadratic κ=1000 (aligned)"),
        (traj_cos["rotated"][:, 0], "C4", "-", "quadratic κ=1000 (rotated)"),
        (traj_gd_cos["aligned"][:, 0], "C2", ":", "GD step −αg on the same path"),
    ]
    for y, col, ls, label in lines:
        ax.semilogx(np.arange(1, len(y) + 1), y, color=col, ls=ls, label=label)
    ax.axhline(SIGN_LIKE, color="k", lw=0.6, ls="--")
    ax.set(
        xlabel="step k",
        ylabel="cos(Δθ, −sign g) at step k",
        ylim=(0, 1.02),
        title="is AdaGrad's step sign-like? (1 = yes)",
    )
    ax.legend(fontsize=7.5, loc="lower left")


def draw_copies(ax: plt.Axes, copies: torch.Tensor) -> None:
    plots.contour(ax, landscapes.get("canyon"))
    for j, (s, ls) in enumerate(zip(SURFACE_SCALES, ["-", "--", "-.", ":", (0, (1, 3))])):
        xy = copies[:, 0, j].numpy()
        ax.plot(xy[:, 0], xy[:, 1], ls=ls, lw=2.2 - 0.3 * j, label=f"c = {s:g}")
    ax.set(
        xlabel="θ₁",
        ylabel="θ₂",
        xlim=(-6, 6),
        ylim=(-3, 3),
        title=f"AdaGrad on c·R (canyon), α = 1, ε = {EPS:g}",
    )
    ax.legend(fontsize=8, loc="lower right")


def draw_stability(ax: plt.Axes, final: dict, T: int) -> None:
    for rule, mk, label in (("gd", "o-", "GD"), ("adagrad", "s--", "AdaGrad")):
        y = final[rule].numpy()
        ax.loglog(LRS, np.where(np.isfinite(y), np.maximum(y, 1e-30), np.nan), mk, label=label)
        blown = ~np.isfinite(y)
        if blown.any():
            ax.loglog(
                np.array(LRS)[blown],
                np.full(blown.sum(), 1e2),
                "x",
                color="C0",
                ms=9,
                mew=2,
                label=f"{label}: diverged",
            )
    ax.axhline(1, color="k", lw=0.6)
    ax.set_ylim(3e-31, 1e4)
    ax.set(
        xlabel="α",
        ylabel="R(θ_K) / R(θ₀)  (worst of 3 starts; floor 1e-30)",
        title=f"canyon after {T} steps: GD vs AdaGrad",
    )
    ax.legend(fontsize=8)


def _span(values: list[float]) -> str:
    lo, hi = f"{min(values):.2f}", f"{max(values):.2f}"
    return lo if lo == hi else f"{lo}–{hi}"


def judge(numbers: dict) -> Judgement:
    scales = numbers["scales_over_eps"]
    big = [i for i, s in enumerate(scales) if s >= 1e2]  # gradients well above ε
    favourable = min(
        min(float(numbers["cos_first_constant"][i]), float(numbers["cos_median_constant"][i]))
        for i in big
    )
    everywhere = {
        **{
            f"constant |g|≈{scales[i]:g}ε": numbers["cos_median_constant"][i]
            for i in range(len(scales))
        },
        **{f"noisy |g|≈{scales[i]:g}ε": numbers["cos_median_noisy"][i] for i in range(len(scales))},
        **{f"quadratic ({n})": min(v) for n, v in numbers["quadratic_cos_median"].items()},
    }
    below = {name: float(v) for name, v in everywhere.items() if float(v) < SIGN_LIKE}
    dev = dict(zip(numbers["surface_scales"], numbers["surface_deviation"]))
    invariant_big = all(float(v) <= INVARIANT for s, v in dev.items() if s >= 1e-3)
    invariant_all = all(float(v) <= INVARIANT for v in dev.values())
    more_stable = sum(numbers["stable_adagrad"]) > sum(numbers["stable_gd"])
    evidence = judge_evidence(numbers, favourable, everywhere, dev, scales[big[-1]])
    worst = min(below.values(), default=favourable)
    say = {
        "headline": f"cos {favourable:.3f} for |g| ≫ ε, median down to {worst:.2f}",
        "takeaway": (
            f"AdaGrad's step points along −sign g (cos ≥ {favourable:.3f}) for steady gradients "
            "well above ε"
            + (
                f"; with noisy gradients, |g| ≲ ε or on a quadratic the median cosine falls to "
                f"{worst:.2f}."
                if below
                else ", and in every other setting measured."
            )
        ),
    }
    if favourable >= SIGN_LIKE and not below and invariant_all and more_stable:
        return Judgement("holds", evidence, **say)
    if favourable >= SIGN_LIKE and invariant_big:
        return Judgement("partly", evidence, not_sign_like(below, more_stable), **say)
    return Judgement("fails", evidence, **say)


def judge_evidence(numbers: dict, favourable: float, everywhere: dict, dev: dict, big: float):
    """The evidence line: the cosines, the c·R deviation, the stable α of both rules and, where
    both are stable, which one got further."""
    scales = numbers["scales_over_eps"]
    n_gd, n_ada = sum(numbers["stable_gd"]), sum(numbers["stable_adagrad"])
    shown = [
        f"noisy |g|≈{big:g}ε",
        f"constant |g|≈{scales[0]:g}ε",
        *[k for k in everywhere if k.startswith("quadratic")],
    ]
    evidence = (
        f"cos(Δθ, −sign g) ≥ {favourable:.3f} for constant |g| ≫ ε; median "
        + ", ".join(f"{float(everywhere[k]):.2f} ({k})" for k in shown)
        + f"; c·R trajectory deviation {max(float(v) for s, v in dev.items() if s >= 1e-3):.1e} "
        f"for c ≥ 1e-3, {float(dev[min(dev)]):.2g} at c = {min(dev):g}; stable α: AdaGrad "
        f"{n_ada}/{len(numbers['lrs'])}, GD {n_gd}/{len(numbers['lrs'])}"
    )
    if "final_over_start_gd" in numbers:  # where both are stable, which one got further?
        both = [
            (float(g), float(a))
            for g, a, ok in zip(
                numbers["final_over_start_gd"],
                numbers["final_over_start_adagrad"],
                numbers["stable_gd"],
            )
            if ok
        ]
        evidence += f" (where GD is stable it ends lower at {sum(g < a for g, a in both)}/"
        evidence += f"{len(both)} α)"
    return evidence


def not_sign_like(below: dict, more_stable: bool) -> str:
    """The conditions of a ``partly``: the settings, grouped, where the step is not sign-like."""
    groups = {"noisy": [], "|g| ≲ ε": [], "quadratic": []}
    for name, v in below.items():
        key = (
            "quadratic"
            if name.startswith("quadratic")
            else ("noisy" if name.startswith("noisy") else "|g| ≲ ε")
        )
        groups[key].append(v)
    words = {
        "noisy": "noisy gradients",
        "|g| ≲ ε": "gradients of size ε or less",
        "quadratic": "along a descent on the quadratic, once coordinates converge "
        "at different rates",
    }
    conditions = (
        "sign-like (cos ≥ 0.95) only for gradients well above ε that keep their direction "
        "from step to step (and then as α·sign(g)/√k, a shrinking sign step); not for "
        + "; ".join(f"{words[key]} (median cos {_span(v)})" for key, v in groups.items() if v)
    )
    if not more_stable:
        conditions += "; and not more stable than GD over α"
    return conditions


register(
    Experiment(
        id="C2",
        title="AdaGrad's step is like sign(∇R)",
        claim=(
            "effectively normalizes away the magnitude of the gradient resulting in something "
            "similar to sign(∇R(θ)) to make the convergence more stable"
        ),
        criterion=(
            f"the step is 'similar to sign' where cos(Δθ_k, −sign g_k) ≥ {SIGN_LIKE:g}, measured "
            "at every step k on controlled gradient sequences (constant and noisy, typical |g| "
            "from 0.01ε to 1e7ε, 40 coordinates over 3 decades) and along AdaGrad runs on a "
            "10-D quadratic (κ = 1000, aligned and rotated); the magnitude is 'normalized away' "
            f"if the trajectory on c·R stays within {INVARIANT:g} (relative) of the one on R; "
            "'more stable' if AdaGrad makes progress without diverging at more α than GD on the "
            "canyon. Holds if all three hold everywhere; partly if the step is sign-like for "
            "constant gradients ≫ ε and the trajectory is scale-free for c ≥ 1e-3, but not "
            "everywhere; fails otherwise"
        ),
        measure=measure,
        judge=judge,
    )
)
