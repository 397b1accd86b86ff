"""C13: "the adam optimizer acts as a Diagonal Quasi-Newton method. It effectively approximates
the scaling of the inverted hessian using the accumulated squared gradients", on quadratics
(axis-aligned and rotated) and on a trained network."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from firstorder import curvature, data, landscapes, netcurvature
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
from firstorder.observe import value_and_grad
from firstorder.optim import Adam
from firstorder.run import run
from firstorder.train import train

DIM, KAPPA = 20, 1e3  # eigenvalues spaced geometrically from 1e-3 to 1
RADIUS = 3.0
CORR = 0.9  # approximates: log P and log (H⁻¹)ᵢᵢ correlate ≥ 0.9 across coordinates …
# … with a log-log slope near 1 (P ∝ (H⁻¹)ᵢᵢ, the quasi-Newton scaling). √r̂ is an RMS gradient,
# so where the gradient noise of a coordinate grows like √Hᵢᵢ (minibatches near a minimum) the
# step goes as (H⁻¹)ᵢᵢ^½: slope 0.5. The bands split at the midpoint 0.75, so the two cannot
# be confused.
SLOPE = (0.75, 1.25)
SQRT_SLOPE = (0.25, 0.75)
ROTATIONS = 3  # random rotations of the quadratic per seed (its verdict varies with the rotation)
BATCH = 16  # the minibatch case: least squares on minibatches of 16 examples


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


def quadratic_case(land, ctx: Context, frame: str, steps: int, checkpoints: list[int]):
    """Adam at its tuned α on one quadratic, from both start families: the table rows and the
    scatter of the per-coordinate steps a third into the run."""
    n_tune, n_fresh = ctx.pick((6, 16), (16, 64))
    H = curvature.hessian(land, torch.zeros(DIM, dtype=torch.float64))
    inv_diag = torch.linalg.inv(H).diagonal()
    one_over_diag = 1 / H.diagonal().abs()
    gen = tu.generator(ctx.seed, "C13", frame)
    problem = tu.Problem(
        frame, land, starts("isotropic", H, n_tune, gen), starts("isotropic", H, n_fresh, gen), 1e-8
    )
    t = tu.tune([problem], "adam", steps=steps, lrs=tu.lr_grid(1e-3, 10.0))[0]
    table, scatter = {}, {}
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
    return table, scatter


def minibatch(ctx: Context) -> tuple[dict, np.ndarray, np.ndarray]:
    """Least squares R(w) = mean (xᵀw − y)²/2 on minibatches: noisy gradients, H = E[x xᵀ]
    diagonal with κ = KAPPA. Adam's α/(√r̂ᵢ+ε) at the end against (H⁻¹)ᵢᵢ."""
    gen = tu.generator(ctx.seed, "C13", "minibatch")
    n = ctx.pick(1000, 4000)
    scale = torch.logspace(0, -1.5, DIM, dtype=torch.float64)  # Hᵢᵢ = scaleᵢ² from 1 to 1e-3
    x = torch.randn(n, DIM, generator=gen, dtype=torch.float64) * scale
    w_star = torch.randn(DIM, generator=gen, dtype=torch.float64)
    y = x @ w_star + 0.5 * torch.randn(n, generator=gen, dtype=torch.float64)
    H = x.T @ x / n
    w = torch.zeros(DIM, dtype=torch.float64, requires_grad=True)
    opt = Adam([w], lr=1e-2)
    epochs = ctx.pick(20, 40)
    for _ in range(epochs):
        for idx in torch.randperm(n, generator=gen).split(BATCH):
            opt.zero_grad()
            (0.5 * (x[idx] @ w - y[idx]).pow(2).mean()).backward()
            opt.step()
    P = netcurvature.effective_step(opt, [w])
    inv = torch.linalg.inv(H).diagonal()
    corr, slope = fit(P[None], inv)
    row = {
        "examples": n,
        "batch": BATCH,
        "epochs": epochs,
        "corr_inv_hessian_diag": corr,
        "slope_inv_hessian_diag": slope,
    }
    return row, inv.numpy(), P.detach().numpy()


