"""Every claim of the notes as an experiment with a measured verdict.

One module per claim (or per published result reproduced beside the claims). Each module
registers an :class:`Experiment`: the claim quoted, the criterion stated before the run, a
``measure`` function that runs the real optimizers and draws the figures, and a ``judge``
function that turns the measured numbers into ``holds``, ``partly`` or ``fails``. Keeping
``judge`` a pure function of the numbers is what lets a test feed it numbers that contradict
the claim and watch the verdict flip: the criterion can fail.

Modules are discovered, not listed: a new file in this package that calls :func:`register`
joins the tour.
"""

from __future__ import annotations

import importlib
import pkgutil

from firstorder.errors import UserValueError
from firstorder.experiments.base import (
    EXPERIMENTS,
    VERDICTS,
    Context,
    Experiment,
    Finding,
    Judgement,
    Measurement,
    register,
    run_experiment,
)

__all__ = [
    "EXPERIMENTS",
    "VERDICTS",
    "Context",
    "Experiment",
    "Finding",
    "Judgement",
    "Measurement",
    "all_experiments",
    "get",
    "register",
    "run_experiment",
]

_loaded = False


def _discover() -> None:
    global _loaded
    if _loaded:
        return
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_") and info.name != "base":
            importlib.import_module(f"{__name__}.{info.name}")
    _loaded = True


def all_experiments() -> list[Experiment]:
    """Every registered experiment: the claims in the notes' order, then the reproductions."""
    _discover()
    return sorted(EXPERIMENTS.values(), key=lambda e: e.order)


def get(experiment_id: str) -> Experiment:
    """The experiment registered under ``experiment_id`` (for example ``"C6"``)."""
    _discover()
    by_lower = {e.lower(): e for e in EXPERIMENTS}  # "c8a", "C8a" and "C8A" all name C8a
    try:
        return EXPERIMENTS[by_lower[experiment_id.strip().lower()]]
    except KeyError:
        known = ", ".join(e.id for e in all_experiments())
        raise UserValueError(f"experiment must be one of {known}; got {experiment_id!r}.") from None
