"""How much memory a batched run needs, and refusing up front one that cannot fit.

A run that records every step keeps C·B numbers per recorded quantity and step (C
configurations, B starts); a large grid can need far more than the machine has, and would run
for minutes before being killed. :func:`check` refuses it at once, with its size.
"""

from __future__ import annotations

import os

import torch

from firstorder.errors import UserValueError

# numbers kept per configuration, start and step: f, ‖∇f‖, the step length ‖x_{k+1} − x_k‖ and
# a spare for the temporaries of the stacking (record="full" keeps x and, for adaptive rules, r:
# 2d more, and the effective steps α/(√r̂ + ε) made from them: d more). Doubled, they bound the
# peak measured for 400 configurations × 100 starts × 1000 steps of Adam on a 2-D surface:
# 7.8 numbers a step with "curves" (bound 8), 18.2 with "full" (bound 20).
RECORDED = {"final": lambda d: 0, "curves": lambda d: 4, "full": lambda d: 4 + 3 * d}
# below this many bytes a run is not checked: reading /proc/meminfo costs more than such a
# run (60 µs against 0.8 ms for the playground's 55 trajectories × 500 steps)
SMALL = 1 << 26
WORKING = 16  # d-vectors per configuration and start while stepping: x, ∇f, state, temporaries


def check(C: int, B: int, d: int, steps: int, record: str, dtype: torch.dtype) -> None:
    """Refuse up front a run whose recording cannot fit in memory (rather than run for minutes
    and then be killed): about C·B·((T+1)·n·2 + 16·d) numbers, n numbers recorded per step,
    twice (the list of steps, then the stacked tensor), against half the memory available."""
    need = C * B * ((steps + 1) * RECORDED[record](d) * 2 + WORKING * d) * dtype.itemsize
    if need < SMALL:
        return
    allowed = memory_available() // 2
    if need > allowed:
        raise UserValueError(
            f"the grid must fit in memory: {C} configurations × {B} starts × {steps + 1} "
            f"steps recorded as {record!r} need about {need / 1e9:.3g} GB, and at most "
            f"{allowed / 1e9:.3g} GB (half the memory available) is allowed; use fewer "
            f"configurations, starts or steps (or, from Python, record='final')."
        )


def memory_available() -> int:
    """Bytes of memory available to a new allocation: Linux's MemAvailable (free memory plus
    caches it can drop), else the free pages as ``os.sysconf`` counts them."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: no bound known
        return 2**63
