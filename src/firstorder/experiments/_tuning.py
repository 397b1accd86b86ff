"""Fair learning-rate tuning, DeepOBS style, and the figures the obstacle experiments share.

An optimizer compared at somebody's favourite α says more about the α than the optimizer. The
protocol here follows DeepOBS (Schneider, Balles & Hennig, ICLR 2019):

1. every optimizer gets the same log grid of α and the same step budget;
2. each α runs from the same *tuning* starts; the tuning score picks one α per problem:
   the fraction of tuning starts that reach the target within the budget (higher is better),
   ties broken by the mean steps to target with a miss counted as budget + 1, then by the
   fraction of runs that diverged, then by the median final f (lower is better), then by the
   smaller α;
3. what is reported comes from *fresh* seeded starts that played no part in the choice.

The other hyperparameters stay at the defaults of :mod:`firstorder.rules` (ρ = 0.9 for momentum
and RMSProp, ρ₁ = 0.9, ρ₂ = 0.999 for Adam) unless an experiment says otherwise. Newton has no α
to tune: E7 is θ ← θ − H⁻¹g, α = 1.

Several 2-D problems run in one call of :func:`firstorder.run.run`: :func:`side_by_side` puts
start block p of the batch on landscape p, so one tensor program steps every problem, every α and
every start at once. Each trajectory still sees only its own landscape; a problem's target is a
level of f (reached when f < level), which is how minima, "escaped the saddle" and "left the
plateau" are all counted by the engine's own stopping rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.ticker import LogLocator, MaxNLocator, NullLocator
from torch import Tensor

from firstorder import plots, rules
from firstorder.landscapes import Landscape, Point
from firstorder.run import run

# the notes' first-order rules (E1–E5): those with an equation of the notes and no Hessian;
# rules from beyond the notes (Nesterov, AdamW) are in the library but not in the claims' tests
FIRST_ORDER = tuple(
    n for n, r in rules.RULES.items() if r.equation is not None and not r.needs_hessian
)
ALL = tuple(n for n, r in rules.RULES.items() if r.equation is not None)
COLORS = {n: r.color for n, r in rules.RULES.items()}
LABELS = {n: r.label for n, r in rules.RULES.items()}

# the notes' symbols in titles (α is shown on its own)
SYMBOLS = {n: h.symbol for n, h in rules.HYPERPARAMETERS.items() if not h.switch and n != "lr"}


def lr_grid(lo: float = 1e-4, hi: float = 10.0, per_decade: int = 6) -> list[float]:
    """The log grid of α every optimizer is tuned on, ``per_decade`` points a decade (6: a
    factor 1.47 between neighbours; 12: 1.21, finer than a 1.25× bar a verdict is judged
    against, so the grid cannot decide it)."""
    n = round(math.log10(hi / lo) * per_decade) + 1
    return [float(v) for v in np.logspace(math.log10(lo), math.log10(hi), n)]


def generator(seed: int, *salt: object) -> torch.Generator:
    """A torch generator seeded by the experiment's seed and a label (tuning, fresh, …)."""
    text = ":".join(str(s) for s in (seed, *salt))
    return torch.Generator().manual_seed(int.from_bytes(text.encode(), "little") % (2**63 - 1))


def uniform_starts(window, n: int, gen: torch.Generator) -> Tensor:
    """n start points uniform in the box ``window`` = ((x₁ lo, hi), (x₂ lo, hi)), float64."""
    lo = torch.tensor([w[0] for w in window], dtype=torch.float64)
    hi = torch.tensor([w[1] for w in window], dtype=torch.float64)
    return lo + (hi - lo) * torch.rand(n, len(window), generator=gen, dtype=torch.float64)


