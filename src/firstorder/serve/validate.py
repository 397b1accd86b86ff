"""Checking a request to the playground's API before anything runs.

Every check raises :class:`RequestError` with the HTTP status, the offending field (as
``optimizers[1].rho``) and one sentence naming the field, the value and what is allowed. The
limits bound the work one request can ask for: at most one run of each rule × 20 starts × 2000
steps,
and a cost (:func:`within_budget`: a step of Newton counts more, and so do prefetched values)
and an answer's size. User text is only compared with the registries' names
(``landscapes.names()``, ``rules.RULES``), never evaluated.
"""

from __future__ import annotations

import json
import math
import threading
from typing import Any

from firstorder import landscapes, rules

MAX_STARTS = 20
MAX_STEPS = 2000
MAX_OPTIMIZERS = len(rules.RULES)  # one of each rule side by side
MAX_PREFETCH = 10  # values of one hyperparameter computed ahead beside an optimizer
GRID = (10, 300)  # allowed n of the contour grid
MAX_BODY = 64 * 1024  # bytes of a request body
RUN_FIELDS = ("landscape", "optimizers", "starts", "steps", "tol_f")


class RequestError(ValueError):
    """A bad request: the HTTP status, the offending field and one sentence."""

    def __init__(self, status: int, field: str, message: str):
        super().__init__(message)
        self.status, self.field = status, field


