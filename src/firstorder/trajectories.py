"""What :func:`firstorder.run.run` returns: trajectories, their tidy table, and their summary.

``Trajectories`` holds C configurations × B starts of one rule on one landscape;
:func:`summarize` turns it into one row per configuration (success rate, median steps to the
target, median final gap f(x_T) − f*), as the claims' experiments and ``firstorder run`` report.
"""

from __future__ import annotations

import csv
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from firstorder.errors import UserValueError
from firstorder.files import to_json, write_atomic


@dataclass
class Trajectories:
    """The result of :func:`firstorder.run.run`: trajectories of C configurations × B starts.

    Tensors recorded per step have a leading time axis of length T+1 (the start included):
    ``x`` [T+1, C, B, d], ``f`` and ``grad_norm`` [T+1, C, B], ``step_length`` [T, C, B] and,
    for adaptive rules, ``effective_step`` α/(√r̂+ε) [T, C, B, d]. After a trajectory stops,
    its recorded values stay at the values where it stopped.
    ``steps_to_target`` and ``diverged_at`` are [C, B] step counts, −1 where it did not happen;
    so is ``escaped_at`` on a surface unbounded below (None elsewhere): the step at which a
    finite trajectory left ``bound``, going down for ever (a saddle left behind, not a blow-up).
    :meth:`outcome` says which of these happened to one trajectory.
    """

    optimizer: str
    landscape: str
    hyper: dict[str, list]
    starts: Tensor
    steps: int
    f: Tensor
    grad_norm: Tensor
    step_length: Tensor
    x: Tensor | None
    effective_step: Tensor | None
    steps_to_target: Tensor
    diverged_at: Tensor
    final_x: Tensor
    final_f: Tensor
    f_star: float | None = None
    meta: dict = field(default_factory=dict)
    escaped_at: Tensor | None = None

    @property
    def configs(self) -> int:
        return self.final_x.shape[0]

    def config(self, c: int) -> dict[str, object]:
        """The hyperparameters of configuration c."""
        return {name: values[c] for name, values in self.hyper.items()}

    def outcome(self, c: int, b: int) -> tuple[str, int | None]:
        """How trajectory (c, b) ended and at which step: ``("reached", k)``, ``("diverged",
        k)``, ``("escaped", k)``, or ``("budget", None)`` (still going when the steps ran out)."""
        for status, at in (
            ("reached", self.steps_to_target),
            ("diverged", self.diverged_at),
            ("escaped", self.escaped_at),
        ):
            if at is not None and int(at[c, b]) >= 0:
                return status, int(at[c, b])
        return "budget", None

    def records(self) -> list[dict[str, object]]:
        """A tidy table: one row per trajectory (configuration × start)."""
        rows = []
        for c in range(self.configs):
            for b in range(self.starts.shape[0]):
                reached = int(self.steps_to_target[c, b])
                diverged = int(self.diverged_at[c, b])
                rows.append(
                    {
                        "optimizer": self.optimizer,
                        "landscape": self.landscape,
                        **self.config(c),
                        "start": b,
                        **{f"x0_{i}": float(v) for i, v in enumerate(self.starts[b])},
                        "final_f": float(self.final_f[c, b]),
                        **{f"x_{i}": float(v) for i, v in enumerate(self.final_x[c, b])},
                        "steps_to_target": reached if reached >= 0 else None,
                        "diverged_at": diverged if diverged >= 0 else None,
                    }
                )
                if self.escaped_at is not None:
                    escaped = int(self.escaped_at[c, b])
                    rows[-1]["escaped_at"] = escaped if escaped >= 0 else None
        return rows

    def save(self, path: str | os.PathLike) -> Path:
        """Write the tidy table as CSV or JSON (by the file's suffix), atomically; in JSON a
        non-finite number is null (:func:`firstorder.files.to_json`), in CSV it is inf or nan."""
        path = Path(path)
        rows = self.records()
        if path.suffix == ".json":
            text = to_json(rows, indent=1)  # a diverged final_f is null
        elif path.suffix == ".csv":
            with tempfile.SpooledTemporaryFile(mode="w+", newline="") as buf:
                writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
                buf.seek(0)
                text = buf.read()
        else:
            raise UserValueError(f"path must end in .csv or .json, got {str(path)!r}.")
        return write_atomic(path, text)


def final_gap(result: Trajectories) -> Tensor:
    """f(x_T) − f* for every trajectory [C, B] (+inf where it diverged)."""
    if result.f_star is None:
        raise UserValueError(
            f"landscape must list its minima to measure a gap, got {result.landscape}."
        )
    gap = result.final_f - result.f_star
    return torch.where(result.diverged_at >= 0, torch.inf, gap)


def summarize(result: Trajectories) -> list[dict[str, object]]:
    """One row per configuration: the fractions of its starts that reached the target, that
    diverged (and, on a surface unbounded below, that escaped), the median steps to the target
    of those that reached it and the median final gap f(x_T) − f* (inf once half diverged)."""
    rows = []
    for c in range(result.configs):
        reached = result.steps_to_target[c]
        ok = reached >= 0
        row = {
            **result.config(c),
            "success": float(ok.double().mean()),
            "median_steps": float(reached[ok].double().median()) if ok.any() else None,
            "diverged": float((result.diverged_at[c] >= 0).double().mean()),
        }
        if result.escaped_at is not None:
            esc = result.escaped_at[c]
            row["escaped"] = float((esc >= 0).double().mean())
            row["median_escape_steps"] = (
                float(esc[esc >= 0].double().median()) if (esc >= 0).any() else None
            )
        if result.f_star is not None:
            row["median_gap"] = float(final_gap(result)[c].median())
        rows.append(row)
    return rows


__all__ = ["Trajectories", "final_gap", "summarize"]