@dataclass
class Problem:
    """A landscape, its three sets of starts, and the level of f that counts as reached.

    ``reached``, where given, replaces the level: a test on θ [..., d] (for example "farther
    than 1 from a saddle's stable manifold"), evaluated on the recorded iterates; the engine
    then runs every trajectory to the budget, and ``target`` only shifts f (give 0).
    """

    name: str
    landscape: Landscape
    tuning: Tensor  # [n_tune, d]
    fresh: Tensor  # [n_fresh, d]
    target: float  # reached once f < target
    show: Tensor | None = None  # [n_show, d] starts drawn in the figures
    reached: Callable[[Tensor], Tensor] | None = None
    # λ > 0 along the direction that flows into a saddle (None: no such direction): an α past
    # a rule's stability limit there (see stable_lr_max) neither counts as reaching nor wins
    stable_curvature: float | None = None


@dataclass
class Tuned:
    """One optimizer on one problem at its tuned α, measured on the fresh starts.

    ``grid_steps`` keeps the fresh starts' steps to target at every α of the grid ([n_lr,
    n_fresh]), so an experiment can also compare two optimizers at the *same* α.
    """

    optimizer: str
    problem: str
    lr: float
    lrs: list[float]
    tuning_success: list[float]  # per α of the grid
    budget: int
    steps: Tensor  # [n_fresh] steps to target (−1: not reached)
    diverged: Tensor  # [n_fresh] bool
    final_x: Tensor  # [n_fresh, d]
    final_f: Tensor  # [n_fresh]
    curves: Tensor  # [T+1, n_fresh] f along the way (stays put once a run stopped)
    grid_steps: Tensor  # [n_lr, n_fresh]
    grid_curves: Tensor  # [T+1, n_lr, n_fresh]
    shown: Tensor | None = None  # [T+1, n_show, d]
    score: tuple = ()  # the tuning score of the chosen α (see the top), higher is better
    hyper: dict = field(default_factory=dict)  # the other hyperparameters it ran with
    lr_max: float = math.inf  # α from here on is unstable along the problem's stable direction

    @property
    def success(self) -> float:
        """Fraction of fresh starts that reached the target within the budget."""
        return float((self.steps >= 0).double().mean())

    @property
    def mean_steps(self) -> float:
        """Mean steps to target over the fresh starts, a miss counted as budget + 1."""
        return capped_mean(self.steps, self.budget)

    @property
    def median_steps(self) -> float | None:
        ok = self.steps >= 0
        return float(self.steps[ok].double().median()) if ok.any() else None

    def index(self, lr: float) -> int:
        """The position in the grid of the α nearest to ``lr`` (on a log scale)."""
        return int(np.argmin([abs(math.log(a / lr)) for a in self.lrs]))


def first_below(curves: Tensor, level: float) -> Tensor:
    """The first step k at which f < level, per column of curves [T+1, ...]; −1 if never."""
    below = curves < level
    k = below.double().argmax(0)
    return torch.where(below.any(0), k, -1)


def first_reached(reached: Callable[[Tensor], Tensor], x: Tensor, diverged_at: Tensor) -> Tensor:
    """The first step k at which ``reached(θ_k)`` holds, per trajectory of x [T+1, C, B, d],
    counting only the steps before the run diverged (diverged_at [C, B], −1: never); −1 if
    never. A run that escapes a saddle and then runs off to infinity has escaped."""
    k = torch.arange(x.shape[0])[:, None, None]
    alive = (diverged_at < 0)[None] | (k < diverged_at[None])
    hit = reached(x) & alive
    return torch.where(hit.any(0), hit.double().argmax(0), -1)


def stable_lr_max(optimizer: str, curvature: float | None, hyper: dict) -> float:
    """The α from which a rule's iteration grows along a direction of curvature λ > 0.

    GD (E1) multiplies the error along it by 1 − αλ each step: stable for αλ < 2. Momentum
    (E2, s ← ρs − αg, θ ← θ + s) is the heavy ball, whose two roots stay inside the unit
    circle for αλ < 2(1 + ρ). The rules that divide by √r (AdaGrad, RMSProp, Adam) have no fixed
    limit (their step shrinks as r grows), nor has any rule where λ is None: ∞.
    """
    if curvature is None or optimizer not in ("gd", "momentum"):
        return math.inf
    defaults = rules.get(optimizer).hyper
    rho = float(hyper.get("rho", defaults.get("rho", 0.0)))  # GD: ρ = 0, the same bound
    return 2 * (1 + rho) / curvature


