"""C14: "if none of the activation function is non-linear, the model would collapse in a nn
linear layer even with multiple layers"."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from firstorder import data as datasets
from firstorder.experiments.base import Context, Experiment, Judgement, Measurement, register
from firstorder.nn import MLP
from firstorder.optim import Adam
from firstorder.train import train

COLLAPSE_TOL = 1e-10  # float64: products of a few matrices, rounding only
MARGIN = 0.02  # a deep linear net may not beat the best linear classifier by more than this


def collapse_error(depth: int, width: int, seed: int) -> float:
    """max |f_θ(x) − (W x + b)| / max |f_θ(x)| for a random all-identity network of ``depth``."""
    net = MLP([2] + [width] * (depth - 1) + [2], "identity", seed=seed).double()
    x = torch.randn(1000, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    with torch.no_grad():
        out, lin = net(x), net.collapse()(x)
    return float((out - lin).abs().max() / out.abs().max())


def accuracy(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((net(x).argmax(-1) == y).double().mean())


def fit(name: str, activation: str, depth: int, epochs: int, seed: int):
    d = datasets.load(name, seed=seed)
    widths = [d.n_features] + [32] * (depth - 1) + [d.n_outputs]
    net = MLP(widths, activation, seed=seed)
    train(net, Adam(net.parameters(), lr=0.01), d, epochs=epochs, seed=seed, log_every=10**9)
    return net, d


def measure(ctx: Context) -> Measurement:
    depths = [1, 2, 3, 5, 8]
    errors = {str(L): collapse_error(L, 16, ctx.seed + L) for L in depths}

    epochs = ctx.pick(150, 1000)
    results = {}
    nets = {}
    for name in ("xor", "spirals"):
        d = datasets.load(name, seed=ctx.seed)
        logreg = LogisticRegression().fit(d.x_train.numpy(), d.y_train.numpy())
        best_linear = float(logreg.score(d.x_test.numpy(), d.y_test.numpy()))
        lin, _ = fit(name, "identity", 4, epochs, ctx.seed)
        tanh, _ = fit(name, "tanh", 4, epochs, ctx.seed)
        nets[name] = (lin, tanh, d)
        results[name] = {
            "logistic_regression_test": best_linear,
            "deep_linear_train": accuracy(lin, d.x_train, d.y_train),
            "deep_linear_test": accuracy(lin, d.x_test, d.y_test),
            "tanh_train": accuracy(tanh, d.x_train, d.y_train),
            "tanh_test": accuracy(tanh, d.x_test, d.y_test),
        }

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    axes[0].semilogy(depths, [max(errors[str(L)], 1e-17) for L in depths], "o-")
    axes[0].axhline(COLLAPSE_TOL, color="gray", ls=":", label="criterion")
    axes[0].set(
        xlabel="layers L (all g⁽ⁱ⁾ = identity)",
        ylabel="max |f_θ(x) − (Wx + b)| / max |f_θ(x)|",
        title="a deep linear network is one linear layer",
    )
    axes[0].legend()
    lin, tanh, d = nets["spirals"]
    for ax, net, label in ((axes[1], lin, "4 linear layers"), (axes[2], tanh, "4 tanh layers")):
        _decision(ax, net, d)
        acc = accuracy(net, d.x_test, d.y_test)
        ax.set_title(f"two spirals, {label}: test accuracy {acc:.0%}")
    figures = [ctx.figure(fig, "collapse")]
    return Measurement(
        numbers={"collapse_error": errors, "fits": results, "epochs": epochs},
        figures=figures,
        explanation=(
            "Left: an all-identity network of L layers and the single layer W = W⁽ᴸ⁾⋯W⁽¹⁾ given by "
            "collapse() compute the same function, to rounding, at every depth. Middle and "
            "right: trained with Adam on two spirals, the four-layer linear network can only "
            "draw a straight boundary, while the same widths with tanh wrap around the spirals."
        ),
    )


def _decision(ax: plt.Axes, net: torch.nn.Module, d) -> None:
    x = d.x_train.numpy()
    lo, hi = x.min(0) - 0.5, x.max(0) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    grid = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32)
    with torch.no_grad():
        z = net(grid).argmax(-1).numpy().reshape(gx.shape)
    ax.contourf(gx, gy, z, alpha=0.25, cmap="coolwarm")
    ax.scatter(x[:, 0], x[:, 1], c=d.y_train.numpy(), s=6, cmap="coolwarm")
    ax.set(xlabel="x₁", ylabel="x₂")


def judge(numbers: dict) -> Judgement:
    worst = max(float(v) for v in numbers["collapse_error"].values())
    fits = numbers["fits"]
    linear_capped = all(
        f["deep_linear_test"] <= f["logistic_regression_test"] + MARGIN for f in fits.values()
    )
    xor = fits["xor"]
    nonlinear_needed = xor["deep_linear_train"] <= 0.75 and xor["tanh_train"] >= 0.99
    evidence = (
        "derivation checked (a product of matrices, exact up to rounding): "
        f"deep linear = one layer to {worst:.1e}; XOR train accuracy: 4 linear layers "
        f"{xor['deep_linear_train']:.0%}, tanh {xor['tanh_train']:.0%}; spirals test: linear "
        f"{fits['spirals']['deep_linear_test']:.0%} vs logistic regression "
        f"{fits['spirals']['logistic_regression_test']:.0%}"
    )
    say = {
        "headline": f"XOR: linear {xor['deep_linear_train']:.0%}, tanh {xor['tanh_train']:.0%}",
        "takeaway": (
            f"A deep network without a non-linearity is one linear layer (to {worst:.0e}): on "
            f"XOR 4 linear layers reach {xor['deep_linear_train']:.0%} train accuracy, the same "
            f"network with tanh {xor['tanh_train']:.0%}."
        ),
    }
    if worst <= COLLAPSE_TOL and linear_capped and nonlinear_needed:
        return Judgement("holds", evidence, **say)
    if worst <= COLLAPSE_TOL:
        return Judgement(
            "partly",
            evidence,
            "the function collapses exactly, but the measured accuracies did not separate "
            "linear from non-linear networks as the claim implies",
            **say,
        )
    return Judgement("fails", evidence, **say)


register(
    Experiment(
        id="C14",
        title="Without a non-linear activation the network is one linear layer",
        claim=(
            "if none of the activation function is non-linear, the model would collapse in a nn "
            "linear layer even with multiple layers"
        ),
        criterion=(
            f"holds if (a) for L = 1, 2, 3, 5, 8 identity layers f_θ equals the collapsed Wx + b "
            f"to {COLLAPSE_TOL:g} relative (float64), (b) a trained 4-layer linear network is no "
            f"better than logistic regression (+{MARGIN:.0%}) on XOR and two spirals, and (c) it "
            "cannot fit XOR (train accuracy ≤ 75%) while tanh of the same widths does (≥ 99%)"
        ),
        measure=measure,
        judge=judge,
    )
)
