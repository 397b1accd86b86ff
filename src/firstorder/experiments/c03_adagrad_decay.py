"""C3: AdaGrad's effective learning rate decays, "faster" in dimensions with large gradients."""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import numpy as np
import torch

from firstorder import landscapes, rules
from firstorder.experiments.base import Context, Experiment, Judgement, Measurement, register
from firstorder.optim import AdaGrad
from firstorder.run import run

ALPHA = 0.1
EPS = 1e-7  # AdaGrad's default
SCALES = [1e-2, 1e-1, 1.0, 10.0, 100.0]  # per-dimension gradient scale (and curvature)
TIE = 0.05  # |log(D_i / D_j)| below this: the two dimensions decayed equally fast
AGREE = 0.8  # the share of dimension pairs that must agree with the claim


def effective_steps_of(grads: torch.Tensor) -> torch.Tensor:
    """α/(√r_k+ε) [K, ...] of the real AdaGrad optimizer fed the gradients [K, ...]."""
    theta = torch.zeros(grads.shape[1:], dtype=torch.float64)
    opt = AdaGrad([theta], lr=ALPHA, eps=EPS)
    out = torch.empty_like(grads)
    for k, g in enumerate(grads):
        theta.grad = g
        opt.step()
        out[k] = rules.adaptive_step(ALPHA, opt.state[theta]["r"], EPS)
    return out


def pair_scores(scale: list[float], first: list[float], last: list[float]) -> dict:
    """For every pair of dimensions with different gradient scale: does the one with the larger
    gradient have the smaller effective step at the end (level), and did its step decay by a
    larger factor D = η_K/η_1 (rate)?"""
    level = faster = slower = pairs = 0
    for i, j in itertools.combinations(range(len(scale)), 2):
        if scale[i] == scale[j]:
            continue
        big, small = (i, j) if scale[i] > scale[j] else (j, i)
        pairs += 1
        level += last[big] < last[small]
        d = np.log(last[big] / first[big]) - np.log(last[small] / first[small])
        faster += d < -TIE
        slower += d > TIE
    return {
        "pairs": pairs,
        "level": level / pairs,
        "faster": faster / pairs,
        "slower": slower / pairs,
    }


def measure(ctx: Context) -> Measurement:
    gen = torch.Generator().manual_seed(ctx.seed)  # drawn from in order: noise, then starts
    K = ctx.pick(500, 10000)
    T = ctx.pick(200, 3000)
    G = torch.tensor(SCALES, dtype=torch.float64)
    settings: dict[str, dict] = {}
    # 1. controlled: constant gradients G_i, and noisy ones G_i (1 + ξ)
    eta_c = effective_steps_of(G.expand(K, -1))
    settings["constant g"] = record(eta_c, G)
    # 64 noisy copies; within a copy every dimension sees the same noise pattern ξ_k, scaled by
    # G_i, so that the dimensions differ in gradient scale only; the median η over copies
    noisy = G * (1 + torch.randn(K, 64, 1, generator=gen, dtype=torch.float64))
    eta_n = effective_steps_of(noisy).median(1).values
    settings["noisy g"] = record(eta_n, noisy.pow(2).mean((0, 1)).sqrt())
    # 2. landscapes: a diagonal quadratic with curvatures = SCALES (steep and flat dimensions)
    eta_q = on_landscapes(gen, T, settings)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    draw_eta(axes[0], eta_c, "constant gradient gᵢ", "|gᵢ|")
    draw_eta(axes[1], eta_q[:, 0], "quadratic, curvature λᵢ, θ₀ = 1", "λᵢ")
    axes[0].loglog([20, 400], [10, 10 / 20**0.5], "k--", lw=0.8)
    axes[0].text(60, 8, "∝ 1/√k", fontsize=10)
    draw_decay(axes[2], settings)
    for ax in fig.axes:
        ax.minorticks_off()  # minor log ticks cost more to draw than the data
    fig.subplots_adjust(wspace=0.25)
    figures = [ctx.figure(fig, "decay")]
    return Measurement(
        numbers={
            "alpha": ALPHA,
            "eps": EPS,
            "controlled_steps": K,
            "landscape_steps": T,
            "settings": settings,
        },
        figures=figures,
        explanation=(
            "Left: with constant gradients every dimension's effective step falls like 1/√k; the "
            "steep dimensions sit lower (step ∝ 1/|g|), but all lines are parallel: none decays "
            "faster. Middle: on a quadratic the curves flatten once the gradients vanish (r stops "
            "growing), and from θ₀ = 1 they are again parallel, since AdaGrad is blind to a "
            "per-coordinate rescaling. Right: the decay factor against the gradient scale; the "
            "claim needs lines that fall to the right."
        ),
    )


