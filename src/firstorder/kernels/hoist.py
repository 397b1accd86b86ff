"""Hoisting: a rule's arithmetic on hyperparameters (0-d tensors) moved out of the compiled loop.

An optimizer step is bound by memory bandwidth: Adam must read θ, g, s, r and write θ, s, r,
28 bytes per float32 parameter, and a fast step does nothing else. Run eagerly, each tensor
operation of a rule is its own pass over memory; inductor fuses them into one.

Fusion alone is not enough. The hyperparameters reach the compiled graph as 0-d tensors (so
that a scheduler changing α does not recompile), and inductor inlines every operation on them
into the loop over elements: Adam's bias corrections 1 − ρᵏ would be two ``pow`` calls per
eight parameters, which made the compiled step four times slower than torch's fused kernel.
:func:`hoisted` first moves every operation whose inputs are all 0-d tensors out of the graph
into a *prelude* that runs once per step, then hands the rest, the loop, to inductor. A
division by such a value becomes a multiplication by its reciprocal (computed in the prelude in
float64), the strength reduction a compiler applies to a loop-invariant divisor; it changes a
result by at most one rounding. On the CPU the prelude runs as arithmetic on Python floats
(:func:`on_floats`), the same IEEE double arithmetic at a fraction of the cost of a dozen eager
operations on 0-d tensors.
"""

from __future__ import annotations

import functools
import operator
import struct
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, fx

from firstorder.kernels.trace import inputs_of

aten = torch.ops.aten
_DIVISIONS = {aten.div.Tensor: aten.mul.Tensor, aten.div_.Tensor: aten.mul_.Tensor}


def _is_scalar(node: fx.Node) -> bool:
    value = node.meta.get("val")
    return isinstance(value, Tensor) and value.dim() == 0