def capped_mean(steps: Tensor, budget: int) -> float:
    """Mean of steps to target, a miss (−1) counted as budget + 1."""
    s = torch.where(steps >= 0, steps, budget + 1).double()
    return float(s.mean())


def side_by_side(problems: list[Problem], counts: list[int], bound: float) -> Landscape:
    """One landscape for run(): start block p (``counts[p]`` starts) lives on problem p.

    f is shifted by each problem's target level (a constant: gradients are untouched), so the
    engine's rule "reached once f − f* < tol_f", with f* = 0 and tol_f = 0, fires exactly when
    f < target on that trajectory's own landscape. run() evaluates f on blocks shaped [C, B, d],
    which is all this relies on; Newton (which vmaps single points) runs one problem at a time.
    """
    dims = {p.landscape.dim for p in problems}
    if len(dims) != 1:
        raise ValueError(f"problems must share one dimension, got {sorted(dims)}.")
    (d,) = dims
    levels = [p.target for p in problems]

    def fn(x: Tensor) -> Tensor:
        parts = x.split(counts, dim=-2)
        return torch.cat(
            [p.landscape(part) - lvl for p, part, lvl in zip(problems, parts, levels)], dim=-1
        )

    return replace(
        problems[0].landscape,
        name="+".join(p.name for p in problems),
        fn=fn,
        minima=[Point((0.0,) * d, 0.0, "minimum")],
        saddles=[],
        maxima=[],
        bound=bound,
    )


def _run_all(
    problems: list[Problem],
    optimizer: str,
    steps: int,
    lrs: list[float],
    bound: float,
    hyper: dict[str, object],
) -> tuple:
    """Every problem's tuning, fresh and shown starts at every α, in one run; the result and
    the number of starts of each problem."""
    blocks = [[p.tuning, p.fresh] + ([p.show] if p.show is not None else []) for p in problems]
    counts = [sum(len(b) for b in bl) for bl in blocks]
    starts = torch.cat([b for bl in blocks for b in bl])
    own = [p.reached is not None for p in problems]
    if any(own) and not all(own):
        raise ValueError("problems must all have a reached test or none, got a mix.")
    full = any(p.show is not None for p in problems) or all(own)
    res = run(
        side_by_side(problems, counts, bound),
        optimizer,
        starts=starts,
        steps=steps,
        tol_f=None if all(own) else 0.0,  # with their own tests, every run goes to the budget
        record="full" if full else "curves",
        lr=lrs,
        **hyper,
    )
    return res, counts


def _scores(
    res, steps_to: Tensor, ts: slice, target: float, lrs: list[float], steps: int
) -> list[tuple]:
    """The tuning score of each α on the tuning starts ``ts`` (see top): success, then mean
    steps to target, then the share diverged, then median final f, then the smaller α."""
    score = []
    for c in range(len(lrs)):
        st = steps_to[c, ts]
        fin = res.final_f[c, ts] + target
        gone = ~torch.isfinite(fin) | (res.diverged_at[c, ts] >= 0)
        fin = torch.where(gone, math.inf, fin)
        score.append(
            (
                float((st >= 0).double().mean()),
                -capped_mean(st, steps),
                -float(gone.double().mean()),
                -float(fin.median()),
                -lrs[c],
            )
        )
    return score


