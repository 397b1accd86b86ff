"""R3: Cohen et al. (2021), "Gradient Descent on Neural Networks Typically Occurs at the Edge of
Stability" (ICLR 2021), reproduced on a small tanh network.

The notes (C10) say gradient descent decreases R only if ½ α gᵀHg < gᵀg, so α ∝ 1/λ_max: on a
quadratic, GD with step α is stable only while λ_max < 2/α. Cohen et al. found that on neural
networks the order is reversed: α is fixed, and λ_max (the sharpness) grows during training
("progressive sharpening") until it reaches 2/α, then hovers there while R(θ) keeps decreasing,
non-monotonically. Here: full-batch GD (the notes' E1, our ``GD``) on an MLP with tanh, square
loss on one-hot targets (as in the paper), digits, λ_max measured with Lanczos on the Hessian of
the whole training risk every few steps.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from firstorder import data as datasets
from firstorder.experiments.base import Context, Experiment, Judgement, Measurement, register
from firstorder.nn import MLP
from firstorder.optim import GD
from firstorder.train import train

REACH = 0.85  # λ_max must rise to at least this fraction of 2/α
BAND = (0.8, 1.25)  # the median λ_max/(2/α) over the last third must lie in this band
HIDDEN = [32, 32]


def square_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """R = (1/n) Σ ½‖f_θ(x) − e_y‖², the square loss on one-hot targets of Cohen et al."""
    target = torch.nn.functional.one_hot(y, out.shape[-1]).to(out.dtype)
    return 0.5 * (out - target).pow(2).sum(-1).mean()


def run(lr: float, d: datasets.Dataset, steps: int, every: int, log_every: int, seed: int):
    net = MLP([d.n_features, *HIDDEN, d.n_outputs], "tanh", seed=seed)
    h = train(
        net,
        GD(net.parameters(), lr=lr),
        d,
        loss=square_loss,
        steps=steps,
        seed=seed,
        log_every=log_every,
        sharpness_every=every,
    )
    sharp = [(r.step, r.sharpness) for r in h.records if r.sharpness is not None]
    loss = [(r.step, r.train_risk) for r in h.records]
    return sharp, loss, h.diverged_at


def summary(lr: float, sharp: list, loss: list, steps: int, diverged_at) -> dict:
    """The numbers judge() needs for one α, from the sharpness and loss records."""
    edge = 2.0 / lr
    k, lam = (np.array(c) for c in zip(*sharp, strict=True))
    at_edge = k[lam >= REACH * edge]
    reached = int(at_edge[0]) if len(at_edge) else None
    last_third = lam[k >= steps * 2 / 3]  # empty if the run diverged early
    loss_k, risk = (np.array(c) for c in zip(*loss, strict=True))
    # once λ_max is at the edge: how often R(θ) went up from one logged step to the next
    ups = int(np.sum(np.diff(risk[loss_k >= reached]) > 0)) if reached is not None else 0
    return {
        "lr": lr,
        "edge": edge,
        "lambda_start": float(lam[0]),
        "lambda_max": float(lam.max()),
        "step_reached": reached,
        "median_ratio_last_third": float(np.median(last_third) / edge)
        if len(last_third)
        else float("nan"),
        "loss_start": float(risk[0]),
        "loss_end": float(risk[-1]),
        "loss_increases_after_edge": ups,
        "diverged_at": diverged_at,
    }


def measure(ctx: Context) -> Measurement:
    lrs = ctx.pick([0.4, 0.5], [0.3, 0.4, 0.5])
    n_train = ctx.pick(300, 1000)
    steps = ctx.pick(400, 1500)
    every = ctx.pick(25, 30)
    log_every = ctx.pick(5, 10)
    d = datasets.load("digits", seed=ctx.seed, n_train=n_train, n_test=300)

    runs, results = {}, {}
    for lr in lrs:
        sharp, loss, diverged_at = run(lr, d, steps, every, log_every, ctx.seed)
        runs[lr] = (sharp, loss)
        results[f"{lr:g}"] = summary(lr, sharp, loss, steps, diverged_at)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for color, lr in zip(colors, lrs, strict=False):
        sharp, loss = runs[lr]
        ax1.plot(*zip(*sharp, strict=True), ".-", color=color, ms=3, label=f"α = {lr:g}")
        ax1.axhline(2 / lr, color=color, ls="--", lw=1)
        ax1.text(0, 2 / lr, f"2/α = {2 / lr:.2f}", color=color, va="bottom", ha="left")
        ax2.semilogy(*zip(*loss, strict=True), color=color, lw=1, label=f"α = {lr:g}")
    ax1.set(
        xlabel="step k",
        ylabel="sharpness λ_max(∇²R(θ))",
        title="λ_max rises to 2/α (dashed) and stays there",
    )
    ax1.legend(loc="lower right")
    ax2.set(
        xlabel="step k",
        ylabel="training risk R(θ) (square loss)",
        title="R(θ) keeps falling, not monotonically",
    )
    ax2.legend()
    fig.subplots_adjust(wspace=0.3)  # not tight_layout(): an extra draw; saving crops anyway
    figures = [ctx.figure(fig, "sharpness")]
    return Measurement(
        numbers={
            "dataset": "digits",
            "n_train": n_train,
            "widths": [d.n_features, *HIDDEN, d.n_outputs],
            "steps": steps,
            "sharpness_every": every,
            "runs": results,
        },
        figures=figures,
        explanation=(
            "Left: the top Hessian eigenvalue λ_max of the training risk under full-batch "
            "gradient descent with step α, one colour per α. It starts well below the "
            "stability limit 2/α of the quadratic model (dashed), grows during training, and "
            "then hovers at 2/α instead of crossing it. Right: meanwhile R(θ) keeps decreasing "
            "with spikes; the step size set the curvature, not the other way round (C10)."
        ),
    )


def judge(numbers: dict) -> Judgement:
    good, parts = [], []
    for key, r in numbers["runs"].items():
        ratio = float(r["median_ratio_last_third"])
        rose = float(r["lambda_start"]) < REACH * float(r["edge"]) <= float(r["lambda_max"])
        hovers = BAND[0] <= ratio <= BAND[1]  # False for nan
        learns = float(r["loss_end"]) < float(r["loss_start"]) and r["diverged_at"] is None
        if rose and hovers and learns:
            good.append(key)
        parts.append(
            f"α={key}: λ_max {float(r['lambda_start']):.1f} → median {ratio:.2f}·(2/α)"
            + (f" from k={r['step_reached']}" if r["step_reached"] is not None else "")
        )
    losses = "; ".join(
        f"{float(r['loss_start']):.2f} → {float(r['loss_end']):.3f} "
        f"({r['loss_increases_after_edge']} rises)"
        for r in numbers["runs"].values()
    )
    evidence = "; ".join(parts) + f" (2/α dashed); R(θ): {losses}"
    ratios = [float(r["median_ratio_last_third"]) for r in numbers["runs"].values()]
    say = {
        "headline": "λ_max at " + ", ".join(f"{v:.2f}" for v in ratios) + "·(2/α)",
        "takeaway": (
            "Full-batch GD raises the sharpness λ_max until it sits at "
            + ", ".join(f"{v:.2f}" for v in ratios)
            + f" × 2/α (α = {', '.join(numbers['runs'])}); the loss goes "
            + ", ".join(
                f"{float(r['loss_start']):.2f} → {float(r['loss_end']):.3f} with "
                f"{r['loss_increases_after_edge']} rises"
                for r in numbers["runs"].values()
            )
            + "."
        ),
    }
    if len(good) == len(numbers["runs"]):
        return Judgement("holds", evidence, **say)
    if good:
        return Judgement(
            "partly",
            evidence,
            f"λ_max settles at 2/α only for α ∈ {{{', '.join(good)}}} within the run",
            **say,
        )
    return Judgement("fails", evidence, **say)


register(
    Experiment(
        id="R3",
        kind="reproduction",
        title="Edge of stability: gradient descent drives λ_max to 2/α (Cohen et al. 2021)",
        claim=(
            "Cohen et al. (2021): full-batch gradient descent on neural network training "
            "objectives typically operates at the Edge of Stability: the maximum eigenvalue of "
            "the training loss Hessian hovers just above 2/(step size), and the train loss "
            "behaves non-monotonically over short timescales, yet consistently decreases over "
            "long timescales"
        ),
        criterion=(
            f"full-batch GD on a tanh MLP {HIDDEN} with square loss on digits, for each step "
            f"size α: holds if λ_max starts below {REACH}·(2/α) and rises to at least "
            f"{REACH}·(2/α), its median over the last third of the run lies in "
            f"[{BAND[0]}, {BAND[1]}]·(2/α), and R(θ) at the end is below its start without "
            "divergence; partly if this holds for some α only; fails if for none"
        ),
        measure=measure,
        judge=judge,
    )
)
