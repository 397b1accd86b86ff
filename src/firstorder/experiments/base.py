"""What an experiment is, what it returns, and how one is run.

An experiment follows CLAIMS.md, "What an experiment must do":

1. it names the claim id and quotes it (``Experiment.id``, ``Experiment.claim``);
2. it states its criterion before running (``Experiment.criterion``, words; ``judge``, code);
3. ``measure(ctx)`` runs the real optimizers, seeded by ``ctx.seed``, and returns the numbers
   (:func:`run_experiment` measures and judges several seeds and reports whether they agree);
4. ``judge(numbers)`` derives the verdict from those numbers alone;
5. where the claim holds only under conditions, ``measure`` varies them and ``judge`` names
   them in ``Judgement.conditions``;
6. ``measure`` draws at least one figure with ``ctx.figure(name)`` and explains it.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch

from firstorder import plots
from firstorder.errors import UserValueError

VERDICTS = ("holds", "partly", "fails")


@dataclass
class Judgement:
    """The verdict, a one-line evidence for the table, and the conditions where ``partly``.

    ``takeaway`` is the one plain sentence a student keeps (written from the numbers, so it
    says what was measured, not what was hoped); ``headline`` the one number the summary table
    shows beside the verdict (for example ``"9.7× fewer steps"``).
    """

    verdict: str
    evidence: str
    conditions: str = ""
    takeaway: str = ""
    headline: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {self.verdict!r}.")


@dataclass
class Measurement:
    """What ``measure`` returns: JSON-able numbers, the figures drawn, and an explanation of
    the figures in two or three sentences."""

    numbers: dict[str, Any]
    figures: list[Path]
    explanation: str


@dataclass
class Finding:
    """One experiment's result: everything the report, the JSON and the cards show."""

    id: str
    kind: str
    title: str
    claim: str
    criterion: str
    verdict: str
    evidence: str
    conditions: str
    explanation: str
    numbers: dict[str, Any]
    figures: list[str]
    seconds: float
    takeaway: str = ""
    headline: str = ""
    # the seeds the experiment ran and the verdict each one alone gives (same order); a
    # verdict that changes with the seed is reported as such
    seeds: list[int] = field(default_factory=list)
    seed_verdicts: list[str] = field(default_factory=list)

    @property
    def seeds_agree(self) -> bool:
        """Whether every seed alone gives the finding's verdict."""
        return all(v == self.verdict for v in self.seed_verdicts)

    @classmethod
    def of(cls, experiment: Experiment, **result: Any) -> Finding:
        """The finding of ``experiment``: its id, kind, title, claim and criterion, with
        ``result`` (verdict, evidence, conditions, explanation, numbers, figures, seconds)."""
        return cls(
            id=experiment.id,
            kind=experiment.kind,
            title=experiment.title,
            claim=experiment.claim,
            criterion=experiment.criterion,
            **result,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# how many seeds a seeded experiment runs: the quick tour stays within about a minute on a
# 2-core machine, the full tour runs more
QUICK_SEEDS = 2
FULL_SEEDS = 3


@dataclass
class Context:
    """What an experiment gets: the mode, the seed and where its figures go.

    ``seeds`` is how many seeds :func:`run_experiment` measures (``seed``, ``seed`` + 1, …;
    ``None``: ``QUICK_SEEDS`` or ``FULL_SEEDS`` by the mode). ``draw`` is False for every seed
    but the first: the figures come from the first seed, the others are measured and judged
    only, and ``figure`` then discards what it is given.
    """

    quick: bool = True
    seed: int = 0
    out: Path = field(default_factory=lambda: Path("out"))
    experiment_id: str = ""
    seeds: int | None = None
    draw: bool = True

    @property
    def n_seeds(self) -> int:
        """The number of seeds a seeded experiment runs in this mode."""
        n = self.seeds if self.seeds is not None else self.pick(QUICK_SEEDS, FULL_SEEDS)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise UserValueError(f"seeds must be a whole number >= 1, got {n!r}.")
        return n

    def pick(self, quick: Any, full: Any) -> Any:
        """The quick-mode value or the full-mode value of a size (starts, steps, seeds)."""
        return quick if self.quick else full

    def figure(self, fig: plt.Figure, name: str) -> Path:
        """Save ``fig`` as ``figures/<id>_<name>.png`` under the output folder, atomically."""
        slug = re.sub(r"[^A-Za-z0-9_-]+", "_", f"{self.experiment_id}_{name}")
        if not self.draw:  # a further seed: measured and judged, not drawn
            plt.close(fig)
            return self.out / "figures" / f"{slug}.png"
        return plots.save(fig, self.out / "figures" / f"{slug}.png")


@dataclass(frozen=True)
class Experiment:
    """A claim (``kind="claim"``, id ``C1``…) or a published result (``kind="reproduction"``)."""

    id: str
    title: str
    claim: str
    criterion: str
    measure: Callable[[Context], Measurement]
    judge: Callable[[dict[str, Any]], Judgement]
    kind: str = "claim"
    # False where nothing the experiment measures depends on the seed (a fixed construction):
    # it then runs once, and no agreement over seeds is claimed
    seeded: bool = True

    @property
    def order(self) -> tuple[int, int, str]:
        m = re.fullmatch(r"C(\d+)([a-z]?)", self.id)
        if m:
            return (0, int(m.group(1)), m.group(2))
        return (1, 0, self.id)


def updates(
    optimizer: type[torch.optim.Optimizer], grads: torch.Tensor, **hyper: Any
) -> torch.Tensor:
    """Δθ_k [K, ...] of a real optimizer from θ = 0, fed the gradient sequence ``grads`` [K, ...].

    A controlled gradient sequence isolates an optimizer's mechanics from any landscape.
    Hyperparameters may be tensors broadcasting against θ, one setting per row.
    """
    theta = torch.zeros(grads.shape[1:], dtype=grads.dtype)
    opt = optimizer([theta], **hyper)
    out = torch.empty_like(grads)
    for k, g in enumerate(grads):
        before = theta.clone()
        theta.grad = g
        opt.step()
        out[k] = theta - before
    return out


EXPERIMENTS: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    """Add an experiment to the tour (ids are unique)."""
    if experiment.id in EXPERIMENTS and EXPERIMENTS[experiment.id] is not experiment:
        raise ValueError(f"experiment id must be unique, got {experiment.id!r} twice.")
    if experiment.kind not in ("claim", "reproduction"):
        raise ValueError(f"kind must be 'claim' or 'reproduction', got {experiment.kind!r}.")
    EXPERIMENTS[experiment.id] = experiment
    return experiment


def run_experiment(experiment: Experiment, ctx: Context) -> Finding:
    """Measure and judge each seed, then package the finding.

    A seeded experiment runs ``ctx.n_seeds`` seeds (``ctx.seed``, ``ctx.seed`` + 1, …); each is
    measured and judged from its own numbers alone. The figures, numbers, evidence, takeaway
    and headline are the first seed's. The verdict is the one every seed gives; where the seeds
    disagree it is ``partly``, and the conditions say that the verdict changes with the seed
    and which seed gave which. ``numbers["per_seed"]`` keeps every seed's verdict, headline and
    evidence.
    """
    n = ctx.n_seeds if experiment.seeded else 1
    seeds = [ctx.seed + i for i in range(n)]
    t0 = time.perf_counter()
    runs = []
    for i, seed in enumerate(seeds):
        c = Context(
            quick=ctx.quick, seed=seed, out=ctx.out, experiment_id=experiment.id, draw=i == 0
        )
        with one_thread():
            m = experiment.measure(c)
        numbers = _plain(json.loads(json.dumps(m.numbers, default=_jsonable)))  # plain JSON now
        runs.append((m, numbers, experiment.judge(numbers)))
    m, numbers, j = runs[0]
    verdicts = [r[2].verdict for r in runs]
    verdict, conditions, takeaway = _agreed(j, seeds, verdicts)
    if n > 1:
        numbers = {
            **numbers,
            "per_seed": [
                {
                    "seed": s,
                    "verdict": r[2].verdict,
                    "headline": r[2].headline,
                    "evidence": r[2].evidence,
                }
                for s, r in zip(seeds, runs)
            ],
        }
    return Finding.of(
        experiment,
        verdict=verdict,
        evidence=j.evidence,
        conditions=conditions,
        explanation=m.explanation,
        numbers=numbers,
        figures=[str(p) for p in m.figures],
        seconds=time.perf_counter() - t0,
        takeaway=takeaway,
        headline=j.headline,
        seeds=seeds,
        seed_verdicts=verdicts,
    )


def _agreed(j: Judgement, seeds: list[int], verdicts: list[str]) -> tuple[str, str, str]:
    """The verdict, conditions and takeaway over the seeds: the first seed's where every seed
    agrees; ``partly`` where they disagree, with the conditions saying which seed gave which."""
    if len(set(verdicts)) == 1:
        return j.verdict, j.conditions, j.takeaway
    by_verdict = {v: [s for s, w in zip(seeds, verdicts) if w == v] for v in VERDICTS}
    conditions = "the verdict changes with the seed: " + "; ".join(
        f"{v} at seed {', '.join(map(str, ss))}" for v, ss in by_verdict.items() if ss
    )
    if j.conditions:
        conditions += f" (seed {seeds[0]}: {j.conditions})"
    takeaway = f"{j.takeaway} (at seed {seeds[0]}; other seeds give another verdict)"
    return "partly", conditions, takeaway


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread, then restore the setting.

    The experiments' tensors are small: a thread pool only adds hand-offs (ten times slower on
    a busy 2-core machine), and a fixed thread count keeps the reductions, hence the numbers,
    the same from run to run.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _jsonable(value: Any) -> Any:
    """numpy and torch scalars and arrays as plain Python numbers and lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"numbers must be JSON-able, got {type(value).__name__}.")


def _plain(value: Any) -> Any:
    """Non-finite floats as the strings "inf", "-inf", "nan": results.json stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def number(value: Any) -> float:
    """A number from results.json back as a float ("inf" and "nan" included)."""
    return float(value)