def tune(
    problems: list[Problem],
    optimizer: str,
    *,
    steps: int,
    lrs: list[float],
    bound: float = 1e3,
    **hyper: object,
) -> list[Tuned]:
    """Tune α for ``optimizer`` on each problem and measure it on the fresh starts (see top)."""
    if optimizer == "newton":
        return [_newton(p, steps=steps, bound=bound, **hyper) for p in problems]
    res, counts = _run_all(problems, optimizer, steps, lrs, bound, hyper)
    out, offset = [], 0
    for p, n in zip(problems, counts):
        nt, nf = len(p.tuning), len(p.fresh)
        ts = slice(offset, offset + nt)
        fr = slice(offset + nt, offset + nt + nf)
        sh = slice(offset + nt + nf, offset + n)
        steps_to = res.steps_to_target
        if p.reached is not None:  # the problem's own test on θ, first step where it holds
            steps_to = first_reached(p.reached, res.x, res.diverged_at)
        # past the stability limit along a saddle's stable direction a run grows along it too:
        # reaching the escape distance then is a blow-up, not an escape, and does not count
        lr_max = stable_lr_max(optimizer, p.stable_curvature, hyper)
        stable = [a < lr_max for a in lrs]
        steps_to = torch.where(torch.tensor(stable)[:, None], steps_to, -1)
        offset += n
        f_fresh = res.f[:, :, fr] + p.target  # [T+1, C, n_fresh] on the problem's own scale
        score = _scores(res, steps_to, ts, p.target, lrs, steps)
        allowed = [c for c in range(len(lrs)) if stable[c]] or range(len(lrs))
        best = max(allowed, key=lambda c: score[c])
        out.append(
            Tuned(
                optimizer=optimizer,
                problem=p.name,
                lr=lrs[best],
                lrs=list(lrs),
                tuning_success=[s[0] for s in score],
                budget=steps,
                steps=steps_to[best, fr].clone(),
                diverged=res.diverged_at[best, fr] >= 0,
                final_x=res.final_x[best, fr].clone(),
                final_f=res.final_f[best, fr] + p.target,
                curves=f_fresh[:, best].clone(),
                grid_steps=steps_to[:, fr].clone(),
                grid_curves=f_fresh,
                shown=res.x[:, best, sh].clone() if p.show is not None else None,
                score=score[best],
                hyper=dict(hyper),
                lr_max=lr_max,
            )
        )
    return out


def tune_momentum(
    problems: list[Problem], *, steps: int, lrs: list[float], rhos: list[float], **kw: object
) -> list[Tuned]:
    """Momentum with ρ tuned along with α: for each problem the (α, ρ) with the best tuning
    score over ``rhos`` × ``lrs``. With 0 in ``rhos`` the family contains GD (ρ = 0), so what
    momentum adds is measured against GD tuned the same way."""
    per_rho = [tune(problems, "momentum", steps=steps, lrs=lrs, rho=rho, **kw) for rho in rhos]
    return [max(ts, key=lambda t: t.score) for ts in zip(*per_rho)]


def _newton(p: Problem, *, steps: int, bound: float, **hyper: object) -> Tuned:
    """Newton (E7, α = 1) on one problem: nothing to tune, fresh and shown starts only."""
    land = replace(p.landscape, minima=[Point((0.0,) * p.landscape.dim, p.target, "minimum")])
    starts = torch.cat([p.fresh] + ([p.show] if p.show is not None else []))
    res = run(
        land,
        "newton",
        starts=starts,
        steps=steps,
        tol_f=None if p.reached else 0.0,
        bound=bound,
        **hyper,
    )
    nf = len(p.fresh)
    steps_to = res.steps_to_target
    if p.reached is not None:
        steps_to = first_reached(p.reached, res.x, res.diverged_at)
    return Tuned(
        optimizer="newton",
        problem=p.name,
        lr=1.0,
        lrs=[1.0],
        tuning_success=[],
        budget=steps,
        steps=steps_to[0, :nf].clone(),
        diverged=res.diverged_at[0, :nf] >= 0,
        final_x=res.final_x[0, :nf].clone(),
        final_f=res.final_f[0, :nf].clone(),
        curves=res.f[:, 0, :nf].clone(),
        grid_steps=steps_to[:, :nf].clone(),
        grid_curves=res.f[:, :, :nf].clone(),
        shown=res.x[:, 0, nf:].clone() if p.show is not None else None,
    )


# --- figures ------------------------------------------------------------------------------------