def show(value: object, limit: int = 40) -> str:
    """The user's value for an error message, cut short (it is data, shown, never run)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- the landscapes -----------------------------------------------------------------------------

_landscapes: dict[str, landscapes.Landscape] = {}
_lock = threading.Lock()


def landscape(name: object, field: str = "landscape", status: int = 422):
    """The 2-D surface ``name`` of the obstacle course, built once per process."""
    if not isinstance(name, str) or name not in names():
        raise RequestError(
            status, field, f"{field} must be one of {', '.join(names())}; got {show(name)}."
        )
    with _lock:
        if name not in _landscapes:
            _landscapes[name] = landscapes.get(name)
    return _landscapes[name]


def names() -> list[str]:
    """The surfaces the playground offers: all of them (each is 2-D with its defaults)."""
    return landscapes.names()


# --- a run request ------------------------------------------------------------------------------


def _number(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(422, field, f"{field} must be a number, got {show(value)}.")
    try:
        number = float(value)  # JSON's integers have no bound: 10**400 written out is one
    except OverflowError:
        message = f"{field} must be a finite number, got an integer too large for a float."
        raise RequestError(422, field, message) from None
    if not math.isfinite(number):
        raise RequestError(422, field, f"{field} must be a finite number, got {value}.")
    return number


def _integer(value: object, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    ):
        raise RequestError(422, field, f"{field} must be an integer, got {show(value)}.")
    if not lo <= value <= hi:
        raise RequestError(422, field, f"{field} must be between {lo} and {hi}, got {show(value)}.")
    return int(value)


def _name(spec: object, field: str) -> rules.Rule:
    """The rule that ``spec["name"]`` names."""
    if not isinstance(spec, dict):
        raise RequestError(422, field, f"{field} must be an object, got {show(spec)}.")
    name = spec.get("name")
    if not isinstance(name, str) or name not in rules.RULES:
        raise RequestError(
            422,
            f"{field}.name",
            f"{field}.name must be one of {', '.join(rules.RULES)}; got {show(name)}.",
        )
    return rules.RULES[name]


def _value(key: str, value: object, field: str) -> object:
    """``field.key``, one hyperparameter's value, checked against its spec in
    rules.HYPERPARAMETERS (a switch is true or false, a number in its domain)."""
    where = f"{field}.{key}"
    if rules.HYPERPARAMETERS[key].switch:
        if not isinstance(value, bool):
            raise RequestError(422, where, f"{where} must be true or false, got {show(value)}.")
        return value
    number = _number(value, where)
    try:
        rules.check(key, number)
    except (ValueError, TypeError) as err:
        raise RequestError(422, where, f"{field}.{err}") from None
    return number


def _optimizer(spec: object, field: str) -> tuple[str, dict[str, object]]:
    rule = _name(spec, field)
    hyper: dict[str, object] = {}
    for key, value in spec.items():
        if key in ("name", "prefetch"):
            continue
        where = f"{field}.{key}"
        if key not in rule.hyper:
            raise RequestError(
                422,
                where,
                f"{where} is not a hyperparameter of {rule.name}; "
                f"allowed: {', '.join(rule.hyper)}.",
            )
        hyper[key] = _value(key, value, field)
    for key, default in rule.hyper.items():
        if default is None and key not in hyper:
            raise RequestError(
                422, f"{field}.{key}", f"{field}.{key} must be given for {rule.name}."
            )
    return rule.name, hyper


def _prefetch(spec: dict, field: str) -> tuple[str, list[float]] | None:
    """``prefetch``: {"lr": [values]}, more values of one hyperparameter of the optimizer, to run
    beside it and keep for the next requests (a slider's neighbouring positions)."""
    if "prefetch" not in spec:
        return None
    where = f"{field}.prefetch"
    value = spec["prefetch"]
    rule = rules.RULES[spec["name"]]
    allowed = rule.numbers  # a switch has two values, none to compute ahead
    if not isinstance(value, dict) or len(value) != 1:
        raise RequestError(
            422, where, f"{where} must be one hyperparameter and its values, got {show(value)}."
        )
    ((key, values),) = value.items()
    if key not in allowed:
        message = f"{where} must name one of {', '.join(allowed)}, got {show(key, 30)}."
        raise RequestError(422, f"{where}.{str(key)[:30]}", message)
    if not isinstance(values, list) or not 1 <= len(values) <= MAX_PREFETCH:
        got = f"{len(values)} of them" if isinstance(values, list) else show(values)
        message = f"{where}.{key} must be a list of 1 to {MAX_PREFETCH} numbers, got {got}."
        raise RequestError(422, f"{where}.{key}", message)
    checked = []
    for j, v in enumerate(values):
        at = f"{where}.{key}[{j}]"
        checked.append(_number(v, at))
        try:
            rules.check(key, checked[-1])
        except (ValueError, TypeError) as err:
            raise RequestError(422, at, f"{at}: {err}") from None
    return key, checked


def grid_size(text: str) -> int:
    """The n of ``GET /api/landscape/NAME?n=...``: an integer in GRID."""
    try:
        n = int(text)
    except ValueError:
        raise RequestError(422, "n", f"n must be an integer, got {show(text)}.") from None
    return _integer(n, "n", *GRID)


def _json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object holding only the fields of RUN_FIELDS."""
    if len(body) > MAX_BODY:
        raise RequestError(413, "body", f"body must be at most {MAX_BODY} bytes, got more.")

    def no_constants(word: str) -> float:
        raise ValueError(f"{word} is not a JSON number")

    try:
        data = json.loads(body, parse_constant=no_constants)
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError too
        raise RequestError(400, "body", f"body must be valid JSON: {str(err)[:80]}.") from None
    if not isinstance(data, dict):
        raise RequestError(400, "body", f"body must be a JSON object, got {type(data).__name__}.")
    for key in data:
        if key not in RUN_FIELDS:
            raise RequestError(
                422,
                str(key)[:30],
                f"{show(key, 30)} is not a field; allowed: {', '.join(RUN_FIELDS)}.",
            )
    return data


def _optimizers(opts: object) -> tuple[list, dict]:
    """The optimizers asked for, and the values of one hyperparameter each prefetches."""
    if not isinstance(opts, list) or not 1 <= len(opts) <= MAX_OPTIMIZERS:
        got = f"{len(opts)} of them" if isinstance(opts, list) else show(opts)
        raise RequestError(
            422, "optimizers", f"optimizers must be a list of 1 to {MAX_OPTIMIZERS}, got {got}."
        )
    optimizers = [_optimizer(o, f"optimizers[{i}]") for i, o in enumerate(opts)]
    prefetch = {i: _prefetch(o, f"optimizers[{i}]") for i, o in enumerate(opts)}
    return optimizers, {i: p for i, p in prefetch.items() if p is not None}


def _starts(starts: object, dim: int) -> list[list[float]]:
    """The start points, each [x, y]."""
    if not isinstance(starts, list) or not 1 <= len(starts) <= MAX_STARTS:
        got = f"{len(starts)} of them" if isinstance(starts, list) else show(starts)
        raise RequestError(
            422, "starts", f"starts must be a list of 1 to {MAX_STARTS} points [x, y], got {got}."
        )
    points = []
    for i, p in enumerate(starts):
        if not isinstance(p, list) or len(p) != dim:
            raise RequestError(
                422, f"starts[{i}]", f"starts[{i}] must be [x, y] (2 numbers), got {show(p)}."
            )
        points.append([_number(v, f"starts[{i}][{j}]") for j, v in enumerate(p)])
    return points


def _tol_f(tol_f: object) -> float | None:
    if tol_f is None:
        return None
    tol_f = _number(tol_f, "tol_f")
    if tol_f <= 0:
        raise RequestError(422, "tol_f", f"tol_f must be a number > 0, got {tol_f}.")
    return tol_f


def parse_run(body: bytes) -> dict[str, Any]:
    """The run request in ``body``, validated: raise RequestError naming the first bad field."""
    data = _json_object(body)
    f = landscape(data.get("landscape"))
    optimizers, prefetch = _optimizers(data.get("optimizers"))
    points = _starts(data.get("starts"), f.dim)
    steps = _integer(data.get("steps", 500), "steps", 1, MAX_STEPS)
    return {
        "landscape": f.name,
        "optimizers": optimizers,
        "starts": points,
        "steps": steps,
        "tol_f": _tol_f(data.get("tol_f")),
        "prefetch": within_budget(optimizers, prefetch, len(points), steps),
    }


# --- what a request costs -------------------------------------------------------------------
#
# The counts above bound a request's size, not its cost: 6 Newton runs with 10 prefetched values
# each, 20 starts and 2000 steps took 93 s and a 14.5 MB answer. A run's cost is counted in
# trajectory steps: every step of every trajectory counts 1, plus fixed costs per step that do
# not depend on how many trajectories run: the observation of f and ∇f (OBSERVE_COST, once) and
# each optimizer's update (RULE_COST; NEWTON_COST for Newton, whose batched Hessian dominates).
# Measured eagerly (one thread, 2-core VM, torch 2.13 CPU) on rosenbrock and rastrigin, 1 unit is
# about 1 µs or less: a first-order step of 1 to 1320 trajectories 0.23–0.86 ms, Newton's
# 4.6–6.6 ms. Compiled runs take about a quarter of that (Newton is not compiled).
OBSERVE_COST = 300
RULE_COST = 300
NEWTON_COST = 6000
MAX_COST = 15_000_000  # one Newton run of 20 starts × 2000 steps fits (12.6 million)
BYTES_PER_NUMBER = 24  # the longest float64 in the answer's JSON: "-1.2345678901234567e-123,"
MAX_ANSWER = 20_000_000  # bytes of the answer, bounded before anything runs


def cost(optimizers: list[tuple[str, dict]], configs: list[int], B: int, steps: int) -> int:
    """Trajectory steps of a run of ``optimizers``, the i-th with ``configs[i]`` configurations
    (1 + its prefetched values), from B starts for ``steps`` steps, fixed costs included."""
    per_step = OBSERVE_COST
    for (name, _), C in zip(optimizers, configs):
        per_step += (NEWTON_COST if rules.RULES[name].needs_hessian else RULE_COST) + C * B
    return steps * per_step


def answer_bytes(optimizers: list[tuple[str, dict]], B: int, steps: int, d: int = 2) -> int:
    """An upper bound of the answer's size: per optimizer and start, x [T+1][d], f [T+1],
    step_length [T], for adaptive rules effective_step [T][d], and the steps at which it
    diverged, escaped and reached the target."""
    numbers = 0
    for name, _ in optimizers:
        adaptive = rules.RULES[name].r_hat is not None
        numbers += B * ((steps + 1) * (d + 1) + steps * (1 + (d if adaptive else 0)) + 3)
    return numbers * BYTES_PER_NUMBER


def within_budget(
    optimizers: list[tuple[str, dict]],
    prefetch: dict[int, tuple[str, list[float]]],
    B: int,
    steps: int,
) -> dict[int, tuple[str, list[float]]]:
    """Refuse a request whose asked-for runs cost more than MAX_COST or answer more than
    MAX_ANSWER bytes; return ``prefetch`` cut to what the rest of the budget pays for (values
    computed ahead are a guess at the next request: the first ones, the nearest, are kept)."""
    asked = cost(optimizers, [1] * len(optimizers), B, steps)
    if asked > MAX_COST:
        raise RequestError(
            422,
            "request",
            f"request must cost at most {MAX_COST:,} trajectory steps (about 15 s), got "
            f"{asked:,} for {len(optimizers)} optimizers × {B} starts × {steps} steps (a step "
            f"of Newton counts {NEWTON_COST:,}); ask for fewer steps, starts or optimizers.",
        )
    size = answer_bytes(optimizers, B, steps)
    if size > MAX_ANSWER:
        raise RequestError(
            422,
            "request",
            f"request's answer must be at most {MAX_ANSWER / 1e6:g} MB, and "
            f"{len(optimizers)} optimizers × {B} starts × {steps} steps may take "
            f"{size / 1e6:.3g} MB; ask for fewer steps, starts or optimizers.",
        )
    left, kept = MAX_COST - asked, {}
    for i, (key, values) in prefetch.items():
        n = min(len(values), left // (steps * B))
        if n:
            kept[i] = (key, values[:n])
            left -= n * steps * B
    return kept
