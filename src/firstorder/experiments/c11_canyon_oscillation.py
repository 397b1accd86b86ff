"""C11: "standard gradient descent tends to oscillate across the narrow direction (steep walls)
while making slow progress along the flat direction"."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from firstorder import curvature, landscapes, plots
from firstorder.experiments import _tuning as tu
from firstorder.experiments._obstacles import canyon_problem, ring
from firstorder.experiments.base import Context, Experiment, Judgement, Measurement, register
from firstorder.run import run

LAM_MAX = 4.0  # the canyons ½θᵀHθ have eigenvalues (4/κ, 4), like d2l's 0.1x₁² + 2x₂²
# oscillates: on ≥ half of the steps before the flat error has shrunk 10×, the step turns back
# (cos < 0 with the previous one). A sign flip of the steep error component turns the step back
# only while the across-canyon part of the step outweighs the along-canyon part, so this weights
# the oscillation by its amplitude: flips of a component already 100× below the flat one, which
# the path does not show, do not count.
OSC = 0.5
SLOW = 10.0  # slow along the flat direction: it needs ≥ 10× the steps of the steep one
MOST = 0.9  # "tends to": the pattern on ≥ 90 % of the swept α where sign flips are possible
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


def turn_back_rate(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Fraction of the first ``window[b]`` steps that turn back (cos < 0 with the previous
    step), per start: x [T+1, B, d], window [B] -> [B]."""
    d = x[1:] - x[:-1]
    back = (d[:-1] * d[1:]).sum(-1) < 0  # [T−1, B]
    k = torch.arange(1, len(d), dtype=torch.float64)[:, None]
    inside = k < window[None]
    return (back & inside).sum(0) / inside.sum(0).clamp_min(1)


def pattern(c: torch.Tensor, x: torch.Tensor) -> dict:
    """Oscillation across the steep direction and progress along the flat one, medians.

    c: eigen-components [T+1, B, d]; x: the iterates [T+1, B, d]."""
    steep, flat = c[..., -1], c[..., 0]
    k_s, k_f = steps_to_tenth(steep), steps_to_tenth(flat)
    return {
        "turn_back_rate": float(turn_back_rate(x, k_f).median()),
        # the same over the steps until the steep error has shrunk 10×: the start of the run
        "early_turn_back_rate": float(turn_back_rate(x, k_s).median()),
        "flip_rate": float(sign_flip_rate(steep).median()),
        "steps_to_tenth_steep": float(k_s.median()),
        "steps_to_tenth_flat": float(k_f.median()),
        "slow_ratio": float((k_f / k_s.clamp_min(1)).median()),
    }