def log_axis(ax, which: str = "y", subs: tuple[float, ...] = (1.0,)) -> None:
    """Log scale on ``which`` ("x", "y" or "xy") with a few ticks labelled (at ``subs`` × 10ⁿ)
    and no minor ticks: matplotlib lays out every minor tick of a log axis, most of a
    figure's drawing time."""
    for name in which:
        axis = ax.xaxis if name == "x" else ax.yaxis
        (ax.set_xscale if name == "x" else ax.set_yscale)("log")
        axis.set_major_locator(LogLocator(subs=subs, numticks=7))
        axis.set_minor_locator(NullLocator())


def trajectory_panels(rows, row_labels, title: str, window=None):
    """One row per landscape, one panel per optimizer, the same shown starts in every panel.

    ``rows`` is a list of (landscape, {optimizer: Tuned}); returns the figure.
    """
    n_opt = max(len(r[1]) for r in rows)
    fig, axes = plt.subplots(
        len(rows), n_opt, figsize=(2.8 * n_opt, 2.9 * len(rows) + 0.5), squeeze=False
    )
    for i, ((land, by_opt), label) in enumerate(zip(rows, row_labels)):
        (x0, x1), (y0, y1) = win = window or land.window
        for j, (opt, t) in enumerate(by_opt.items()):
            ax = axes[i, j]
            plots.contour(ax, land, win)
            xy = t.shown.numpy()
            for b in range(xy.shape[1]):
                ok = np.isfinite(xy[:, b]).all(-1)
                ax.plot(xy[ok, b, 0], xy[ok, b, 1], ".-", color=COLORS[opt], ms=2.5, lw=1)
                ax.plot(xy[0, b, 0], xy[0, b, 1], "o", color=COLORS[opt], mec="k", ms=5)
            extra = "".join(f", {SYMBOLS.get(k, k)} = {v:g}" for k, v in t.hyper.items())
            ax.set_title(f"{LABELS[opt]}, α = {t.lr:.3g}{extra}\n{label}", fontsize=10)
            # the map's own window in every panel: paths that run off it leave the frame
            # instead of shrinking the contours to a corner
            ax.set(xlim=(x0, x1), ylim=(y0, y1))
            ax.xaxis.set_major_locator(MaxNLocator(3))
            ax.yaxis.set_major_locator(MaxNLocator(3))
            ax.tick_params(labelsize=9)
            # ticks on the outer panels only: tick labels are most of matplotlib's drawing time
            if j:
                ax.set(ylabel="", yticklabels=[])
            if i < len(rows) - 1:
                ax.set(xlabel="", xticklabels=[])
        for j in range(len(by_opt), n_opt):
            axes[i, j].axis("off")
    # fixed spacing, not tight_layout(): that costs a full extra draw (ctx.figure crops anyway)
    fig.subplots_adjust(wspace=0.1, hspace=0.42, top=1 - 0.9 / fig.get_figheight())
    fig.suptitle(title, fontsize=12)
    return fig


def loss_curves(ax, by_opt: dict, f_star: float, title: str, target: float | None = None) -> None:
    """Median over the fresh starts of f − f* against the step k, log scale, one line each.

    A run stops where it reaches the target, so its curve stays there: the dotted line."""
    floor = target / 100 if target else 1e-16
    for opt, t in by_opt.items():
        gap = (t.curves - f_star).clamp_min(floor)
        gap = torch.where(torch.isfinite(gap), gap, torch.tensor(np.nan, dtype=gap.dtype))
        med = np.nanmedian(gap.numpy(), axis=1)
        ax.plot(
            np.arange(len(med)),
            med,
            color=COLORS[opt],
            lw=1.6,
            label=f"{LABELS[opt]} (α = {t.lr:.2g})",
        )
    if target:
        ax.axhline(target, color="k", ls=":", lw=1, label="target: runs stop here")
    log_axis(ax, "y")
    ax.set(xlabel="step k", ylabel="median f(θ_k) − f*", title=title)
    ax.legend(fontsize=7)