def record(eta: torch.Tensor, scale: torch.Tensor) -> dict:
    """One run's numbers: eta [steps, d] the effective steps; scale [d] the RMS gradient of
    each dimension. The first and last η, the late log-log slope and the pair scores."""
    first, last = eta[0].tolist(), eta[-1].tolist()
    half = eta.shape[0] // 2
    slope = (torch.log(eta[-1] / eta[half]) / np.log(eta.shape[0] / (half + 1))).tolist()
    return {
        "scale": scale.tolist(),
        "eta_first": first,
        "eta_last": last,
        "late_slope": slope,
        **pair_scores(scale.tolist(), first, last),
    }


def on_landscapes(gen: torch.Generator, T: int, settings: dict) -> torch.Tensor:
    """AdaGrad on a diagonal quadratic with curvatures SCALES (from 1 and three random starts)
    and on Rosenbrock: each run's numbers into ``settings``; the quadratic's η [T, starts, d]."""
    quad = landscapes.get("quadratic", eigenvalues=SCALES)
    starts = torch.cat(
        [torch.ones(1, len(SCALES)), torch.rand(3, len(SCALES), generator=gen) * 6 - 3]
    ).double()
    r = run(quad, "adagrad", starts=starts, steps=T, lr=ALPHA, eps=EPS)
    eta_q = r.effective_step[:, 0]  # [T, starts, d]
    for b in range(starts.shape[0]):
        rms = (ALPHA / eta_q[-1, b] - EPS).clamp_min(0) / T**0.5  # √(r_T / T)
        name = "quadratic θ₀ = 1" if b == 0 else f"quadratic θ₀ random {b}"
        settings[name] = record(eta_q[:, b], rms)
    rosen = landscapes.get("rosenbrock")
    rr = run(rosen, "adagrad", starts=[[-1.2, 1.0]], steps=T, lr=ALPHA, eps=EPS)
    eta_r = rr.effective_step[:, 0, 0]
    settings["rosenbrock"] = record(eta_r, (ALPHA / eta_r[-1] - EPS).clamp_min(0) / T**0.5)
    return eta_q


def draw_eta(ax: plt.Axes, eta: torch.Tensor, title: str, sym: str) -> None:
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(SCALES)))
    for i, col in enumerate(colors):
        ax.loglog(
            np.arange(1, eta.shape[0] + 1), eta[:, i], color=col, label=f"{sym} = {SCALES[i]:g}"
        )
    ax.set(xlabel="step k", ylabel="effective step α/(√r + ε)", title=title)
    ax.legend(fontsize=8, loc="lower left")


def draw_decay(ax: plt.Axes, settings: dict) -> None:
    markers = itertools.cycle("osD^v<>")
    for name, s in settings.items():
        order = np.argsort(s["scale"])
        D = (np.array(s["eta_last"]) / np.array(s["eta_first"]))[order]
        ax.loglog(np.array(s["scale"])[order], D, next(markers) + "-", ms=5, lw=0.8, label=name)
    ax.set(
        xlabel="RMS gradient of the dimension",
        ylabel="decay η_K / η₁ of the effective step",
        title="how much each dimension's step decayed\n(claim: lower to the right)",
    )
    ax.legend(fontsize=7)


