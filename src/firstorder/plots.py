"""Figures shared by the command line and the experiments: contour maps with trajectories,
and heatmaps of a sweep."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from firstorder.run import Trajectories  # noqa: E402

# the notes' symbols for the hyperparameters' names
SYMBOLS = {"lr": "α", "rho": "ρ", "rho1": "ρ₁", "rho2": "ρ₂", "eps": "ε", "damping": "λ"}


def contour(ax: plt.Axes, landscape, levels: int = 30, resolution: int = 200) -> None:
    """Draw the 2-D landscape's contour map on ``ax`` with its minima (★) and saddles (×)."""
    (x0, x1), (y0, y1) = landscape.window
    xs = torch.linspace(x0, x1, resolution, dtype=torch.float64)
    ys = torch.linspace(y0, y1, resolution, dtype=torch.float64)
    X, Y = torch.meshgrid(xs, ys, indexing="xy")
    Z = landscape(torch.stack([X, Y], dim=-1)).numpy()
    # log-spaced levels above the minimum show canyons and plateaus alike
    lo = float(np.nanmin(Z))
    shifted = Z - lo + 1e-12
    hi = float(np.nanpercentile(shifted, 99))
    lv = np.geomspace(max(hi * 1e-6, 1e-9), hi, levels)
    ax.contour(X.numpy(), Y.numpy(), shifted, levels=lv, cmap="viridis", linewidths=0.7)
    for m in landscape.minima:
        ax.plot(*m.x[:2], "*", color="gold", ms=12, mec="black", zorder=5)
    for s in landscape.saddles:
        ax.plot(*s.x[:2], "x", color="black", ms=8, zorder=5)
    ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel="θ₁", ylabel="θ₂")


def trajectories_figure(result: Trajectories, landscape, title: str = "") -> plt.Figure:
    """One panel per configuration: the paths of every start on the contour map."""
    if result.x is None:
        raise ValueError("result must be recorded with record='full' to draw its paths.")
    C = result.configs
    cols = min(C, 3)
    rows = (C + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 4.0 * rows), squeeze=False)
    for c, ax in enumerate(axes.flat):
        if c >= C:
            ax.axis("off")
            continue
        contour(ax, landscape)
        for b in range(result.starts.shape[0]):
            path = result.x[:, c, b, :2].numpy()
            ax.plot(path[:, 0], path[:, 1], ".-", ms=2, lw=1)
            ax.plot(*path[0], "o", color="red", ms=4)
        label = ", ".join(
            f"{k}={v:g}" for k, v in result.config(c).items() if k != "bias_correction"
        )
        ax.set_title(f"{result.optimizer}: {label}", fontsize=10)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def sweep_heatmap(result: Trajectories, x: str, y: str | None, value: str) -> plt.Figure:
    """A heatmap over the grid of hyperparameters ``x`` (and ``y``): the median over starts of
    ``value`` ("steps" to target or final "loss"); diverged cells are marked ✕."""
    xs = sorted(set(result.hyper[x]))
    ys = sorted(set(result.hyper[y])) if y else [None]
    grid = np.full((len(ys), len(xs)), np.nan)
    diverged = np.zeros_like(grid, dtype=bool)
    for c in range(result.configs):
        cfg = result.config(c)
        i, j = (ys.index(cfg[y]) if y else 0), xs.index(cfg[x])
        reached = result.steps_to_target[c].double()
        if value == "steps":
            ok = reached >= 0
            grid[i, j] = float(reached[ok].median()) if ok.any() else np.nan
        else:
            grid[i, j] = float((result.final_f[c] - (result.f_star or 0.0)).abs().median())
        diverged[i, j] = bool((result.diverged_at[c] >= 0).float().mean() > 0.5)
    fig, ax = plt.subplots(figsize=(7, 5 if y else 2.5))
    shown = np.where(diverged, np.nan, grid)
    if value == "loss":
        shown = np.log10(np.maximum(shown, 1e-300))
    im = ax.imshow(shown, origin="lower", aspect="auto", cmap="magma_r")
    for i, j in zip(*np.nonzero(diverged)):
        ax.text(j, i, "✕", ha="center", va="center", color="red", fontsize=12)
    ax.set_xticks(range(len(xs)), [f"{v:.2g}" for v in xs], rotation=45)
    ax.set_yticks(range(len(ys)), [f"{v:.3g}" for v in ys] if y else [""])
    ax.set_xlabel(SYMBOLS.get(x, x))
    if y:
        ax.set_ylabel(SYMBOLS.get(y, y))
    label = "median steps to target" if value == "steps" else "log₁₀ median |f − f*| at the end"
    fig.colorbar(im, ax=ax, label=label)
    ax.set_title(f"{result.optimizer} on {result.landscape} (✕: diverged, blank: not reached)")
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, path: str | Path) -> Path:
    """Save atomically (temporary file, then rename) and close the figure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path
