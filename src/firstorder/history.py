"""The record of a training run: one :class:`Record` per logged step, gathered in a
:class:`History` that reads by column, converts to plain dictionaries and to strict JSON.

:func:`firstorder.train.train` writes it; it is importable from :mod:`firstorder.train` too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from firstorder.errors import UserValueError
from firstorder.files import from_json, to_json

__all__ = ["History", "Record"]


@dataclass
class Record:
    """The state of training after ``step`` updates (step 0: the initialization).

    ``batch_loss``, ``grad_norm`` and ``update_ratio`` describe update ``step`` itself: the
    minibatch loss and ‖g‖ at θ_{k−1}, and ‖θ_k − θ_{k−1}‖ / ‖θ_{k−1}‖. ``effective_step`` maps
    "q0", "q10", "q50", "q90", "q100" to quantiles of α/(√r̂ + ε) after the update (adaptive
    optimizers only). Accuracies are for classification; ``epoch`` counts passes over the
    training set (fractional); ``wall_time`` is seconds since training started.
    """

    step: int
    epoch: float
    train_risk: float
    test_risk: float
    train_accuracy: float | None = None
    test_accuracy: float | None = None
    batch_loss: float | None = None
    grad_norm: float | None = None
    update_ratio: float | None = None
    effective_step: dict[str, float] | None = None
    sharpness: float | None = None
    wall_time: float = 0.0


@dataclass
class History:
    """The records of one run, and where it diverged (``None``: it did not)."""

    records: list[Record] = field(default_factory=list)
    diverged_at: int | None = None
    message: str | None = None

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, name: str) -> list[Any]:
        """One column, e.g. ``history["train_risk"]``."""
        if name not in {f.name for f in fields(Record)}:
            allowed = ", ".join(f.name for f in fields(Record))
            raise UserValueError(f"name must be one of {allowed}; got {name!r}.")
        return [getattr(r, name) for r in self.records]

    @property
    def final(self) -> Record:
        """The last record."""
        return self.records[-1]

    def to_records(self) -> list[dict[str, Any]]:
        """The records as plain dictionaries (e.g. for ``pandas.DataFrame``)."""
        return [asdict(r) for r in self.records]

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.to_records(),
            "diverged_at": self.diverged_at,
            "message": self.message,
        }

    def to_json(self, indent: int | None = None) -> str:
        """Strict JSON: a non-finite number (a diverged risk) is written as null."""
        return to_json(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> History:
        return cls([Record(**r) for r in d["records"]], d["diverged_at"], d["message"])

    @classmethod
    def from_json(cls, text: str) -> History:
        return cls.from_dict(from_json(text))