def judge(numbers: dict) -> Judgement:
    settings = numbers["settings"]
    decays = all(
        float(b) < float(a)
        for s in settings.values()
        for a, b in zip(s["eta_first"], s["eta_last"])
    )
    level = min(float(s["level"]) for s in settings.values())
    faster = {n: float(s["faster"]) for n, s in settings.items()}
    slower = {n: float(s["slower"]) for n, s in settings.items()}
    const = settings.get("constant g", {})
    evidence = (
        f"effective step decays in every dimension of {len(settings)} settings: {decays}; larger "
        f"gradient → smaller step in ≥{level:.0%} of dimension pairs; larger gradient → faster "
        "decay in " + ", ".join(f"{v:.0%} ({n})" for n, v in faster.items())
    )
    if const:
        evidence += "; constant g: late slope of log η vs log k " + ", ".join(
            f"{float(v):.2f}" for v in const["late_slope"]
        )
    say = {
        "headline": f"steep decays faster in {min(faster.values()):.0%}–{max(faster.values()):.0%}"
        " of pairs",
        "takeaway": (
            "AdaGrad's effective step α/(√r+ε) "
            + ("decays in every dimension" if decays else "does not decay everywhere")
            + f" and is smaller where gradients are larger ({level:.0%} of pairs), but the "
            f"steep dimension decays faster in only {min(faster.values()):.0%}–"
            f"{max(faster.values()):.0%} of pairs."
        ),
    }
    if decays and level >= AGREE and min(faster.values()) >= AGREE:
        return Judgement("holds", evidence, **say)
    if decays and level >= AGREE:
        same = [n for n in settings if faster[n] == 0 and slower[n] == 0]
        other = [n for n in settings if n not in same]
        conditions = (
            "the effective learning rate does decay, and dimensions with large gradients have "
            "the smaller one (∝ 1/RMS g) from the first step on; it does not decay faster "
            "there. The decay factor η_K/η_1 is the same in every dimension for "
            + (", ".join(same) or "no setting")
        )
        if other:
            conditions += (
                f"; elsewhere ({', '.join(other)}) the steep dimension of a pair decays faster "
                f"in {min(faster[n] for n in other):.0%}–{max(faster[n] for n in other):.0%} "
                f"of pairs and slower in up to {max(slower[n] for n in other):.0%}: that depends "
                "on the start point, not on the slope"
            )
        return Judgement("partly", evidence, conditions, **say)
    return Judgement("fails", evidence, **say)


register(
    Experiment(
        id="C3",
        title="AdaGrad's learning rate decays, faster in steep dimensions?",
        claim=(
            "Over time r grows, which forces the effective learning rate to decay. Dimensions "
            "with large gradients (steep slopes) decay faster."
        ),
        criterion=(
            "record the effective step η_i = α/(√r_i+ε) of every dimension i of the real AdaGrad "
            "for dimensions with gradient scales 0.01…100 (constant and noisy gradient "
            "sequences; a diagonal quadratic with curvatures 0.01…100 from θ₀ = 1 and from "
            "3 random starts; Rosenbrock). 'Decays' if η_K < η_1 in every dimension; for every "
            "pair of dimensions, 'larger gradient → smaller η' if η_K is lower for the one with "
            "the larger RMS gradient, and 'decays faster' if its factor η_K/η_1 is smaller by "
            f"more than {TIE:g} in log. Holds if it decays and ≥ {AGREE:.0%} of pairs decay "
            "faster in every setting; partly if it decays and the large-gradient dimension has "
            f"the smaller η in ≥ {AGREE:.0%} of pairs everywhere but decays faster in fewer; "
            "fails otherwise"
        ),
        measure=measure,
        judge=judge,
    )
)