def _mutates(node: fx.Node) -> bool:
    target = node.target
    return isinstance(target, torch._ops.OpOverload) and target._schema.is_mutable


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype eager kernels turn a Python scalar into for a tensor of ``dtype``: float32 for
    float16, bfloat16 and float32, float64 for float64."""
    return torch.promote_types(dtype, torch.float32)


def _prelude_nodes(graph: fx.Graph) -> set[fx.Node]:
    """The 0-d inputs and every node that computes a 0-d tensor from them alone, writing to
    none of them."""
    scalar = {n for n in graph.nodes if n.op == "placeholder" and _is_scalar(n)}
    for n in graph.nodes:
        if n.op == "call_function" and _is_scalar(n) and not _mutates(n):
            inputs = n.all_input_nodes
            if inputs and all(a in scalar for a in inputs):
                scalar.add(n)
    return scalar


def split_scalars(gm: fx.GraphModule) -> tuple[fx.GraphModule, fx.GraphModule]:
    """Split a traced aten graph into a *prelude* of its 0-d arithmetic and the *loop* left.

    A node goes to the prelude when it computes a 0-d tensor from 0-d inputs only, without
    writing to any of them. The loop takes the graph's inputs followed by the prelude's outputs:
    each 0-d value it uses, cast to the dtype the consuming operation computes in (as eager
    turns a Python number into that dtype), and for a division by a 0-d value, its reciprocal.
    """
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    scalar = _prelude_nodes(gm.graph)
    prelude, loop = fx.Graph(), fx.Graph()
    in_prelude = {n: prelude.placeholder(n.name) for n in placeholders}
    for n in gm.graph.nodes:
        if n in scalar and n.op != "placeholder":
            in_prelude[n] = prelude.node_copy(n, lambda a: in_prelude[a])
    in_loop = {n: loop.placeholder(n.name) for n in placeholders}
    outputs: list[fx.Node] = []  # the prelude's outputs, in the order of the loop's extra inputs
    extra: dict[tuple, fx.Node] = {}  # (value, dtype, reciprocal) -> the loop's input for it

    def hoist(value: fx.Node, dtype: torch.dtype, reciprocal: bool = False) -> fx.Node:
        if (value, dtype, reciprocal) not in extra:
            v = in_prelude[value]
            if reciprocal:
                v = prelude.call_function(aten.reciprocal.default, (v,))
            outputs.append(prelude.call_method("to", (v, dtype)))
            name = f"{value.name}_{'recip_' if reciprocal else ''}hoisted"
            extra[value, dtype, reciprocal] = loop.placeholder(name)
        return extra[value, dtype, reciprocal]

    for n in gm.graph.nodes:
        if n.op == "placeholder" or n in scalar:
            continue
        if n.op == "output":
            loop.output(())
            continue
        out = n.meta.get("val")
        dtype = _compute_dtype(out.dtype) if isinstance(out, Tensor) else torch.float64
        divisor = n.args[1] if len(n.args) == 2 and not n.kwargs else None
        if n.target in _DIVISIONS and divisor in scalar and n.args[0] not in scalar:
            factor = hoist(divisor, dtype, reciprocal=True)
            in_loop[n] = loop.call_function(_DIVISIONS[n.target], (in_loop[n.args[0]], factor))
            continue
        in_loop[n] = loop.node_copy(
            n, lambda a, d=dtype: in_loop[a] if a not in scalar else hoist(a, d)
        )
    prelude.output(tuple(outputs))
    return fx.GraphModule(torch.nn.Module(), prelude), fx.GraphModule(torch.nn.Module(), loop)


def _reciprocal(a: float) -> float:
    return 1.0 / a


def _rsub(a: float, b: float) -> float:
    return b - a


def _float32(v: float) -> float:
    """``v`` rounded to the nearest float32, as a Python float."""
    return struct.unpack("f", struct.pack("f", v))[0]


# The prelude's operations as arithmetic on Python floats, which are IEEE doubles like the
# float64 0-d tensors they stand for, so that the results are the same numbers
_ON_FLOATS: dict[object, Callable[..., float]] = {
    aten.add.Tensor: operator.add,
    aten.add.Scalar: operator.add,
    aten.sub.Tensor: operator.sub,
    aten.sub.Scalar: operator.sub,
    aten.rsub.Scalar: _rsub,
    aten.rsub.Tensor: _rsub,
    aten.mul.Tensor: operator.mul,
    aten.mul.Scalar: operator.mul,
    aten.div.Tensor: operator.truediv,
    aten.div.Scalar: operator.truediv,
    aten.pow.Tensor_Tensor: operator.pow,
    aten.pow.Tensor_Scalar: operator.pow,
    aten.pow.Scalar: operator.pow,
    aten.neg.default: operator.neg,
    aten.reciprocal.default: _reciprocal,
}
_ROUNDING = {torch.float32: _float32, torch.float64: float}


def on_floats(prelude: fx.GraphModule, scalars: Sequence[int]) -> fx.GraphModule | None:
    """The prelude of :func:`split_scalars` as arithmetic on Python floats, or None where it
    has an operation without such a form here.

    Called with the graph's inputs, of which those at positions ``scalars`` are 0-d tensors,
    it returns the prelude's outputs as numbers, each rounded to its dtype. Why: the prelude's
    dozen eager operations on 0-d tensors cost about 0.1 ms a step, more than the kernel of a
    small model; the same arithmetic on floats, in the Python code fx writes, costs
    microseconds."""
    graph = fx.Graph()
    inputs = [n for n in prelude.graph.nodes if n.op == "placeholder"]
    new = {n: graph.placeholder(n.name) for n in inputs}
    number: dict[fx.Node, fx.Node] = {}  # a node of the prelude -> its value as a float

    def value(a: object) -> object:
        if not isinstance(a, fx.Node):
            return a
        if a not in number:  # an input: the number in its 0-d tensor
            number[a] = graph.call_method("item", (new[a],))
        return number[a]

    for n in prelude.graph.nodes:
        if n.op == "placeholder":
            if inputs.index(n) not in scalars:
                number[n] = new[n]  # not a number; the prelude never uses it
        elif n.op == "output":
            graph.output(tuple(value(o) for o in n.args[0]))
        elif n.op == "call_method" and n.target == "to" and len(n.args) == 2 and not n.kwargs:
            if n.args[1] not in _ROUNDING:
                return None
            number[n] = graph.call_function(_ROUNDING[n.args[1]], (value(n.args[0]),))
        elif n.op == "call_function" and n.target in _ON_FLOATS and not n.kwargs:
            number[n] = graph.call_function(_ON_FLOATS[n.target], tuple(map(value, n.args)))
        else:
            return None
    return fx.GraphModule(torch.nn.Module(), graph)


def hoisted(gm: fx.GraphModule) -> Callable[..., None]:
    """The traced graph ``gm`` (:func:`~.trace.trace`) compiled: the 0-d arithmetic of
    :func:`split_scalars` runs once per call, on Python floats (:func:`on_floats`) where the
    numbers are on the CPU, and inductor compiles the loop."""
    prelude, loop = split_scalars(gm)
    example = inputs_of(gm)
    fake_mode = torch._guards.detect_fake_mode(example)
    with fake_mode:
        extra = list(prelude(*example))
    # Sizes are symbolic, and inductor would decide from the example's size whether the loop
    # runs on several threads; with dynamic threads OpenMP decides at each call instead.
    with torch._inductor.config.patch({"cpp.dynamic_threads": True}):
        compiled_loop = torch._inductor.compile(loop, [*example, *extra])
    scalars = [i for i, t in enumerate(example) if t.dim() == 0]
    on_cpu = all(example[i].device.type == "cpu" for i in scalars)
    floats = on_floats(prelude, scalars) if on_cpu else None  # .item() on a GPU would wait
    dtypes = [t.dtype for t in extra]

    def run(*args: Tensor) -> None:
        if floats is not None:
            try:
                values = [_scalar(v, "cpu", d) for v, d in zip(floats(*args), dtypes)]
            except ArithmeticError:  # 1/0, an overflow: the tensors give inf or nan instead
                values = prelude(*args)
        else:
            values = prelude(*args)
        compiled_loop(*args, *values)

    return run


@functools.lru_cache(maxsize=1024)
def _scalar(value: float, device: torch.device | str, dtype: torch.dtype = torch.float64) -> Tensor:
    """``value`` as a 0-d tensor, made once: most hyperparameters never change, and a new
    tensor every step would cost more than the step of a small model. Never written to."""
    return torch.tensor(value, dtype=dtype, device=device)