def draw(scatter: dict, fits: dict, mb: tuple, net: tuple, steps: int) -> plt.Figure:
    """Top row and first bottom panel: per-coordinate steps against (H⁻¹)ᵢᵢ on the quadratics
    (axis-aligned, the first rotation); then the minibatch case and the trained network."""
    mb_row, mb_inv, mb_P = mb
    net_row, net_inv, net_P = net
    fig, axes = plt.subplots(2, 3, figsize=(15, 9))
    axes = axes.ravel()
    for ax, (name, (inv, P)) in zip(axes, scatter.items()):
        for b in range(min(6, P.shape[0])):
            ax.plot(inv, P[b], "o", ms=4, alpha=0.7)
        ref = np.array([inv.min(), inv.max()])
        mid = np.exp(np.log(P[: min(6, len(P))]).mean())
        ax.plot(ref, mid * ref / np.exp(np.log(inv).mean()), "k--", lw=1, label="∝ (H⁻¹)ᵢᵢ")
        tu.log_axis(ax, "y")
        tu.log_axis(ax, "x", subs=(1.0, 2.0, 5.0))  # the rotated diagonals span one decade
        r = fits[name]["at"][str(min(steps // 3, steps))]
        ax.set(
            xlabel="(H⁻¹)ᵢᵢ",
            title=f"{name}\ncorr {r['corr_inv_hessian_diag']:.2f}, "
            f"slope {r['slope_inv_hessian_diag']:.2f}",
        )
        ax.legend(fontsize=8)
    axes[0].set_ylabel(f"Adam's step α/(√r̂ᵢ+ε) at k = {steps // 3}")
    axes[3].set_ylabel(f"Adam's step α/(√r̂ᵢ+ε) at k = {steps // 3}")
    ax = axes[4]
    ax.loglog(mb_inv, mb_P, "o", ms=5)
    ref = np.array([mb_inv.min(), mb_inv.max()])
    for power, style in ((1.0, "k--"), (0.5, "k:")):
        anchor = np.exp(np.log(mb_P).mean() - power * np.log(mb_inv).mean())
        ax.plot(ref, anchor * ref**power, style, lw=1, label=f"∝ (H⁻¹)ᵢᵢ^{power:g}")
    ax.set(
        xlabel="(H⁻¹)ᵢᵢ",
        title=f"least squares, minibatch {BATCH}\ncorr {mb_row['corr_inv_hessian_diag']:.2f}, "
        f"slope {mb_row['slope_inv_hessian_diag']:.2f}",
    )
    ax.legend(fontsize=8)
    ax = axes[5]
    ax.loglog(net_inv, net_P, ".", ms=3, alpha=0.5)
    ax.set(
        xlabel="1/|Hᵢᵢ| of the training risk",
        ylabel="α/(√r̂ᵢ+ε) after training",
        title=f"trained network ({net_row['coordinates_compared']} weights)\n"
        f"corr {net_row['corr_one_over_abs_diag_h']:.2f}, "
        f"slope {net_row['slope_one_over_abs_diag_h']:.2f}",
    )
    fig.subplots_adjust(wspace=0.25, hspace=0.38)
    return fig


def measure(ctx: Context) -> Measurement:
    steps = ctx.pick(300, 3000)
    checkpoints = sorted({1, 10, steps // 3, steps})
    axis, scatter = quadratic_case(
        landscapes.get("quadratic", kappa=KAPPA, dim=DIM), ctx, "axis-aligned", steps, checkpoints
    )
    rotated = {}  # several random rotations: the link to H⁻¹ varies from one to the next
    for j in range(ROTATIONS):
        rotation = ctx.seed * ROTATIONS + j
        land = landscapes.get("quadratic", kappa=KAPPA, dim=DIM, seed=rotation)
        rows, sc = quadratic_case(land, ctx, f"rotated #{rotation}", steps, checkpoints)
        rotated[str(rotation)] = rows
        if j == 0:
            scatter.update(sc)
    mb_row, mb_inv, mb_P = minibatch(ctx)
    net_row, net_inv, net_P = network(ctx)

    fits = {**axis, **next(iter(rotated.values()))}
    fig = draw(scatter, fits, (mb_row, mb_inv, mb_P), (net_row, net_inv, net_P), steps)
    figures = [ctx.figure(fig, "preconditioner")]
    return Measurement(
        numbers={
            "dim": DIM,
            "kappa": KAPPA,
            "budget": steps,
            "checkpoints": checkpoints,
            "conditions": axis,
            "rotated": rotated,
            "minibatch": mb_row,
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
            "estimate on a quadratic would not. Bottom middle: least squares on minibatches, "
            "where √r̂ is the RMS of gradient noise that grows as √Hᵢᵢ (dashed: slope 1, "
            "dotted: slope ½). Bottom right: every weight of a small tanh network trained with "
            "Adam on digits, against 1/|Hᵢᵢ| of its risk."
        ),
    )


def scaling(corr: float, slope: float) -> str:
    """Which power of (H⁻¹)ᵢᵢ the step follows: "1/H" (slope ≈ 1), "√(1/H)" (≈ 0.5) or "none"."""
    if corr < CORR:
        return "none"
    if SLOPE[0] <= slope <= SLOPE[1]:
        return "1/H"
    if SQRT_SLOPE[0] <= slope < SQRT_SLOPE[1]:
        return "√(1/H)"
    return "none"


def fitted(r: dict) -> tuple[float, float]:
    """The correlation and slope of log α/(√r̂+ε) against log (H⁻¹)ᵢᵢ of one measurement."""
    return float(r["corr_inv_hessian_diag"]), float(r["slope_inv_hessian_diag"])


# the cases measured beside the landscapes: numbers key, label, correlation and slope keys,
# and what the step is fitted against
FITTED_AGAINST = (
    (
        "minibatch",
        "least squares on minibatches",
        "corr_inv_hessian_diag",
        "slope_inv_hessian_diag",
        "(H⁻¹)ᵢᵢ",
    ),
    (
        "network",
        "trained network",
        "corr_one_over_abs_diag_h",
        "slope_one_over_abs_diag_h",
        "1/|Hᵢᵢ|",
    ),
)


def judge(numbers: dict) -> Judgement:
    mid = str(numbers["checkpoints"][-2])
    cases, parts = judged_cases(numbers, mid)  # case -> "1/H", "√(1/H)" or "none"
    evidence = (
        f"log α/(√r̂+ε) against log (H⁻¹)ᵢᵢ at k = {mid} (slope 1: 1/H, 0.5: √(1/H)) — "
        + "; ".join(parts)
    )
    ok = [n for n, k in cases.items() if k == "1/H"]
    root = [n for n, k in cases.items() if k == "√(1/H)"]
    say = {
        "headline": f"step ∝ (H⁻¹)ᵢᵢ in {len(ok)}/{len(cases)} cases",
        "takeaway": (
            f"Adam's per-coordinate step scales like the inverse Hessian's diagonal in "
            f"{len(ok)} of {len(cases)} cases ({', '.join(ok) or 'none'})"
            + (f", like its square root in {', '.join(root)}" if root else "")
            + "; √r̂ is a gradient size, which tracks curvature only where H is diagonal in "
            "the parameters' coordinates and the gradients are not dominated by noise."
        ),
    }
    rest = [n for n in cases if n not in ok and n not in root]
    conditions = (
        "Adam's step follows the inverse Hessian's diagonal (slope in "
        f"[{SLOPE[0]}, {SLOPE[1]}]) only for "
        + ", ".join(ok)
        + (
            f"; it goes as its square root (slope in [{SQRT_SLOPE[0]}, {SQRT_SLOPE[1]}), the RMS "
            "of gradient noise that grows as √Hᵢᵢ) for " + ", ".join(root)
            if root
            else ""
        )
        + ("; no such link for " + ", ".join(rest) if rest else "")
    )
    return parts_verdict({n: n in ok for n in cases}, evidence, conditions, **say)


def judged_cases(numbers: dict, mid: str) -> tuple[dict, list]:
    """Each case's scaling ("1/H", "√(1/H)" or "none") at checkpoint ``mid``, and its fit in
    words for the evidence."""
    cases, parts = {}, []
    for name, row in numbers["conditions"].items():
        c, s = fitted(row["at"][mid])
        cases[name] = scaling(c, s)
        parts.append(f"{name}: corr {c:.2f}, slope {s:.2f}")
    for family in ("isotropic", "equal |g|"):
        fits = [
            fitted(rows[f"rotated #{rot}, {family} start"]["at"][mid])
            for rot, rows in numbers["rotated"].items()
        ]
        kinds = [scaling(c, s) for c, s in fits]
        # a rotated case follows H⁻¹ only if it does under every rotation measured
        cases[f"rotated, {family} start"] = kinds[0] if len(set(kinds)) == 1 else "none"
        corr = [c for c, _ in fits]
        parts.append(
            f"rotated ({len(fits)} rotations), {family} start: corr {np.median(corr):.2f} "
            f"({min(corr):.2f}–{max(corr):.2f}), slope {np.median([s for _, s in fits]):.2f}"
        )
    for key, label, c_key, s_key, against in FITTED_AGAINST:
        c, s = float(numbers[key][c_key]), float(numbers[key][s_key])
        cases[label] = scaling(c, s)
        parts.append(f"{label}, against {against}: corr {c:.2f}, slope {s:.2f}")
    return cases, parts


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
            f"on {DIM}-dimensional quadratics with κ = {KAPPA:g}, axis-aligned and under "
            f"{ROTATIONS} random rotations, from isotropic starts and from starts with equal |g| "
            "along every eigenvector, run Adam at its tuned α and compare its per-coordinate "
            "step α/(√r̂+ε) with the inverse Hessian's diagonal (H⁻¹)ᵢᵢ across coordinates, a "
            "third into the run; the same at the end of minibatch least squares (noisy "
            f"gradients, batch {BATCH}) and for every weight of a small tanh network trained "
            "with Adam on digits (against 1/|Hᵢᵢ| of its risk). A case follows the inverse "
            f"Hessian if the log-log correlation is ≥ {CORR} and the slope in [{SLOPE[0]}, "
            f"{SLOPE[1]}] (median over starts), its square root if the slope is in "
            f"[{SQRT_SLOPE[0]}, {SQRT_SLOPE[1]}); a rotated case only if under every rotation. "
            "Holds if every case follows the inverse Hessian; fails if none; partly otherwise "
            "(naming where)"
        ),
        measure=measure,
        judge=judge,
    )
)
