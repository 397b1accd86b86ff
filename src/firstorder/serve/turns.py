"""Runs take turns: one at a time, in short slices, and a run whose client has gone stops.

The playground's runs share the CPU. Two at once only slow each other down, so one runs at a
time; but a run holds its turn for one slice only (``SLICE`` seconds) while others wait, then
goes to the back of the queue, first come first served. A small request therefore waits a few
slices, not the whole of a long run ahead of it.

The slices are cut where the engine already stops at every step: the observation of f and ∇f
(:class:`firstorder.observe.Observer`). :class:`Paced` wraps the observer a run would use; at
each step it checks whether the run was cancelled (its client disconnected, or it ran past
``MAX_SECONDS`` of its own time) and whether its slice is over and someone is waiting.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

SLICE = 0.05  # seconds a run keeps the CPU while another waits: a few steps of the slowest rule
MAX_SECONDS = 60.0  # a run's own time, waits not counted: beyond every request the budget allows


class Cancelled(Exception):
    """The run was stopped: its client went away, or it ran past MAX_SECONDS."""


class Turns:
    """A first-come-first-served turn for the CPU, handed on between slices."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()

    def take(self, who: object, cancel: threading.Event) -> None:
        """Wait for ``who``'s turn (raise Cancelled, leaving the queue, if ``cancel`` is set)."""
        with self._cond:
            self._queue.append(who)
            while self._queue[0] is not who:
                if cancel.is_set():
                    self._queue.remove(who)
                    self._cond.notify_all()
                    raise Cancelled("the client went away")
                self._cond.wait(timeout=0.1)  # wakes to look at cancel as well

    def give(self, who: object) -> None:
        """End ``who``'s turn: the next in the queue runs."""
        with self._cond:
            if who in self._queue:  # not when its wait was cancelled
                self._queue.remove(who)
            self._cond.notify_all()

    def running(self) -> bool:
        """Whether a run holds the turn."""
        with self._cond:
            return bool(self._queue)

    def waiting(self) -> int:
        """How many runs wait behind the one running."""
        with self._cond:
            return max(len(self._queue) - 1, 0)


class Paced:
    """An observer that runs in turns: ``Paced(observer, turns, cancel)`` observes exactly as
    ``observer`` does (the same numbers), and between two observations hands the CPU on when
    its slice is over and a run waits, or raises Cancelled when ``cancel`` is set."""

    def __init__(self, observer: Callable, turns: Turns, cancel: threading.Event):
        self.observer, self.turns, self.cancel = observer, turns, cancel
        self.steps = 0  # observations made: the steps taken, the start included
        self.seconds = 0.0  # the run's own time, waits not counted

    def __enter__(self) -> Paced:
        self.turns.take(self, self.cancel)
        self._since = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds += time.perf_counter() - self._since
        self.turns.give(self)

    def __call__(self, *args: object, **kwargs: object):
        now = time.perf_counter()
        if self.cancel.is_set():
            raise Cancelled("the client went away")
        if self.seconds + now - self._since > MAX_SECONDS:
            raise Cancelled(f"the run must take at most {MAX_SECONDS:g} s, and it took longer")
        if now - self._since > SLICE and self.turns.waiting():
            self.seconds += now - self._since
            self.turns.give(self)  # to the back of the queue: the others run a slice each
            self.turns.take(self, self.cancel)
            self._since = time.perf_counter()
        self.steps += 1
        return self.observer(*args, **kwargs)
