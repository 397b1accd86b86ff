"""C13: "the adam optimizer acts as a Diagonal Quasi-Newton method. It effectively approximates
the scaling of the inverted hessian using the accumulated squared gradients", on quadratics
(axis-aligned and rotated) and on a trained network."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from firstorder import curvature, data, landscapes, netcurvature
from firstorder.experiments import _tuning as tu
from firstorder.experiments.base import Context, Experiment, Judgement, Measurement, register
from firstorder.nn import MLP
from firstorder.optim import Adam
from firstorder.run import run, value_and_grad
from firstorder.train import train

DIM, KAPPA = 20, 1e3  # eigenvalues spaced geometrically from 1e-3 to 1
RADIUS = 3.0
CORR = 0.9  # approximates: log P and log (H⁻¹)ᵢᵢ correlate ≥ 0.9 across coordinates …
SLOPE = (0.5, 1.5)  # … with a log-log slope near 1 (P ∝ (H⁻¹)ᵢᵢ, not just monotone)


def starts(family: str, H: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """n starts at distance RADIUS from θ* = 0, in the eigenbasis cᵢ of H:

    "isotropic": c uniformly random in direction, so |gᵢ| = λᵢ|cᵢ| grows with curvature;
    "equal |g|": cᵢ = ±a/λᵢ, so every eigen-direction has the same gradient |gᵀqᵢ| = a.
    """
    lam, Q = curvature.eig(H)
    if family == "isotropic":
        c = torch.randn(n, DIM, generator=gen, dtype=torch.float64)
    else:
        sign = torch.randint(0, 2, (n, DIM), generator=gen).double() * 2 - 1
        c = sign / lam
    c = RADIUS * c / c.norm(dim=-1, keepdim=True)
    return c @ Q.T


def fit(P: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    """Median over starts of the correlation and the slope of log P against log target.

    P: [B, d] per-coordinate steps; target: [d]."""
    y = P.log()
    x = target.log().expand_as(y)
    xc, yc = x - x.mean(-1, keepdim=True), y - y.mean(-1, keepdim=True)
    cov = (xc * yc).sum(-1)
    corr = cov / (xc.norm(dim=-1) * yc.norm(dim=-1)).clamp_min(1e-300)
    slope = cov / (xc * xc).sum(-1)
    return float(corr.median()), float(slope.median())


def network(ctx: Context) -> tuple[dict, np.ndarray, np.ndarray]:
    """A small network of E8 trained with our Adam on digits: log α/(√r̂ᵢ+ε) against
    log 1/|Hᵢᵢ| of the training risk, over the coordinates where both are defined."""
    d = data.load("digits", seed=ctx.seed, n_train=ctx.pick(300, 1000))
    net = MLP([d.n_features, ctx.pick(8, 16), d.n_outputs], "tanh", seed=ctx.seed).double()
    d = d.to(torch.float64)
    opt = Adam(net.parameters(), lr=1e-2)
    epochs = ctx.pick(30, 100)
    train(net, opt, d, epochs=epochs, batch_size=None, seed=ctx.seed, log_every=10**9)
    loss = torch.nn.functional.cross_entropy
    pv = netcurvature.adam_preconditioner_vs_hessian(opt, net, loss, d.x_train, d.y_train)
    P, inv = pv.effective_step, pv.inverse_curvature
    # pixels that are 0 in every image have g = 0 and Hᵢᵢ = 0: their step is α/ε, not a model
    keep = (pv.hessian_diagonal.abs() > 1e-12) & torch.isfinite(inv)
    corr, slope = fit(P[keep][None], inv[keep])
    row = {
        "parameters": int(P.numel()),
        "coordinates_compared": int(keep.sum()),
        "epochs": epochs,
        "corr_one_over_abs_diag_h": corr,
        "slope_one_over_abs_diag_h": slope,
    }
    return row, inv[keep].numpy(), P[keep].numpy()


def measure(ctx: Context) -> Measurement:
    steps = ctx.pick(300, 3000)
    n_tune, n_fresh = ctx.pick((6, 16), (16, 64))
    checkpoints = sorted({1, 10, steps // 3, steps})
    lrs = tu.lr_grid(1e-3, 10.0)
    table, scatter = {}, {}
    for frame, seed in (("axis-aligned", None), ("rotated", ctx.seed)):
        land = landscapes.get("quadratic", kappa=KAPPA, dim=DIM, seed=seed)
        H = curvature.hessian(land, torch.zeros(DIM, dtype=torch.float64))
        inv_diag = torch.linalg.inv(H).diagonal()
        one_over_diag = 1 / H.diagonal().abs()
        gen = tu.generator(ctx.seed, "C13", frame)
        problem = tu.Problem(
            frame,
            land,
            starts("isotropic", H, n_tune, gen),
            starts("isotropic", H, n_fresh, gen),
            1e-8,
        )
        t = tu.tune([problem], "adam", steps=steps, lrs=lrs)[0]
        for family in ("isotropic", "equal |g|"):
            x0 = problem.fresh if family == "isotropic" else starts(family, H, n_fresh, gen)
            res = run(land, "adam", starts=x0, steps=steps, lr=t.lr, record="full")
            P = res.effective_step[:, 0]  # α/(√r̂+ε) after step k: [T, B, d]
            _, g = value_and_grad(land, res.x[:-1, 0])  # the gradients Adam was fed
            mean_abs_g = g.abs().cumsum(0) / torch.arange(1, len(g) + 1)[:, None, None]
            rows = {}
            for k in checkpoints:
                k = min(k, len(P))
                c_inv, s_inv = fit(P[k - 1], inv_diag)
                c_diag, _ = fit(P[k - 1], one_over_diag)
                c_g, s_g = fit(P[k - 1], 1 / mean_abs_g[k - 1].clamp_min(1e-300))
                rows[str(k)] = {
                    "corr_inv_hessian_diag": c_inv,
                    "slope_inv_hessian_diag": s_inv,
                    "corr_one_over_diag_h": c_diag,
                    "corr_one_over_mean_abs_g": c_g,
                    "slope_one_over_mean_abs_g": s_g,
                    "median_P": float(P[k - 1].median()),
                }
            name = f"{frame}, {family} start"
            table[name] = {"lr": t.lr, "final_f_median": float(res.final_f[0].median()), "at": rows}
            mid = min(steps // 3, len(P))
            scatter[name] = (inv_diag.numpy(), P[mid - 1].numpy())

    net_row, net_inv, net_P = network(ctx)

    fig, axes = plt.subplots(1, 5, figsize=(21, 4.3))
    for ax, (name, (inv, P)) in zip(axes, scatter.items()):
        for b in range(min(6, P.shape[0])):
            ax.plot(inv, P[b], "o", ms=4, alpha=0.7)
        ref = np.array([inv.min(), inv.max()])
        mid = np.exp(np.log(P[: min(6, len(P))]).mean())
        ax.plot(ref, mid * ref / np.exp(np.log(inv).mean()), "k--", lw=1, label="∝ (H⁻¹)ᵢᵢ")
        tu.log_axis(ax, "y")
        tu.log_axis(ax, "x", subs=(1.0, 2.0, 5.0))  # the rotated diagonals span one decade
        r = table[name]["at"][str(min(steps // 3, steps))]
        ax.set(
            xlabel="(H⁻¹)ᵢᵢ",
            title=f"{name}\ncorr {r['corr_inv_hessian_diag']:.2f}, "
            f"slope {r['slope_inv_hessian_diag']:.2f}",
        )
        ax.legend(fontsize=8)
    axes[0].set_ylabel(f"Adam's step α/(√r̂ᵢ+ε) at k = {steps // 3}")
    ax = axes[4]
    ax.loglog(net_inv, net_P, ".", ms=3, alpha=0.5)
    ax.set(
        xlabel="1/|Hᵢᵢ| of the training risk",
        ylabel="α/(√r̂ᵢ+ε) after training",
        title=f"trained network ({net_row['coordinates_compared']} weights)\n"
        f"corr {net_row['corr_one_over_abs_diag_h']:.2f}, "
        f"slope {net_row['slope_one_over_abs_diag_h']:.2f}",
    )
    fig.subplots_adjust(wspace=0.25)
    figures = [ctx.figure(fig, "preconditioner")]
    return Measurement(
        numbers={
            "dim": DIM,
            "kappa": KAPPA,
            "budget": steps,
            "checkpoints": checkpoints,
            "conditions": table,
            "network": net_row,
        },
        figures=figures,
        explanation=(
            f"Each dot is one coordinate i of a {DIM}-dimensional quadratic with κ = {KAPPA:g} "
            "(colours: six starts): Adam's per-coordinate step size against the inverse "
            "Hessian's diagonal, a third into the run. √r̂ measures the size of the gradients: on "
            "the axis-aligned quadratic |gᵢ| = λᵢ|θᵢ − θᵢ*| grows with curvature (from an "
            "isotropic start, and once a coordinate oscillates with steps of about α), so the "
            "step follows (H⁻¹)ᵢᵢ; rotated, every coordinate mixes all curvatures and the link "
            "is lost. The step also keeps growing as the gradients vanish, which a curvature "
            "estimate on a quadratic would not. Right: the same comparison for every weight of a "
            "small tanh network trained with Adam on digits, against 1/|Hᵢᵢ| of its risk."
        ),
    )


def judge(numbers: dict) -> Judgement:
    mid = str(numbers["checkpoints"][-2])
    ok, parts = [], []
    for name, row in numbers["conditions"].items():
        r = row["at"][mid]
        c, s = float(r["corr_inv_hessian_diag"]), float(r["slope_inv_hessian_diag"])
        if c >= CORR and SLOPE[0] <= s <= SLOPE[1]:
            ok.append(name)
        parts.append(
            f"{name}: corr {c:.2f}, slope {s:.2f} (with 1/mean|g|: "
            f"{float(r['corr_one_over_mean_abs_g']):.2f})"
        )
    net = numbers["network"]
    c, s = float(net["corr_one_over_abs_diag_h"]), float(net["slope_one_over_abs_diag_h"])
    if c >= CORR and SLOPE[0] <= s <= SLOPE[1]:
        ok.append("the trained network")
    parts.append(f"trained network, against 1/|Hᵢᵢ|: corr {c:.2f}, slope {s:.2f}")
    last = str(numbers["checkpoints"][-1])
    growth = [
        float(r["at"][last]["median_P"]) / float(r["at"][mid]["median_P"])
        for r in numbers["conditions"].values()
    ]
    evidence = (
        f"log α/(√r̂+ε) against log (H⁻¹)ᵢᵢ at k = {mid} — "
        + "; ".join(parts)
        + f"; from k = {mid} to {last} the median step grows {min(growth):.1f}–{max(growth):.1f}×"
        " on the same Hessian"
    )
    n_cases = len(numbers["conditions"]) + 1
    say = {
        "headline": f"follows H⁻¹ᵢᵢ in {len(ok)}/{n_cases} cases",
        "takeaway": (
            f"Adam's per-coordinate step follows the inverse Hessian's diagonal in {len(ok)} of "
            f"{n_cases} cases ({', '.join(ok) or 'none'}); √r̂ measures gradient size, which "
            "tracks curvature only where H is diagonal in the parameters' coordinates."
        ),
    }
    if len(ok) == n_cases:
        return Judgement("holds", evidence, **say)
    if not ok:
        return Judgement("fails", evidence, **say)
    return Judgement(
        "partly",
        evidence,
        "Adam's step follows the inverse Hessian's diagonal only for "
        + ", ".join(ok)
        + "; √r̂ measures the size of the gradients (correlation with 1/mean|g| ≈ 1 everywhere), "
        "which tracks curvature only when the Hessian is diagonal in the parameters' "
        "coordinates",
        **say,
    )


register(
    Experiment(
        id="C13",
        title="Adam as a diagonal quasi-Newton method?",
        claim=(
            "the adam optimizer acts as a Diagonal Quasi-Newton method. It effectively "
            "approximates the scaling of the inverted hessian using the accumulated squared "
            "gradients"
        ),
        criterion=(
            f"on {DIM}-dimensional quadratics with κ = {KAPPA:g}, axis-aligned and randomly "
            "rotated, from isotropic starts and from starts with equal |g| along every "
            "eigenvector, run Adam at its tuned α and compare its per-coordinate step α/(√r̂+ε) "
            "with the inverse Hessian's diagonal (H⁻¹)ᵢᵢ across coordinates, a third into the "
            f"run: it approximates it if log-log correlation ≥ {CORR} and slope in "
            f"[{SLOPE[0]}, {SLOPE[1]}] (median over starts). The same test for every weight of a "
            "small tanh network trained with Adam on digits, against 1/|Hᵢᵢ| of its training "
            "risk. Holds if in every condition; fails if in none; partly otherwise (naming where)"
        ),
        measure=measure,
        judge=judge,
    )
)