def draw(mid, shown, table: dict, t_r: tu.Tuned, rosen, swept: list, name100: str, steps: int):
    """Top: paths on the κ = ILL canyon (tuned α and α = 0.5/λ_max) and on Rosenbrock.
    Bottom: the error components, the α sweep, and the turn-back rate at the tuned α."""
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.6))
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
    plots.contour(ax, rosen)
    ax.plot(*t_r.shown[:, 0].numpy().T, ".-", color="tab:blue", ms=3, lw=1)
    ax.plot(*t_r.shown[0, 0].numpy(), "o", color="tab:blue", mec="k")
    ax.set_title(f"Rosenbrock: GD at tuned α = {t_r.lr:.2g}, {steps} steps", fontsize=9)
    draw_components(axes[1, 0], mid, shown, lr100, name100)
    draw_sweep(axes[1, 1], swept)
    ax = axes[1, 2]
    names = list(table)
    ax.barh(np.arange(len(names)), [table[n]["zigzag"] for n in names], color="tab:blue")
    ax.set_yticks(np.arange(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set(
        xlabel="fraction of steps that turn back (cos < 0)",
        xlim=(0, 1),
        title="zig-zag of GD at its tuned α",
    )
    fig.subplots_adjust(hspace=0.35, wspace=0.55)
    return fig


def draw_components(ax: plt.Axes, mid, shown: torch.Tensor, lr100: float, name100: str) -> None:
    """The steep and flat error components of GD at the tuned α, from the first shown start."""
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


def draw_sweep(ax: plt.Axes, swept: list) -> None:
    """Over the α sweep: sign flips, steps that turn back, and how much slower the flat error is."""
    ax.plot(
        SWEEP,
        [s["flip_rate"] for s in swept],
        "o-",
        color="tab:red",
        label="sign flips of c_steep per step",
    )
    ax.plot(
        SWEEP,
        [s["turn_back_rate"] for s in swept],
        "^-",
        color="k",
        label="steps that turn back (until flat error ÷ 10)",
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


def measure(ctx: Context) -> Measurement:
    kappas = ctx.pick([100, 1000], [10, 100, 1000, 10_000])
    angles = ctx.pick([0.0, 30.0], [0.0, 30.0, 45.0])
    steps = ctx.pick(200, 1000)
    n_tune, n_fresh = ctx.pick((6, 16), (16, 64))
    lrs = [float(v) for v in np.logspace(-3, 1, 12 * 4 + 1)]  # GD alone: a fine grid is cheap
    problems = canyon_problems(ctx.seed, kappas, angles, n_tune, n_fresh)
    rosen = problems[-1].landscape
    tuned = tu.tune(problems, "gd", steps=steps, lrs=lrs)
    table = {p.name: tuned_row(p, t, steps) for p, t in zip(problems, tuned)}
    # the α sweep on the κ = 100 canyon: when does the oscillation set in?
    mid = landscapes.get("quadratic", eigenvalues=(LAM_MAX / ILL, LAM_MAX), angle=angles[-1])
    starts = ring(n_fresh, tu.generator(ctx.seed, "sweep"), 2.0, 4.0)
    sweep = run(
        mid, "gd", starts=starts, steps=steps, lr=[a / LAM_MAX for a in SWEEP], record="full"
    )
    c_sweep = components(mid, sweep.x)  # [T+1, C, B, d]
    swept = [pattern(c_sweep[:, i], sweep.x[:, i]) for i in range(len(SWEEP))]
    name100 = f"κ={ILL:g}, θ={angles[-1]:g}°"
    lr100 = table[name100]["lr"]
    shown = ring(2, tu.generator(ctx.seed, "show"), 3.0, 3.5)
    fig = draw(mid, shown, table, tuned[-1], rosen, swept, name100, steps)
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
            f"Top: GD on a κ = {ILL} canyon at its tuned α (αλ_max = {lr100 * LAM_MAX:.2f}) and at "
            "α = 0.5/λ_max, where it slides down the steep wall without crossing it; on "
            f"Rosenbrock's curved canyon {table['rosenbrock']['zigzag']:.0%} of its steps turn "
            "back at the tuned α. Bottom: the steep error component can flip sign only where "
            "αλ_max > 1 (|1 − αλ| < 1 with 1 − αλ < 0); the black line counts the flips the path "
            "shows, the steps that turn back before the flat error has shrunk 10×. Right: the "
            "fraction of steps that turn back at the tuned α on every surface."
        ),
    )


def canyon_problems(
    seed: int, kappas: list, angles: list, n_tune: int, n_fresh: int
) -> list[tu.Problem]:
    """The quadratic canyons (every angle × κ), then Rosenbrock's curved canyon last."""
    problems = [
        canyon_problem(seed, kappa, angle, n_tune, n_fresh, 1e-8, lam_max=LAM_MAX)
        for angle in angles
        for kappa in kappas
    ]
    rosen = landscapes.get("rosenbrock")
    problems.append(tu.Problem(
        "rosenbrock", rosen,
        tu.uniform_starts(rosen.window, n_tune, tu.generator(seed, "tune", "r")),
        tu.uniform_starts(rosen.window, n_fresh, tu.generator(seed, "fresh", "r")),
        1e-6, show=torch.tensor([[-1.2, 1.0]], dtype=torch.float64),
    ))  # fmt: skip
    return problems


def tuned_row(p: tu.Problem, t: tu.Tuned, steps: int) -> dict:
    """At the tuned α: rerun the fresh starts with x recorded (one config, cheap) and measure
    the zig-zag and, on a quadratic canyon, the oscillation pattern."""
    res = run(p.landscape, "gd", starts=p.fresh, steps=steps, lr=t.lr, record="full")
    row = {
        "lr": t.lr,
        "lr_times_lambda_max": t.lr * LAM_MAX,
        "success": t.success,
        "zigzag": float(zigzag_rate(res.x[:, 0]).median()),
    }
    if p.name != "rosenbrock":
        row.update(pattern(components(p.landscape, res.x[:, 0]), res.x[:, 0]))
        row["kappa"] = float(p.landscape.params["kappa"])
    return row


def has(p: dict) -> bool:
    """The claimed pattern: turns back on ≥ OSC of the steps and the flat direction ≥ SLOW×
    slower."""
    return float(p["turn_back_rate"]) >= OSC and float(p["slow_ratio"]) >= SLOW


def early(p: dict) -> bool:
    """Oscillates while the steep error dies out, then creeps."""
    return float(p["early_turn_back_rate"]) >= OSC and float(p["slow_ratio"]) >= SLOW


def judge(numbers: dict) -> Judgement:
    ill = {n: r for n, r in numbers["tuned"].items() if "kappa" in r and r["kappa"] >= ILL}
    at_tuned = [n for n, r in ill.items() if has(r)]
    # GD's steep error is multiplied by 1 − αλ_max each step: it can change sign only where
    # αλ_max > 1, so only those α of the sweep can show the oscillation the claim describes
    sweep = [(float(a), p) for a, p in zip(numbers["sweep_alpha_lambda_max"], numbers["sweep"])]
    possible = [(a, p) for a, p in sweep if a > 1]
    osc_at = [a for a, p in possible if has(p)]
    rosen = float(numbers["tuned"]["rosenbrock"]["zigzag"])
    evidence = judge_evidence(ill, sweep, possible, osc_at, rosen)
    say = {
        "headline": f"oscillates at {len(osc_at)}/{len(possible)} step sizes with αλ > 1",
        "takeaway": (
            f"GD's error across a κ = {ILL} canyon can flip sign only when αλ_max > 1; there its "
            f"path zig-zags while crawling along the canyon at {len(osc_at)} of {len(possible)} "
            f"step sizes, at its tuned α on {len(at_tuned)} of {len(ill)} canyons, and turns "
            f"back on {rosen:.0%} of its steps on Rosenbrock."
        ),
    }
    if len(at_tuned) == len(ill) and possible and len(osc_at) >= MOST * len(possible):
        return Judgement("holds", evidence, **say)
    early_at = [a for a, p in possible if early(p)] + [n for n, r in ill.items() if early(r)]
    if not at_tuned and not osc_at and not early_at:
        return Judgement("fails", evidence, **say)
    if not at_tuned and not osc_at:
        return Judgement("partly", evidence, only_early(possible, ill, rosen), **say)
    slow = [a for a, p in sweep if float(p["slow_ratio"]) >= SLOW]
    return Judgement(
        "partly",
        evidence,
        "GD's path oscillates across the canyon (≥ "
        f"{OSC:.0%} of the steps turn back) only at αλ_max ∈ {{"
        + ", ".join(f"{a:g}" for a in osc_at)
        + f"}} of the {len(possible)} α where sign flips are possible (αλ_max > 1); the flat "
        f"direction is ≥ {SLOW:g}× slower at αλ_max ∈ {{"
        + ", ".join(f"{a:g}" for a in slow)
        + "}; at the tuned α "
        + (
            "both show"
            if len(at_tuned) == len(ill)
            else "on " + (", ".join(at_tuned) or f"no canyon with κ ≥ {ILL}")
        )
        + f"; on Rosenbrock's curved canyon {rosen:.0%} of the steps turn back",
        **say,
    )


def judge_evidence(ill: dict, sweep: list, possible: list, osc_at: list, rosen: float) -> str:
    return (
        "tuned GD: "
        + "; ".join(
            f"{n}: αλ_max {float(r['lr_times_lambda_max']):.2f}, turns back on "
            f"{float(r['turn_back_rate']):.0%} of the steps until the flat error ÷ 10 (steep "
            f"flips sign on {float(r['flip_rate']):.0%}), flat needs "
            f"{float(r['slow_ratio']):.0f}× the steps"
            for n, r in ill.items()
        )
        + f"; α sweep (κ={ILL}, flips possible at {len(possible)} of {len(sweep)} α): both at "
        f"αλ_max ∈ {{{', '.join(f'{a:g}' for a in osc_at)}}}; Rosenbrock: {rosen:.0%} of the "
        "steps turn back at the tuned α"
    )


def only_early(possible: list, ill: dict, rosen: float) -> str:
    """The conditions where the path zig-zags only at first, while the steep error dies out."""
    first = [a for a, p in possible if early(p)]
    late = max((float(p["turn_back_rate"]) for a, p in possible if a in first), default=0.0)
    return (
        "GD's path zig-zags across the canyon only at first, while the steep error dies "
        f"out (≥ {OSC:.0%} of the steps turn back until it has shrunk 10×, at αλ_max ∈ {{"
        + ", ".join(f"{a:g}" for a in first)
        + "} and at the tuned α on "
        + (", ".join(n for n in ill if early(ill[n])) or "no canyon")
        + "); over the slow progress along the flat direction it mostly creeps without "
        f"turning back (at most {late:.0%} of the steps there); on Rosenbrock's curved "
        f"canyon {rosen:.0%} of the steps turn back"
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
            "fresh random starts: GD oscillates across the canyon if ≥ "
            f"{OSC:.0%} of its steps turn back (cos < 0 with the previous step, which needs the "
            "steep error to flip sign with an amplitude the path shows) before the flat error "
            f"has shrunk 10×; progress along the flat direction is slow if shrinking its error "
            f"10× takes ≥ {SLOW:g}× the steps the steep one takes. Holds if both show at the "
            f"tuned α on every canyon with κ ≥ {ILL} and at ≥ {MOST:.0%} of the swept α where a "
            "sign flip is possible (αλ_max > 1, of 0.25 … 1.99); partly if at some of them, or "
            "if the steps turn back only at first (on ≥ half of the steps until the steep error "
            "has shrunk 10×); fails otherwise"
        ),
        measure=measure,
        judge=judge,
    )
)
