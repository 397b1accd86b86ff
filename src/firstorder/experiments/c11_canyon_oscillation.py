"""C11: "standard gradient descent tends to oscillate across the narrow direction (steep walls)
while making slow progress along the flat direction"."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from firstorder import curvature, landscapes, plots
from firstorder.experiments import _tuning as tu
from firstorder.experiments.base import Context, Experiment, Judgement, Measurement, register
from firstorder.experiments.c08_canyons import ring
from firstorder.run import run

LAM_MAX = 4.0  # the canyons ½θᵀHθ have eigenvalues (4/κ, 4), like d2l's 0.1x₁² + 2x₂²
OSC = 0.5  # oscillates: the steep error component flips sign on ≥ half of the steps
SLOW = 10.0  # slow along the flat direction: it needs ≥ 10× the steps of the steep one
MOST = 0.9  # "tends to": the pattern on ≥ 90 % of the stable α swept
ILL = 100
SWEEP = (0.25, 0.5, 0.75, 0.9, 1.1, 1.25, 1.5, 1.75, 1.9, 1.99)  # α·λ_max, all below 2


def components(land, x: torch.Tensor) -> torch.Tensor:
    """cᵢ(k) = qᵢᵀ(θ_k − θ*) along the eigenvectors of H (ascending λ): [T+1, ..., d]."""
    H = curvature.hessian(land, torch.zeros(land.dim, dtype=torch.float64))
    x_star = torch.tensor(land.x_star, dtype=torch.float64)
    return curvature.eigen_progress(H, x, x_star)


def sign_flip_rate(c: torch.Tensor) -> torch.Tensor:
    """Fraction of steps on which c changes sign, over the steps where |c| is above rounding.

    c: [T+1, B] -> [B]."""
    live = c[:-1].abs() > 1e-10 * c[0].abs()
    flips = (torch.sign(c[1:]) != torch.sign(c[:-1])) & live
    return flips.sum(0) / live.sum(0).clamp_min(1)


def zigzag_rate(x: torch.Tensor) -> torch.Tensor:
    """Fraction of consecutive steps that turn back (cos < 0), for any surface. x: [T+1, B, d]."""
    d = x[1:] - x[:-1]
    live = (d[:-1].norm(dim=-1) > 1e-12) & (d[1:].norm(dim=-1) > 1e-12)
    back = ((d[:-1] * d[1:]).sum(-1) < 0) & live
    return back.sum(0) / live.sum(0).clamp_min(1)


def steps_to_tenth(c: torch.Tensor) -> torch.Tensor:
    """First k with |c(k)| ≤ |c(0)|/10, per column of c [T+1, B]; T+1 if never (censored)."""
    hit = c.abs() <= 0.1 * c[0].abs()
    k = hit.double().argmax(0)
    return torch.where(hit.any(0), k, torch.tensor(float(len(c)), dtype=torch.float64))


def pattern(c: torch.Tensor) -> dict:
    """Oscillation across the steep direction and progress along the flat one, medians."""
    steep, flat = c[..., -1], c[..., 0]
    k_s, k_f = steps_to_tenth(steep), steps_to_tenth(flat)
    return {
        "flip_rate": float(sign_flip_rate(steep).median()),
        "steps_to_tenth_steep": float(k_s.median()),
        "steps_to_tenth_flat": float(k_f.median()),
        "slow_ratio": float((k_f / k_s.clamp_min(1)).median()),
    }


def measure(ctx: Context) -> Measurement:
    kappas = ctx.pick([100, 1000], [10, 100, 1000, 10_000])
    angles = ctx.pick([0.0, 30.0], [0.0, 30.0, 45.0])
    steps = ctx.pick(200, 1000)
    n_tune, n_fresh = ctx.pick((6, 16), (16, 64))
    lrs = [float(v) for v in np.logspace(-3, 1, 12 * 4 + 1)]  # GD alone: a fine grid is cheap
    problems = []
    for angle in angles:
        for kappa in kappas:
            name = f"κ={kappa:g}, θ={angle:g}°"
            land = landscapes.get("quadratic", eigenvalues=(LAM_MAX / kappa, LAM_MAX), angle=angle)
            problems.append(tu.Problem(
                name, land,
                ring(n_tune, tu.generator(ctx.seed, "tune", name), 2.0, 4.0),
                ring(n_fresh, tu.generator(ctx.seed, "fresh", name), 2.0, 4.0),
                1e-8,
            ))  # fmt: skip
    rosen = landscapes.get("rosenbrock")
    problems.append(tu.Problem(
        "rosenbrock", rosen,
        tu.uniform_starts(rosen.window, n_tune, tu.generator(ctx.seed, "tune", "r")),
        tu.uniform_starts(rosen.window, n_fresh, tu.generator(ctx.seed, "fresh", "r")),
        1e-6, show=torch.tensor([[-1.2, 1.0]], dtype=torch.float64),
    ))  # fmt: skip
    tuned = tu.tune(problems, "gd", steps=steps, lrs=lrs)

    # at the tuned α: rerun the fresh starts with x recorded (one config each, cheap)
    table = {}
    for p, t in zip(problems, tuned):
        res = run(p.landscape, "gd", starts=p.fresh, steps=steps, lr=t.lr, record="full")
        row = {
            "lr": t.lr,
            "lr_times_lambda_max": t.lr * LAM_MAX,
            "success": t.success,
            "zigzag": float(zigzag_rate(res.x[:, 0]).median()),
        }
        if p.name != "rosenbrock":
            row.update(pattern(components(p.landscape, res.x[:, 0])))
            row["kappa"] = float(p.landscape.params["kappa"])
        table[p.name] = row

    # the α sweep on the κ = 100 canyon: when does the oscillation set in?
    mid = landscapes.get("quadratic", eigenvalues=(LAM_MAX / ILL, LAM_MAX), angle=angles[-1])
    starts = ring(n_fresh, tu.generator(ctx.seed, "sweep"), 2.0, 4.0)
    sweep = run(
        mid, "gd", starts=starts, steps=steps, lr=[a / LAM_MAX for a in SWEEP], record="full"
    )
    c_sweep = components(mid, sweep.x)  # [T+1, C, B, d]
    swept = [pattern(c_sweep[:, i]) for i in range(len(SWEEP))]

    fig, axes = plt.subplots(2, 3, figsize=(15, 8.6))
    shown = ring(2, tu.generator(ctx.seed, "show"), 3.0, 3.5)
    name100 = f"κ={ILL:g}, θ={angles[-1]:g}°"
    lr100 = table[name100]["lr"]
    for ax, lr, title in (
        (axes[0, 0], lr100, f"GD at tuned α = {lr100:.3g} (αλ_max = {lr100 * LAM_MAX:.2f})"),
        (axes[0, 1], 0.5 / LAM_MAX, "GD at α = 0.5/λ_max (αλ_max = 0.5)"),
    ):
        xy = run(mid, "gd", starts=shown, steps=60, lr=lr).x[:, 0].numpy()
        plots.contour(ax, mid)
        for b in range(xy.shape[1]):
            ax.plot(xy[:, b, 0], xy[:, b, 1], ".-", color="tab:blue", ms=3, lw=1)
            ax.plot(*xy[0, b], "o", color="tab:blue", mec="k")
        ax.set_title(f"{name100}: {title}, 60 steps", fontsize=9)
    ax = axes[0, 2]
    t_r = tuned[-1]
    plots.contour(ax, rosen)
    ax.plot(*t_r.shown[:, 0].numpy().T, ".-", color="tab:blue", ms=3, lw=1)
    ax.plot(*t_r.shown[0, 0].numpy(), "o", color="tab:blue", mec="k")
    ax.set_title(f"Rosenbrock: GD at tuned α = {t_r.lr:.2g}, {steps} steps", fontsize=9)
    ax = axes[1, 0]
    res = run(mid, "gd", starts=shown[:1], steps=120, lr=lr100, record="full")
    c = components(mid, res.x[:, 0, 0]).numpy()
    ax.plot(c[:, -1], ".-", color="tab:red", ms=3, lw=0.8, label="c_steep(k), λ_max")
    ax.plot(c[:, 0], "-", color="tab:blue", lw=2, label="c_flat(k), λ_min")
    ax.axhline(0, color="k", lw=0.5)
    ax.set(
        xlabel="step k",
        ylabel="error component qᵢᵀ(θ_k − θ*)",
        title=f"{name100}, tuned α: steep flips sign, flat creeps",
    )
    ax.legend(fontsize=8)
    ax = axes[1, 1]
    ax.plot(
        SWEEP,
        [s["flip_rate"] for s in swept],
        "o-",
        color="tab:red",
        label="sign flips of c_steep per step",
    )
    ax.axvline(1.0, color="k", ls=":", lw=1)
    ax.set(
        xlabel="α·λ_max",
        ylabel="fraction of steps",
        ylim=(-0.05, 1.05),
        title=f"κ = {ILL}: oscillation sets in at αλ_max > 1",
    )
    ax2 = ax.twinx()
    ax2.plot(SWEEP, [s["slow_ratio"] for s in swept], "s--", color="tab:blue")
    tu.log_axis(ax2, "y")
    ax2.set_ylabel("steps to 10× less error: flat / steep", color="tab:blue", fontsize=9)
    ax.legend(fontsize=8, loc="center left")
    ax = axes[1, 2]
    names = [p.name for p in problems]
    ax.barh(np.arange(len(names)), [table[n]["zigzag"] for n in names], color="tab:blue")
    ax.set_yticks(np.arange(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set(
        xlabel="fraction of steps that turn back (cos < 0)",
        xlim=(0, 1),
        title="zig-zag of GD at its tuned α",
    )
    fig.subplots_adjust(hspace=0.35, wspace=0.55)
    figures = [ctx.figure(fig, "oscillation")]

    return Measurement(
        numbers={
            "budget": steps,
            "kappas": kappas,
            "angles": angles,
            "tuned": table,
            "sweep_alpha_lambda_max": list(SWEEP),
            "sweep": swept,
        },
        figures=figures,
        explanation=(
            "Top: GD on a κ = 100 canyon at its tuned α bounces from wall to wall, while at α = "
            "0.5/λ_max it first slides down the steep wall without crossing it; on Rosenbrock's "
            "curved canyon it zig-zags along the floor. Bottom: the steep error component flips "
            "sign at every step exactly when αλ_max > 1, the fastest α included, and at every "
            "stable α the flat component needs many times the steps of the steep one."
        ),
    )


def judge(numbers: dict) -> Judgement:
    def has(p: dict) -> bool:
        return float(p["flip_rate"]) >= OSC and float(p["slow_ratio"]) >= SLOW

    ill = {n: r for n, r in numbers["tuned"].items() if "kappa" in r and r["kappa"] >= ILL}
    at_tuned = [n for n, r in ill.items() if has(r)]
    sweep = list(zip(numbers["sweep_alpha_lambda_max"], numbers["sweep"]))
    osc_at = [float(a) for a, p in sweep if has(p)]
    evidence = (
        "tuned GD: "
        + "; ".join(
            f"{n}: αλ_max {float(r['lr_times_lambda_max']):.2f}, steep flips "
            f"{float(r['flip_rate']):.0%} of steps, flat needs {float(r['slow_ratio']):.0f}× "
            "the steps"
            for n, r in ill.items()
        )
        + f"; α sweep (κ={ILL}): both at αλ_max ∈ {{{', '.join(f'{a:g}' for a in osc_at)}}}"
        + f"; Rosenbrock zig-zag {float(numbers['tuned']['rosenbrock']['zigzag']):.0%}"
    )
    say = {
        "headline": f"oscillates at {len(osc_at)}/{len(sweep)} step sizes",
        "takeaway": (
            f"GD zig-zags across a κ = {ILL} canyon while crawling along it at "
            f"{len(osc_at)} of {len(sweep)} step sizes (αλ_max from {min(a for a, _ in sweep):g} "
            f"to {max(a for a, _ in sweep):g}), and at its tuned α on {len(at_tuned)} of "
            f"{len(ill)} canyons."
        ),
    }
    if len(at_tuned) == len(ill) and len(osc_at) >= MOST * len(sweep):
        return Judgement("holds", evidence, **say)
    if not at_tuned and not osc_at:
        return Judgement("fails", evidence, **say)
    flips = [float(a) for a, p in sweep if float(p["flip_rate"]) >= OSC]
    slow = [float(a) for a, p in sweep if float(p["slow_ratio"]) >= SLOW]
    return Judgement(
        "partly",
        evidence,
        "GD oscillates across the canyon only for αλ_max ≥ "
        + (f"{min(flips):g}" if flips else "—")
        + f" (of {', '.join(f'{a:g}' for a, _ in sweep)}); the flat direction is ≥ {SLOW:g}× "
        "slower only for αλ_max ∈ {"
        + ", ".join(f"{a:g}" for a in slow)
        + "}; at the tuned α "
        + (
            "both show"
            if len(at_tuned) == len(ill)
            else "on " + (", ".join(at_tuned) or "no canyon with κ ≥ 100")
        ),
        **say,
    )


register(
    Experiment(
        id="C11",
        title="GD in a canyon: oscillating across, creeping along",
        claim=(
            "standard gradient descent tends to oscillate across the narrow direction (steep "
            "walls) while making slow progress along the flat direction"
        ),
        criterion=(
            "on quadratic canyons with eigenvalues (4/κ, 4), axis-aligned and rotated, GD from "
            "fresh random starts: the error along the steep eigenvector oscillates if it flips "
            f"sign on ≥ {OSC:.0%} of the steps; progress along the flat one is slow if shrinking "
            f"its error 10× takes ≥ {SLOW:g}× the steps the steep one takes. Holds if both show "
            f"at the tuned α on every canyon with κ ≥ {ILL} and at ≥ {MOST:.0%} of the stable α "
            "swept (αλ_max from 0.25 to 1.99); fails if at no α; partly otherwise (naming the α)"
        ),
        measure=measure,
        judge=judge,
    )
)
