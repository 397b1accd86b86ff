"""The kernels' common machinery: trace a function once and compile it with inductor, build it
in the background, and fall back to the eager form with one warning where compiling fails."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.fx.experimental.proxy_tensor import make_fx


def warn_not_compiled(what: str, err: Exception, instead: str) -> None:
    """One ``RuntimeWarning``: ``what`` could not be compiled, why (the backend's own error, not
    dynamo's wrapper around it), and what runs ``instead``."""
    cause = getattr(err, "inner_exception", None) or err
    reason = str(cause).strip().splitlines()[0][:200] if str(cause).strip() else ""
    warnings.warn(
        f"{what} could not be compiled ({type(cause).__name__}: {reason}); {instead} instead.",
        RuntimeWarning,
        stacklevel=3,
    )


def traced(fn: Callable[..., Any], *example: Tensor) -> Callable[..., Any]:
    """``fn`` compiled by inductor for tensors shaped like ``example``, every size symbolic.

    Why not ``torch.compile``: dynamo checks its guards at every call, about 150 µs on this
    project's machine against 15 µs for the kernel of a small batch, and a 500-step run of the
    engine makes 500 calls. ``make_fx`` traces ``fn`` once (sizes symbolic, so one kernel serves
    every batch) and inductor compiles the graph; a call then runs the kernel with nothing to
    check but sizes and strides (contiguous inputs). The example sizes must differ from each
    other and from 0 and 1, where they are not always equal: sizes equal when traced are assumed
    equal forever. ``fn`` may write into its inputs.
    """
    gm = make_fx(fn, tracing_mode="symbolic", _allow_non_fake_inputs=True)(*example)
    fake_inputs = [n.meta["val"] for n in gm.graph.nodes if n.op == "placeholder"]
    return torch._inductor.compile(gm, fake_inputs)


_building = threading.Lock()  # one compilation at a time: they would share inductor's state


class Deferred:
    """A kernel that ``build()`` compiles once: at the first :meth:`get`, or earlier in a
    background thread with :meth:`warm_up` (the playground starts them when a page opens).

    :meth:`get` returns None while a background build runs and where the build failed (one
    ``RuntimeWarning`` naming ``what``): the caller then runs the eager form.
    """

    def __init__(self, build: Callable[[], Callable[..., Any]], what: str) -> None:
        self.build, self.what = build, what
        self._kernel: Callable[..., Any] | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._started = False

    def warm_up(self, *, wait: bool = False) -> None:
        """Start building, in a background thread unless ``wait``; once only."""
        with self._lock:
            first, self._started = not self._started, True
        if first and wait:
            self._build()
        elif first:
            threading.Thread(target=self._build, name="firstorder-compile", daemon=True).start()
        elif wait:
            self._done.wait()

    def _build(self) -> None:
        try:
            with _building:
                self._kernel = self.build()
        except Exception as err:  # no C++ compiler, an operation that cannot be traced
            warn_not_compiled(self.what, err, "running it eagerly")
        finally:
            self._done.set()

    @property
    def ready(self) -> bool:
        """Whether :meth:`get` returns the kernel now."""
        return self._kernel is not None and self._done.is_set()

    def get(self) -> Callable[..., Any] | None:
        """The kernel, built now if nobody started it; None while it builds in the background
        or if it could not be built."""
        if not self._started:
            self.warm_up(wait=True)
        return self._kernel if self._done.is_set() else None
