"""What the playground shows about each optimizer, built from :mod:`firstorder.rules`.

``GET /api/landscapes`` answers :func:`optimizers`; the page draws its checkboxes, equations,
colours and sliders from it and keeps no table of its own, so a rule added to ``rules.RULES``
appears in the playground without a line of JavaScript.
"""

from __future__ import annotations

from typing import Any

from firstorder import rules


def hyperparameter(name: str) -> dict[str, Any]:
    """One hyperparameter's spec as JSON: the notes' symbol, its meaning, the allowed values
    in words, a switch or a number, and for a number how a slider spaces it (``scale``) and
    over what range (``span``, in the scale's units)."""
    h = rules.HYPERPARAMETERS[name]
    spec: dict[str, Any] = {
        "name": h.name,
        "symbol": h.symbol,
        "meaning": h.meaning,
        "allowed": h.allowed,
        "switch": h.switch,
    }
    if not h.switch:
        spec["scale"] = h.scale
        spec["span"] = list(h.span)
    return spec


def optimizer(rule: rules.Rule) -> dict[str, Any]:
    """One rule as the page needs it. ``hyper`` holds the rule's defaults (null where the user
    must give a value); ``start`` the values the page begins with (α that behaves on
    Rosenbrock, ``Rule.landscape_lr``), so that no value is null there."""
    start = dict(rule.hyper)
    if rule.landscape_lr is not None:
        start["lr"] = rule.landscape_lr
    return {
        "name": rule.name,
        "label": rule.label,
        "equation": rule.equation,
        "formula": rule.formula,
        "color": rule.color,
        "adaptive": rule.adaptive,  # it has an effective step size α/(√r̂ + ε) to plot
        "hyper": dict(rule.hyper),
        "start": start,
        "hyperparameters": [hyperparameter(n) for n in rule.hyper],
    }


def optimizers() -> list[dict[str, Any]]:
    """Every rule of ``rules.RULES``, in its order."""
    return [optimizer(rule) for rule in rules.RULES.values()]


__all__ = ["hyperparameter", "optimizer", "optimizers"]
