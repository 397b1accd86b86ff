"""The kernels' one pipeline: trace a function once with ``make_fx``, compile the graph with
inductor, build it in the background, and say once where compiling is impossible."""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, fx
from torch._dynamo.source import ConstantSource
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.proxy_tensor import make_fx
from torch.fx.experimental.symbolic_shapes import ShapeEnv

# What inductor generates code for here: its C++ backend on the CPU and Triton on CUDA, for the
# floating-point dtypes a rule computes in.
_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_DEVICES = ("cpu", "cuda")
_warned: set[str] = set()  # the reasons already given: one warning each per process


def warn_not_compiled(what: str, err: Exception | str, instead: str) -> None:
    """One ``RuntimeWarning`` per reason and process: ``what`` could not be compiled, why (the
    backend's own error, not a wrapper around it), and what runs ``instead``."""
    if isinstance(err, Exception):
        cause = getattr(err, "inner_exception", None) or err
        reason = str(cause).strip().splitlines()[0][:200] if str(cause).strip() else ""
        reason = f"{type(cause).__name__}: {reason}"
    else:
        reason = err
    if reason in _warned:
        return
    _warned.add(reason)
    warnings.warn(
        f"{what} could not be compiled ({reason}); {instead} instead.", RuntimeWarning, stacklevel=3
    )


def impossible(dtype: torch.dtype, device: torch.device) -> str | None:
    """Why a kernel for tensors of ``dtype`` on ``device`` cannot be compiled here, or None.

    A missing C++ compiler shows only when inductor runs it: :class:`Deferred` reports that."""
    # torch reads TORCH_COMPILE_DISABLE=1 into the config; TORCHDYNAMO_DISABLE=1 is its older name
    if torch._dynamo.config.disable or os.environ.get("TORCHDYNAMO_DISABLE") == "1":
        return "torch.compile is disabled (TORCH_COMPILE_DISABLE=1 or TORCHDYNAMO_DISABLE=1)"
    if dtype not in _DTYPES:
        return f"dtype {dtype} is not one of {', '.join(map(str, _DTYPES))}"
    if torch.device(device).type not in _DEVICES:
        return f"device {device} is not one of {', '.join(_DEVICES)}"
    return None


def trace(fn: Callable[..., Any], *example: Tensor) -> fx.GraphModule:
    """``fn`` on tensors shaped like ``example`` as an aten graph, every size symbolic.

    The example sizes must differ from each other and from 0 and 1, where they are not always
    equal: sizes equal when traced are assumed equal forever. The examples must be distinct
    tensor objects (one object passed twice becomes one input). ``fn`` may write into its
    inputs and returns ``()``."""
    mode = FakeTensorMode(shape_env=ShapeEnv(), allow_non_fake_inputs=True)  # fn's constants
    # No source for a 0-d tensor: with one, a float64 0-d tensor on the CPU would become a
    # symbolic float, which inductor then refuses to compile (it wants dynamo to restart)
    fakes = [
        mode.from_tensor(t, source=ConstantSource(f"input{i}") if t.dim() else None)
        for i, t in enumerate(example)
    ]
    return make_fx(fn, tracing_mode="symbolic")(*fakes)


def inputs_of(gm: fx.GraphModule) -> list[Tensor]:
    """The fake tensors a traced graph was made with, one per input (what inductor takes)."""
    return [n.meta["val"] for n in gm.graph.nodes if n.op == "placeholder"]


def traced(fn: Callable[..., Any], *example: Tensor) -> Callable[..., Any]:
    """``fn`` compiled by inductor for tensors shaped like ``example`` (see :func:`trace`).

    Why not ``torch.compile``: dynamo checks its guards at every call, about 150 µs on this
    project's machine against 15 µs for the kernel of a small batch, and a 500-step run of the
    engine makes 500 calls. ``make_fx`` traces ``fn`` once (sizes symbolic, so one kernel serves
    every size) and inductor compiles the graph; a call then runs the kernel with nothing to
    check but sizes and strides (contiguous inputs).
    """
    gm = trace(fn, *example)
    return torch._inductor.compile(gm, inputs_of(gm))


_building = threading.Lock()  # one compilation at a time: they would share inductor's state


class Deferred:
    """A kernel that ``build()`` compiles once: at the first :meth:`get`, or earlier in a
    background thread with :meth:`warm_up` (the optimizers start them when they are made, the
    playground when a page opens).

    :meth:`get` returns None while a background build runs and where the build failed (one
    ``RuntimeWarning`` naming ``what``): the caller then runs the eager form. The thread is not
    a daemon: the interpreter waits for a build to end before it exits, instead of tearing
    inductor down under it.
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
            threading.Thread(target=self._build, name="firstorder-compile").start()
        elif wait:
            self._done.wait()

    def _build(self) -> None:
        try:
            with _building:
                self._kernel = self.build()
        except Exception as err:  # no C++ compiler, an operation that cannot be traced
            # once the main thread has ended, the interpreter is shutting down (inductor's
            # thread pools refuse new work): nobody will call the kernel, nothing to say
            if threading.main_thread().is_alive():
                warn_not_compiled(self.what, err, "running it eagerly")
        finally:
            self._done.set()

    @property
    def ready(self) -> bool:
        """Whether :meth:`get` returns the kernel now."""
        return self._kernel is not None and self._done.is_set()

    def get(self, *, wait: bool = True) -> Callable[..., Any] | None:
        """The kernel; built now if nobody started it (``wait``) or in the background (not
        ``wait``). None while it builds in the background or if it could not be built."""
        if not self._started:
            self.warm_up(wait=wait)
        return self._kernel if self._done.is_set() else None
