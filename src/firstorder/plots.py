"""Figures shared by the command line and the experiments: contour maps with trajectories,
and heatmaps of a sweep.

The figures are :class:`matplotlib.figure.Figure` objects made without pyplot: importing this
module leaves matplotlib's backend as it was (a notebook keeps its own), and a figure made
here is not kept in pyplot's list of open figures. The command line and the tour's worker
processes choose the Agg backend themselves, as they only write files.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.figure import Figure

from firstorder import rules
from firstorder.errors import UserValueError
from firstorder.files import atomic
from firstorder.trajectories import Trajectories

# the notes' symbols for the numeric hyperparameters' names, from their specs in rules.py
SYMBOLS = {n: h.symbol for n, h in rules.HYPERPARAMETERS.items() if not h.switch}


def contour(ax: Axes, landscape, window=None, levels: int = 16) -> None:
    """Contour lines of f over ``window`` (the landscape's own by default), shaded by band.

    Where f has a minimum the levels are log-spaced in f − min f, so a narrow canyon floor and a
    flat plain (few lines: little slope) both read right; surfaces unbounded below get evenly
    spaced levels. For dim > 2 the map is the slice through the first two coordinates.
    """
    (x0, x1), (y0, y1) = window or landscape.window
    xs, ys = np.linspace(x0, x1, 160), np.linspace(y0, y1, 160)
    X, Y = np.meshgrid(xs, ys)
    pts = torch.tensor(np.stack([X, Y], -1), dtype=torch.float64)
    if landscape.dim > 2:
        rest = torch.zeros(*pts.shape[:-1], landscape.dim - 2, dtype=torch.float64)
        pts = torch.cat([pts, rest], -1)
    with torch.no_grad():
        Z = landscape(pts).numpy()
    if landscape.minima:
        Z = Z - Z.min()
        top = Z.max()
        qs = np.geomspace(max(top * 1e-5, np.quantile(Z, 0.002)), top, levels + 1)[:-1]
    else:
        qs = np.linspace(Z.min(), Z.max(), levels + 2)[1:-1]
    shade = np.searchsorted(qs, Z)  # the level band of each pixel
    ax.imshow(
        shade,
        origin="lower",
        extent=(x0, x1, y0, y1),
        aspect="auto",
        cmap="Greys_r",
        alpha=0.35,
        interpolation="bilinear",
    )
    lines = ax.contour(X, Y, Z, levels=qs, colors="0.45", linewidths=0.6)
    lines.set_in_layout(False)  # bbox_inches="tight" need not measure every contour path


def mark_critical_points(ax: Axes, landscape) -> None:
    """The landscape's minima (★) and saddles (×) on a contour map."""
    for m in landscape.minima:
        ax.plot(*m.x[:2], "*", color="gold", ms=12, mec="black", zorder=5)
    for s in landscape.saddles:
        ax.plot(*s.x[:2], "x", color="black", ms=8, zorder=5)


def trajectories_figure(result: Trajectories, landscape, title: str = "") -> Figure:
    """One panel per configuration: the paths of every start on the contour map; a run that
    diverged ends in ✕, one that escaped (a surface unbounded below) in ▲, at the map's edge
    when it stopped outside it."""
    if result.x is None:
        raise UserValueError("result must be recorded with record='full' to draw its paths.")
    C = result.configs
    cols = min(C, 3)
    rows = (C + cols - 1) // cols
    fig = Figure(figsize=(4.6 * cols, 4.0 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for c, ax in enumerate(axes.flat):
        if c >= C:
            ax.axis("off")
            continue
        contour(ax, landscape)
        mark_critical_points(ax, landscape)
        (x0, x1), (y0, y1) = landscape.window
        ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel="θ₁", ylabel="θ₂")
        for b in range(result.starts.shape[0]):
            path = result.x[:, c, b, :2].numpy()
            (line,) = ax.plot(path[:, 0], path[:, 1], ".-", ms=2, lw=1)
            ax.plot(*path[0], "o", color="red", ms=4)
            status, k = result.outcome(c, b)
            if status in ("diverged", "escaped"):  # ✕ a blow-up, ▲ an escape, where it stopped
                end = path[k] if k < len(path) else path[-1]
                marker = "X" if status == "diverged" else "^"
                ax.plot(
                    *np.clip(end, (x0, y0), (x1, y1)),
                    marker,
                    color=line.get_color(),
                    ms=9,
                    mec="black",
                    zorder=6,
                    clip_on=False,
                )
        label = ", ".join(f"{k}={v:g}" for k, v in result.config(c).items() if k in SYMBOLS)
        ax.set_title(f"{result.optimizer}: {label}", fontsize=10)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def sweep_heatmap(result: Trajectories, x: str, y: str | None, value: str) -> Figure:
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
    fig = Figure(figsize=(7, 5 if y else 2.5))
    ax = fig.subplots()
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


def check_suffix(path: str | Path, name: str = "path") -> None:
    """Raise a UserValueError naming ``name`` unless ``path`` ends in a format matplotlib writes
    (the command line checks ``--plot`` before it runs anything)."""
    kinds = FigureCanvasBase.get_supported_filetypes()
    if Path(path).suffix[1:].lower() not in kinds:
        raise UserValueError(
            f"{name} must end in one of {', '.join('.' + k for k in sorted(kinds))}, "
            f"got {str(path)!r}."
        )


def save(fig: Figure, path: str | Path) -> Path:
    """Save in the format of the file's suffix, atomically (:func:`firstorder.files.atomic`),
    and close the figure (in pyplot too, for a figure made through pyplot)."""
    path = Path(path)
    try:
        check_suffix(path)
        with atomic(path, "wb") as fh:
            fig.savefig(fh, format=path.suffix[1:].lower(), dpi=120, bbox_inches="tight")
    finally:
        pyplot = sys.modules.get("matplotlib.pyplot")  # imported by whoever made it that way
        if pyplot is not None:
            pyplot.close(fig)
    return path