# --- wording shared by the judges -----------------------------------------------------------


def _times(x: float) -> str:
    """A factor for a sentence: two significant digits, whole numbers from 100 on."""
    return f"{x:.0f}" if x >= 100 else f"{x:.2g}"


def ratio_words(ratio: float, more: str = "faster", less: str = "slower") -> str:
    """A ratio worded with its direction: 2.7 → "2.7× faster", 0.32 → "3.1× slower", and a
    ratio that reads 1 to two significant digits → "the same".

    ``ratio`` is the baseline's cost over the new one's (steps, loss), so above 1 the new one is
    ``more`` (faster, fewer steps, lower) and below 1 it is ``less`` by 1/ratio: a judge never
    prints "0.32× faster" for what is three times slower.
    """
    if math.isnan(ratio) or ratio < 0:
        return "not measurable"
    if ratio == 0 or ratio == math.inf:
        return f"infinitely {more if ratio else less}"
    up = ratio >= 1
    x = _times(ratio if up else 1 / ratio)
    if x == "1":
        return "the same"
    return f"{x}× {more if up else less}"


def ratios_words(ratios: list[float], more: str = "faster", less: str = "slower") -> str:
    """The range of several ratios worded with its direction (see :func:`ratio_words`):
    [2, 10] → "2–10× faster", [0.5, 0.1] → "2–10× slower", [0.5, 10] → "2× slower to 10× faster"."""
    lo, hi = min(ratios), max(ratios)
    a, b = ratio_words(lo, more, less), ratio_words(hi, more, less)
    if a == b:
        return a
    if lo > 1 and a.endswith(more) and b.endswith(more):
        return f"{_times(lo)}–{_times(hi)}× {more}"
    if hi < 1 and a.endswith(less) and b.endswith(less):
        return f"{_times(1 / hi)}–{_times(1 / lo)}× {less}"
    return f"{a} to {b}"


def parts_verdict(
    parts: dict[str, bool],
    evidence: str,
    conditions: str | None = None,
    *,
    held_word: str = "holds:",
    missed_word: str = "not:",
    **say: str,
) -> Judgement:
    """The verdict of a claim judged in parts: ``holds`` if every part held (and there is one),
    ``fails`` if none did, ``partly`` otherwise, with ``conditions`` (by default "holds: A, B;
    not: C", the words before each list given by ``held_word`` and ``missed_word``)."""
    held = [k for k, v in parts.items() if v]
    if held and len(held) == len(parts):  # no part at all holds nothing
        return Judgement("holds", evidence, **say)
    if not held:
        return Judgement("fails", evidence, **say)
    if conditions is None:
        missed = [k for k in parts if k not in held]
        conditions = f"{held_word} {', '.join(held)}; {missed_word} {', '.join(missed)}"
    return Judgement("partly", evidence, conditions, **say)
