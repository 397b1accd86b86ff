"""E9: R(θ) ≈ R(θₜ) + gᵀ(θ − θₜ) + ½(θ − θₜ)ᵀH(θ − θₜ): how far from θₜ does it hold?

The model's error grows like ‖θ − θₜ‖³ (the next Taylor term), so the quadratic model is good
within some radius and wrong beyond it. The notes use it to reason about one step (C10, C12);
whether it predicts that step depends on how the radius compares with a step's length. Here:
the distance along a direction d at which the model first misses R by more than 1 %, against
the length of a GD step at α = 1/λ_max, ‖g‖/λ_max (a stable, curvature-scaled step).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from firstorder import curvature, landscapes, netcurvature
from firstorder import data as datasets
from firstorder.experiments import _tuning as tu
from firstorder.experiments.base import (
    Context,
    Experiment,
    Judgement,
    Measurement,
    parts_verdict,
    register,
)
from firstorder.nn import MLP
from firstorder.optim import Adam
from firstorder.train import train

WITHIN = 0.01  # the model predicts f within 1 %: |q − R| ≤ 0.01 |R|
T_GRID = np.logspace(-4, 1, 5 * 16 + 1)  # distances along a unit direction, 16 a decade


def radius(R, theta: torch.Tensor, directions: dict) -> dict:
    """Per unit direction d: the relative error |q − R|/|R| at θ + t d over T_GRID, and the
    largest t before which it stays within WITHIN (the grid's first t if it never does)."""
    q = curvature.quadratic_model(R, theta)
    t = torch.tensor(T_GRID, dtype=torch.float64)
    out = {}
    for name, d in directions.items():
        points = theta + t[:, None] * d
        true = torch.stack([R(p) for p in points]).detach()
        err = ((q(points) - true).abs() / true.abs()).detach()
        bad = err > WITHIN
        first_bad = int(bad.double().argmax()) if bool(bad.any()) else len(t)
        out[name] = {
            "radius": float(t[max(first_bad - 1, 0)]),
            "error": err.tolist(),
        }
    lam = curvature.eig(q.H)[0]
    out["gd_step"] = float(q.g.norm() / lam[-1].abs())  # ‖α g‖ at α = 1/|λ_max|
    return out


def directions(R, theta: torch.Tensor, gen: torch.Generator) -> dict:
    """Unit directions: down the gradient, along H's top eigenvector, and a random one."""
    q = curvature.quadratic_model(R, theta)
    rand = torch.randn(theta.shape, generator=gen, dtype=torch.float64)
    top = curvature.eig(q.H)[1][:, -1]
    return {
        "−g": -q.g / q.g.norm(),
        "top eigenvector": top / top.norm(),
        "random": rand / rand.norm(),
    }


def measure(ctx: Context) -> Measurement:
    gen = tu.generator(ctx.seed, "E9")
    cases = {}
    rosen = landscapes.get("rosenbrock")
    x0 = torch.tensor([-1.2, 1.0], dtype=torch.float64)
    cases["Rosenbrock at (−1.2, 1)"] = radius(rosen, x0, directions(rosen, x0, gen))
    d = datasets.load("spirals", seed=ctx.seed).to(torch.float64)
    net = MLP([2, 16, 2], "tanh", seed=ctx.seed).double()
    loss = torch.nn.functional.cross_entropy
    for stage, epochs in (("network at init", 0), ("network after training", ctx.pick(50, 200))):
        if epochs:
            train(net, Adam(net.parameters(), lr=0.02), d, epochs=epochs, batch_size=None,
                  seed=ctx.seed, log_every=10**9)  # fmt: skip
        R, theta = netcurvature.risk_function(net, loss, d.x_train, d.y_train)
        cases[stage] = radius(R, theta, directions(R, theta, gen))

    fig, axes = plt.subplots(1, len(cases), figsize=(5 * len(cases), 4.2), sharey=True)
    for ax, (name, row) in zip(axes, cases.items()):
        for dname, style in zip(("−g", "top eigenvector", "random"), ("-", "--", ":")):
            err = np.maximum(np.array(row[dname]["error"]), 1e-17)
            ax.plot(T_GRID, err, style, lw=1.6, label=f"along {dname}")
        ax.axhline(WITHIN, color="k", lw=0.8, label="1 %")
        ax.axvline(row["gd_step"], color="tab:red", lw=1, ls="-.", label="GD step ‖g‖/λ_max")
        tu.log_axis(ax, "xy")
        ax.set(xlabel="distance t = ‖θ − θ₀‖", ylim=(1e-17, 10))
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("|q(θ) − R(θ)| / |R(θ)|")
    fig.subplots_adjust(wspace=0.08)
    return Measurement(
        numbers={
            "within": WITHIN,
            "cases": {
                n: {k: (v if k == "gd_step" else v["radius"]) for k, v in row.items()}
                for n, row in cases.items()
            },
        },
        figures=[ctx.figure(fig, "quadratic_model")],
        explanation=(
            "The relative error of the quadratic model E9 built at θ₀, along three unit "
            "directions, against the distance from θ₀ (log axes): it grows like t³ until it "
            "passes 1 % (black line). The dash-dotted line is the length of one GD step at "
            "α = 1/λ_max: where the error is still small there, the model predicts what that "
            "step does."
        ),
    )


def judge(numbers: dict) -> Judgement:
    covered, parts = [], []
    for name, row in numbers["cases"].items():
        step = float(row["gd_step"])
        r = {k: float(v) for k, v in row.items() if k != "gd_step"}
        worst = min(r, key=r.get)
        if r[worst] >= step:
            covered.append(name)
        parts.append(
            f"{name}: within {float(numbers['within']):.0%} up to "
            + ", ".join(f"{v:.2g} ({k})" for k, v in r.items())
            + f"; a GD step is {step:.2g}"
        )
    evidence = "distance from θ₀ at which the quadratic model stays within 1 % of R — " + (
        "; ".join(parts)
    )
    n = len(numbers["cases"])
    say = {
        "headline": f"covers a GD step in {len(covered)}/{n} cases",
        "takeaway": (
            "The quadratic model predicts R within 1 % out to "
            + "; ".join(
                f"{min(float(v) for k, v in row.items() if k != 'gd_step'):.2g} ({name})"
                for name, row in numbers["cases"].items()
            )
            + f" along the worst direction, which covers one GD step in {len(covered)} of {n} "
            "cases."
        ),
    }
    return parts_verdict(
        {name: name in covered for name in numbers["cases"]},
        evidence,
        held_word="the model predicts a GD step (α = 1/λ_max) within 1 % only for",
        missed_word="not for",
        **say,
    )


register(
    Experiment(
        id="E9",
        title="How far the quadratic model of the risk holds",
        claim=(
            "using the quadratic loss model we have the following approximation for a point θ "
            "while the approximation is centered around the current parameter location θ_t: "
            "R(θ) ≈ R(θ_t) + gᵀ(θ − θ_t) + ½ (θ − θ_t)ᵀ H (θ − θ_t)"
        ),
        criterion=(
            "build the model at θ₀ (Rosenbrock at (−1.2, 1); a 2-16-2 tanh network on the "
            "spirals at init and after training with Adam) and move along −g, H's top "
            f"eigenvector and a random unit direction (distances 1e-4 … 10, 16 a decade): the "
            f"radius is the largest distance before |q − R| > {WITHIN:.0%}·|R|. Holds if along "
            "every direction of every case the radius reaches the length of a GD step at "
            "α = 1/λ_max, ‖g‖/λ_max; fails if in no case; partly otherwise"
        ),
        measure=measure,
        judge=judge,
    )
)
