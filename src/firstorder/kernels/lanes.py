"""Each trajectory's steps as one C++ loop: the batched engine's run, time inside, lanes outside.

Why not inductor: a trajectory of the engine is independent of every other one, so the fastest
program keeps each one's x and state in registers and runs all its steps there, reading and
writing memory once per call. Inductor (like XLA) loops over the whole batch once or more per
step instead, and when many steps are unrolled into one of its kernels it recomputes ∇f for
every coordinate it writes (or, told to keep intermediates, writes them all to memory): the
8-step inductor kernel this module replaces did twice the work per number of stepping one by
one. A step inside ``torch._higher_order_ops.while_loop`` compiles, but runs 17 µs a step of
Python wrapper on 110 numbers. So this module does the one thing no library does here: it traces
one step of one trajectory (observe f and ∇f, the stop test, ``rule.apply``) with ``make_fx``
into scalar aten operations, writes them as C++ on named temporaries (:class:`Lanes`), and
compiles that with inductor's own C++ toolchain (``CppPythonBindingsCodeCache``: its compiler
flags, its disk cache), :data:`W` trajectories a loop iteration.

Arithmetic that depends on the step counter and the hyperparameters alone (Adam's 1 − ρᵏ) is
the *prelude*: written as C++ the same way, it fills a table for a chunk of steps, a row per
step and configuration (one per step where every configuration shares its inputs), before the
trajectories run them, so that no ``pow`` runs per trajectory. The whole run is one call: no
Python between chunks, and no torch operation whose rounding depends on where a number sits in
a tensor (torch's vector and scalar ``pow`` differ in the last bit). Every other operation is
written as the C++ of the IEEE operation torch does (no fused multiply-add, no reordering:
inductor's flags and :data:`FLAGS`), so a trajectory agrees with the eager engine to a few
roundings a step; the tests check it on every rule and landscape.
An operation missing from :data:`UNARY`, :data:`BINARY` or the shape operations raises
:class:`NotScalar`, and the engine steps one by one instead.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, fx
from torch.fx.experimental.proxy_tensor import make_fx

from firstorder.rules import Rule

aten = torch.ops.aten


class NotScalar(Exception):
    """The step uses an operation this module does not write as C++."""


def literal(v: object) -> str:
    """A Python number as an exact C++ literal (floats in hexadecimal: no rounding on the way)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"INT64_C({v})"
    v = float(v)
    if math.isnan(v):
        return "std::numeric_limits<double>::quiet_NaN()"
    if math.isinf(v):
        return ("-" if v < 0 else "") + "std::numeric_limits<double>::infinity()"
    return f"({v.hex()})"


def _pow(a: str, e: object) -> str:
    """x ** e as torch's CPU kernel computes it: a copy for 1, products for 2 and 3, a square
    root for ½, reciprocals for −½, −1 and −2, else pow."""
    special = {0: "1.0", 1: "{0}", 2: "{0} * {0}", 3: "{0} * {0} * {0}", 0.5: "std::sqrt({0})",
               -0.5: "1.0 / std::sqrt({0})", -1: "1.0 / {0}", -2: "1.0 / ({0} * {0})"}  # fmt: skip
    if not isinstance(e, bool) and isinstance(e, int | float) and e in special:
        return "(" + special[e].format(a) + ")"
    return f"std::pow({a}, {literal(e) if not isinstance(e, str) else e})"


UNARY = {
    aten.abs.default: "std::abs({0})",
    aten.neg.default: "(-{0})",
    aten.sqrt.default: "std::sqrt({0})",
    aten.rsqrt.default: "(1.0 / std::sqrt({0}))",
    aten.reciprocal.default: "(1.0 / {0})",
    aten.exp.default: "std::exp({0})",
    aten.log.default: "std::log({0})",
    aten.sin.default: "std::sin({0})",
    aten.cos.default: "std::cos({0})",
    aten.tanh.default: "std::tanh({0})",
    aten.logical_not.default: "(!{0})",
    aten.bitwise_not.default: "(!{0})",
    aten.sign.default: "(double(0.0 < {0}) - double({0} < 0.0))",
    aten.isnan.default: "std::isnan({0})",
    aten.clone.default: "{0}",
    aten.alias.default: "{0}",
    aten.lift_fresh_copy.default: "{0}",
}

_ARITH = {"add": "({0} + {1})", "sub": "({0} - {1})", "mul": "({0} * {1})"}
_ARITH["div"] = "(double({0}) / double({1}))"  # torch's true division, also of integers
_COMPARE = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
BINARY: dict[object, str] = {}
for _name, _fmt in {**_ARITH, **{n: f"({{0}} {c} {{1}})" for n, c in _COMPARE.items()}}.items():
    for _overload in ("Tensor", "Scalar"):
        BINARY[getattr(getattr(aten, _name), _overload)] = _fmt
BINARY.update(
    {
        aten.bitwise_and.Tensor: "({0} && {1})",
        aten.bitwise_or.Tensor: "({0} || {1})",
        aten.logical_and.default: "({0} && {1})",
        aten.logical_or.default: "({0} || {1})",
        aten.maximum.default: "std::fmax({0}, {1})",
        aten.minimum.default: "std::fmin({0}, {1})",
        aten.pow.Tensor_Tensor: "std::pow({0}, {1})",
    }
)
# operations on 0-d float64 values the prelude may run on the host (elementwise, no state)
PRELUDE_OPS = {*BINARY, *UNARY, aten.pow.Tensor_Scalar, aten.where.self} - {
    aten.lift_fresh_copy.default
}
CPP_TYPES = {torch.float64: "double", torch.int64: "int64_t", torch.bool: "bool"}


def _base(target: object) -> object:
    """The out-of-place form of an in-place operation (``add_`` → ``add``), else itself."""
    if isinstance(target, torch._ops.OpOverload) and target._schema.is_mutable:
        packet = getattr(aten, target.__name__.split(".")[0].rstrip("_"), None)
        overload = target._overloadname
        if packet is not None and overload in packet.overloads():
            return getattr(packet, overload)
    return target


def _as_array(v: object) -> np.ndarray:
    """A value as an array of expressions: an expression (str) as 0-d, a number as a literal."""
    if isinstance(v, np.ndarray):
        return v
    return np.array(v if isinstance(v, str) else literal(v), dtype=object)


def _fold(a: np.ndarray, axes: tuple[int, ...], fmt: str, keepdim: bool) -> np.ndarray:
    """``a`` reduced over ``axes`` by ``fmt`` ("{0} + {1}"), left to right, as expressions."""
    axes = tuple(sorted(x % a.ndim for x in axes)) if a.ndim else ()
    rest = [i for i in range(a.ndim) if i not in axes]
    rows = np.transpose(a, rest + list(axes)).reshape(*[a.shape[i] for i in rest], -1)
    out = np.empty(rows.shape[:-1], dtype=object)
    for i in np.ndindex(out.shape):
        acc = rows[i][0]
        for v in rows[i][1:]:
            acc = "(" + fmt.format(acc, v) + ")"
        out[i] = acc
    if keepdim:
        out = out.reshape([1 if i in axes else n for i, n in enumerate(a.shape)])
    return out


def _slices(ndim: int, dim: int, start: int | None, end: int | None, step: int) -> tuple:
    index = [slice(None)] * ndim
    index[dim % ndim] = slice(start, end, step)
    return tuple(index)


def _expand(a: np.ndarray, size: list[int]) -> np.ndarray:
    size = [n if n != -1 else a.shape[i - len(size) + a.ndim] for i, n in enumerate(size)]
    return np.array(np.broadcast_to(a, size), dtype=object)


def _squeeze(a: np.ndarray, dims: object = None) -> np.ndarray:
    dims = range(a.ndim) if dims is None else [dims] if isinstance(dims, int) else dims
    axes = tuple(d % a.ndim for d in dims if a.ndim and a.shape[d] == 1)
    return np.squeeze(a, axis=axes) if axes else a


def _full(node: fx.Node, shape: list[int], value: object) -> np.ndarray:
    dtype = node.meta["val"].dtype
    value = (
        float(value) if dtype.is_floating_point else bool(value) if dtype == torch.bool else value
    )
    return np.full(shape, literal(value), dtype=object)


def _arange(node: fx.Node, *args: int) -> np.ndarray:
    dtype = node.meta["val"].dtype
    values = [literal(float(v) if dtype.is_floating_point else v) for v in range(*args)]
    return np.array(values, dtype=object)


# operations on the shapes of values: which element goes where, no arithmetic
SHAPES: dict[object, Callable[..., np.ndarray]] = {
    aten.view.default: lambda n, a, s: a.reshape(s),
    aten._unsafe_view.default: lambda n, a, s: a.reshape(s),
    aten.reshape.default: lambda n, a, s: a.reshape(s),
    aten.expand.default: lambda n, a, s: _expand(a, s),
    aten.unsqueeze.default: lambda n, a, d: np.expand_dims(a, d % (a.ndim + 1)),
    aten.squeeze.dims: lambda n, a, d: _squeeze(a, d),
    aten.squeeze.dim: lambda n, a, d: _squeeze(a, d),
    aten.squeeze.default: lambda n, a: _squeeze(a),
    aten.permute.default: lambda n, a, d: np.transpose(a, d),
    aten.t.default: lambda n, a: a.T,
    aten.select.int: lambda n, a, d, i: np.take(a, i, axis=d % a.ndim),
    aten.slice.Tensor: lambda n, a, d=0, s=None, e=None, st=1: a[_slices(a.ndim, d, s, e, st)],
    aten.cat.default: lambda n, xs, d=0: np.concatenate(xs, axis=d % xs[0].ndim),
    aten.stack.default: lambda n, xs, d=0: np.stack(xs, axis=d % (xs[0].ndim + 1)),
    aten.full.default: lambda n, s, v, **kw: _full(n, s, v),
    aten.full_like.default: lambda n, a, v, **kw: _full(n, list(a.shape), v),
    aten.zeros_like.default: lambda n, a, **kw: _full(n, list(a.shape), 0),
    aten.ones_like.default: lambda n, a, **kw: _full(n, list(a.shape), 1),
    aten.scalar_tensor.default: lambda n, v, **kw: _full(n, [], v),
    aten.arange.default: lambda n, e, **kw: _arange(n, e),
    aten.arange.start: lambda n, s, e, **kw: _arange(n, s, e),
    aten.arange.start_step: lambda n, s, e, st=1, **kw: _arange(n, s, e, st),
    aten.detach.default: lambda n, a: a,
}

# the operations whose result shares memory with their input (an in-place write into one
# changes the input too)
VIEWS = {
    aten.view.default, aten._unsafe_view.default, aten.expand.default, aten.unsqueeze.default,
    aten.squeeze.dims, aten.squeeze.dim, aten.squeeze.default, aten.permute.default,
    aten.t.default, aten.select.int, aten.slice.Tensor, aten.detach.default, aten.alias.default,
}  # fmt: skip


class Lanes:
    """One step of one trajectory, graph ``gm``, written as C++ statements (:attr:`lines`).

    Every value of the graph becomes an array of C++ expressions of its shape (a 0-d value one
    expression, ∇f of a 2-D landscape two), each computed once into a named temporary. The
    inputs named in ``table`` (the hyperparameters, k, the bound and target) and the 0-d
    float64 arithmetic on them alone form the :attr:`prelude`; :attr:`columns` are the prelude
    values the statements read, those that do not depend on the step counter (input
    ``table[0]``), read as ``F[i]``, and those that do, read as ``V[i]``. The other inputs are
    the lane's own values, named by ``lane``: input name → expressions.
    """

    def __init__(self, gm: fx.GraphModule, lane: dict[str, np.ndarray], table: list[str]) -> None:
        self.gm, self.lines, self.prelude = gm, [], []
        self.varies = {n for n in gm.graph.nodes if n.op == "placeholder" and n.name in table[:1]}
        self.env: dict[fx.Node, np.ndarray] = {}
        self.reciprocals: dict[fx.Node, np.ndarray] = {}
        for node in gm.graph.nodes:
            if node.op == "placeholder":
                if node.name in lane:  # read once into temporaries, before anything is stored
                    self.env[node] = self._map("{0}", lane[node.name])
                elif node.name in table:
                    self.env[node] = self._column(node)
                else:
                    raise NotScalar(f"input {node.name} is neither a lane's nor the table's")
            elif node.op == "get_attr":
                value = getattr(gm, node.target)
                self.env[node] = np.array([literal(v) for v in value.flatten().tolist()],
                                          dtype=object).reshape(value.shape)  # fmt: skip
            elif node.op == "call_function":
                self._call(node)
            elif node.op == "output":
                self.outputs = [self.env[n] for n in node.args[0]]
        self._columns()

    def _columns(self) -> None:
        """Number the prelude values that the statements and outputs read, F[i] or V[i]."""
        text = "\n".join(self.lines + [str(v) for out in self.outputs for v in out.flat])
        used = [n for p, n in enumerate(self.prelude) if f"T[{p}]" in text]
        self.columns = (
            [n for n in used if n not in self.varies],
            [n for n in used if n in self.varies],
        )
        names = {f"T[{self.prelude.index(n)}]": f"F[{i}][j]" for i, n in enumerate(self.columns[0])}
        names.update(
            {f"T[{self.prelude.index(n)}]": f"V[{i}][j]" for i, n in enumerate(self.columns[1])}
        )
        rename = lambda m: names.get(m.group(0), m.group(0))  # noqa: E731
        self.lines = [re.sub(r"T\[\d+\]", rename, line) for line in self.lines]
        self.outputs = [np.vectorize(lambda v: re.sub(r"T\[\d+\]", rename, v), otypes=[object])(o)
                        for o in self.outputs]  # fmt: skip

    def _column(self, node: fx.Node) -> np.ndarray:
        if any(a in self.varies for a in node.all_input_nodes):
            self.varies.add(node)
        self.prelude.append(node)
        return np.array(f"T[{len(self.prelude) - 1}]", dtype=object)

    def temp(self, expr: str) -> str:
        name = f"t{len(self.lines)}"
        self.lines.append(f"const auto {name} = {expr};")
        return name

    def _map(self, fmt: str, *values: object) -> np.ndarray:
        arrays = [_as_array(v) for v in values]
        out = np.frompyfunc(lambda *xs: self.temp(fmt.format(*xs)), len(arrays), 1)(*arrays)
        return np.array(out, dtype=object)

    def _in_prelude(self, node: fx.Node, target: object) -> bool:
        val = node.meta.get("val")
        return (
            target in PRELUDE_OPS
            and target is node.target  # not an in-place operation
            and isinstance(val, Tensor)
            and val.dim() == 0
            and val.dtype == torch.float64
            and all(a in self.prelude for a in node.all_input_nodes)
        )

    def _call(self, node: fx.Node) -> None:
        target = _base(node.target)
        if node.target is operator.getitem:
            self.env[node] = self.env[node.args[0]][node.args[1]]
            return
        if self._in_prelude(node, target):
            self.env[node] = self._column(node)
            return
        written = node.args[0] if target is not node.target else None
        if isinstance(written, fx.Node) and written.target in VIEWS and target not in SHAPES:
            # the write would have to reach the tensor it views, which this module does not track
            raise NotScalar(f"{node.target} writes into a view ({written.target})")
        args, kwargs = fx.node.map_arg((node.args, node.kwargs), lambda n: self.env[n])
        if target is aten.div.Tensor and node.args[1] in self.prelude:
            value = self._map("({0} * {1})", args[0], self._reciprocal(node.args[1]))
        else:
            value = _as_array(self._value(node, target, args, kwargs))
        if written is not None:  # in place: the input now holds the value
            self.env[written] = value
        self.env[node] = value

    def _reciprocal(self, b: fx.Node) -> np.ndarray:
        """1/b as a prelude column, for b of the prelude (1 − ρᵏ): a / b is then a · (1/b), a
        multiplication a lane, not a division (the strength reduction of
        :mod:`~firstorder.kernels.hoist`: at most one rounding of difference)."""
        if b not in self.reciprocals:
            with self.gm.graph.inserting_after(b):
                r = self.gm.graph.call_function(aten.reciprocal.default, (b,))
            r.meta["val"] = b.meta["val"]
            self.reciprocals[b] = self._column(r)
        return self.reciprocals[b]

    def _value(self, node: fx.Node, target: object, args: tuple, kwargs: dict) -> np.ndarray:
        if target in UNARY:
            return self._map(UNARY[target], args[0])
        if target in BINARY:
            a, b = args[0], args[1]
            if "alpha" in kwargs:  # add(a, b, alpha=c) is a + c·b
                b = self._map("({0} * {1})", kwargs["alpha"], b)
            return self._map(BINARY[target], a, b)
        if target in SHAPES:
            return SHAPES[target](node, *args, **kwargs)
        special = getattr(self, "_" + str(target).replace(".", "_"), None)
        if special is None:
            raise NotScalar(f"{target} has no C++ form here")
        return special(node, *args, **kwargs)

    def _aten_pow_Tensor_Scalar(self, node: fx.Node, a: np.ndarray, e: object) -> np.ndarray:
        return self._map(_pow("{0}", e), a)

    def _aten_where_self(self, node: fx.Node, c: object, a: object, b: object) -> np.ndarray:
        return self._map("({0} ? {1} : {2})", c, a, b)

    def _aten_copy_default(self, node: fx.Node, dst: np.ndarray, src: object, *_: object):
        return _expand(_as_array(src), list(dst.shape))

    def _aten__to_copy_default(self, node: fx.Node, a: np.ndarray, **kw: object) -> np.ndarray:
        dtype = node.meta["val"].dtype
        if dtype not in CPP_TYPES:
            raise NotScalar(f"dtype {dtype} has no C++ type here")
        return self._map(f"static_cast<{CPP_TYPES[dtype]}>({{0}})", a)

    def _reduce(self, a: np.ndarray, dims: object, keepdim: bool, fmt: str) -> np.ndarray:
        axes = tuple(range(a.ndim)) if dims is None or dims == [] else dims
        axes = (axes,) if isinstance(axes, int) else tuple(axes)
        return self._map("{0}", _fold(a, axes, fmt, keepdim))

    def _aten_sum_dim_IntList(self, node, a, dims=None, keepdim=False, **kw) -> np.ndarray:
        return self._reduce(a, dims, keepdim, "{0} + {1}")

    def _aten_sum_default(self, node: fx.Node, a: np.ndarray, **kw: object) -> np.ndarray:
        return self._reduce(a, None, False, "{0} + {1}")

    def _aten_any_dim(self, node: fx.Node, a: np.ndarray, dim=None, keepdim=False):
        return self._reduce(a, dim, keepdim, "{0} || {1}")

    _aten_any_dims = _aten_any_dim

    def _aten_any_default(self, node: fx.Node, a: np.ndarray) -> np.ndarray:
        return self._reduce(a, None, False, "{0} || {1}")

    def _aten_all_dim(self, node: fx.Node, a: np.ndarray, dim=None, keepdim=False):
        return self._reduce(a, dim, keepdim, "{0} && {1}")

    def _aten_all_default(self, node: fx.Node, a: np.ndarray) -> np.ndarray:
        return self._reduce(a, None, False, "{0} && {1}")

    def _aten_linalg_vector_norm_default(self, node, a, ord=2, dim=None, keepdim=False, **kw):
        if ord != 2:
            raise NotScalar(f"the {ord}-norm has no C++ form here")
        squares = self._reduce(self._map("({0} * {0})", a), dim, keepdim, "{0} + {1}")
        return self._map("std::sqrt({0})", squares)

    def _aten_mm_default(self, node: fx.Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        products = self._map("({0} * {1})", a[:, :, None], b[None, :, :])  # [n, k, m]
        return self._reduce(products, (1,), False, "{0} + {1}")

    def _aten_dot_default(self, node: fx.Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self._reduce(self._map("({0} * {1})", a, b), None, False, "{0} + {1}")

    def _aten_slice_scatter_default(self, node, a, src, dim=0, start=None, end=None, step=1):
        out = a.copy()
        out[_slices(a.ndim, dim, start, end, step)] = src
        return out

    def _aten_select_scatter_default(self, node, a, src, dim, index):
        out = a.copy()
        index_ = [slice(None)] * a.ndim
        index_[dim % a.ndim] = index
        out[tuple(index_)] = src
        return out


def trace_step(f: Callable, rule: Rule, switches: dict[str, bool], d: int) -> fx.GraphModule:
    """One step of one trajectory as an aten graph: inputs x [d], the state [d] each, then the
    0-d k, hyperparameters (``rule.numbers``), bound, f* and tol_f; outputs whether it must
    stop (:func:`~firstorder.observe.observe_traceable`), whether at the target, f(x), and x
    and the state after ``rule.apply``."""
    from firstorder.observe import observe_traceable  # observe imports this package

    names, n_state = rule.numbers, len(rule.state)

    def step(x, *rest):  # no annotations: traced, they would be globals of the graph
        state = {n: t.clone() for n, t in zip(rule.state, rest)}
        k, *rest = rest[n_state:]
        hyper = {**dict(zip(names, rest)), **switches}
        bound, f_star, tol_f = rest[len(names) :]
        fx, g, _, out, reached = observe_traceable(f, x, bound, f_star, tol_f)
        x_next = x.clone()
        rule.apply(x_next, g, state, hyper, k=k)
        return (out, reached, fx, x_next, *state.values())

    example = [torch.ones(d, dtype=torch.float64) for _ in range(1 + n_state)]
    example += [torch.full((), 0.5, dtype=torch.float64) for _ in range(4 + len(names))]
    decompositions = torch._decomp.core_aten_decompositions()
    return make_fx(step, decomposition_table=decompositions)(*example)


# trajectories a loop iteration advances together, as vectors: independent lanes hide the
# latency of one trajectory's chain of operations (Adam on Rosenbrock, AVX2, one thread: 4 lanes
# 12.1 ns a trajectory·step, 8 lanes 8.9, 16 lanes 8.7 but slower on the playground's 55)
W = 8

SOURCE = """
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
extern "C" void kernel(double* x, {state_args}{number_args}double* fixed, double* varying,
                       bool* active, int64_t* to_target, int64_t* diverged, double* f,
                       const int64_t N, const int64_t B, const int64_t C, const int64_t CV,
                       const int64_t KT, const int64_t k0, const int64_t k_end,
                       const int64_t threads) {{
  constexpr int64_t W = {W}, D = {D}, NS = {NS}, P0 = {P0}, P1 = {P1};
  double* s[NS + 1] = {{{state_names}nullptr}};
  // the prelude's columns that do not depend on k: a row per configuration
  for (int64_t c = 0; c < C; ++c) {{
    const double k = double(k0 + 1);
{prelude}
{fixed}
  }}
  for (int64_t k1 = k0; k1 <= k_end; k1 += KT) {{  // observations k1 … k1 + K − 1
    const int64_t K = std::min(KT, k_end + 1 - k1);
    // the columns that do: a row a step and configuration (CV = 1: every one shares them)
    for (int64_t kk = 0; kk < K; ++kk)
      for (int64_t c = 0; c < CV; ++c) {{
        const double k = double(k1 + kk + 1);
{prelude}
{varying}
      }}
    int64_t running = 0;
    #pragma omp parallel for num_threads(threads) if(threads > 1) reduction(+:running)
    for (int64_t n0 = 0; n0 < N; n0 += W) {{
      const int64_t w = std::min(W, N - n0);
      // the block's lanes in local arrays, all double (steps as exact whole numbers), so that
      // the compiler runs the W lanes of a step as vectors
      double X[D][W], S[NS + 1][D][W], A[W], TT[W], DV[W], FX[W], F[P0][W], V[P1][W];
      int64_t c[W], cv[W];  // the lane's configuration, its row in varying
      for (int64_t j = 0; j < W; ++j) {{
        const int64_t n = n0 + (j < w ? j : 0);
        c[j] = n / B; cv[j] = CV == 1 ? 0 : c[j];
        A[j] = j < w && active[n]; TT[j] = to_target[n]; DV[j] = diverged[n];
        FX[j] = f[n];
        for (int64_t p = 0; p < P0; ++p) F[p][j] = fixed[c[j] * P0 + p];
        for (int64_t e = 0; e < D; ++e) {{
          X[e][j] = x[n * D + e];
          for (int64_t i = 0; i < NS; ++i) S[i][e][j] = s[i][n * D + e];
        }}
      }}
      for (int64_t kk = 0; kk < K; ++kk) {{
        const double k = double(k1 + kk);
        const bool step = k1 + kk < k_end;  // at k_end the last observation only, no step
        for (int64_t j = 0; j < W; ++j)
          for (int64_t p = 0; p < P1; ++p) V[p][j] = varying[(kk * CV + cv[j]) * P1 + p];
        double any = 0.0;
        #pragma GCC ivdep
        for (int64_t j = 0; j < W; ++j) {{
{body}
          const bool on = A[j] != 0.0, out = {out}, reached = {reached};
          TT[j] = (on && out && reached) ? k : TT[j];
          DV[j] = (on && out && !reached) ? k : DV[j];
          A[j] = (on && !out) ? 1.0 : 0.0;
          FX[j] = {fx};
{store}
          any += A[j];
        }}
        if (any == 0.0) break;  // every lane stopped: the rest of the chunk changes nothing
      }}
      for (int64_t j = 0; j < w; ++j) {{
        const int64_t n = n0 + j;
        active[n] = A[j] != 0.0; to_target[n] = int64_t(TT[j]); diverged[n] = int64_t(DV[j]);
        f[n] = FX[j];
        running += A[j] != 0.0;
        for (int64_t e = 0; e < D; ++e) {{
          x[n * D + e] = X[e][j];
          for (int64_t i = 0; i < NS; ++i) s[i][n * D + e] = S[i][e][j];
        }}
      }}
    }}
    if (running == 0) break;  // every trajectory stopped
  }}
}}
"""


def source(lanes: Lanes, prelude: Lanes, d: int, n_state: int) -> str:
    """The C++ of the kernel: the ``prelude``'s tables, then the step's statements (``lanes``)
    in a loop over the steps of W trajectories."""
    out, reached, fx, x_next, *state_next = lanes.outputs
    store = [f"X[{e}][j] = step && A[j] != 0.0 ? {x_next[e]} : X[{e}][j];" for e in range(d)]
    store += [
        f"S[{i}][{e}][j] = step ? {s[e]} : S[{i}][{e}][j];"
        for i, s in enumerate(state_next)
        for e in range(d)
    ]
    P0, P1 = (len(c) for c in lanes.columns)
    fixed = [
        f"fixed[c * {max(1, P0)} + {p}] = {v.item()};" for p, v in enumerate(prelude.outputs[:P0])
    ]
    varying = [f"varying[(kk * CV + c) * {max(1, P1)} + {p}] = {v.item()};"
               for p, v in enumerate(prelude.outputs[P0:])]  # fmt: skip
    n_numbers = sum(n.op == "placeholder" for n in prelude.gm.graph.nodes) - 1  # after k
    indent = lambda lines, n: "\n".join(" " * n + line for line in lines)  # noqa: E731
    return SOURCE.format(
        W=W, D=d, NS=n_state, P0=max(1, P0), P1=max(1, P1),
        state_args="".join(f"double* s{i}, " for i in range(n_state)),
        number_args="".join(f"const double* h{i}, const int64_t z{i}, " for i in range(n_numbers)),
        state_names="".join(f"s{i}, " for i in range(n_state)),
        prelude=indent(prelude.lines, 8), fixed=indent(fixed, 4), varying=indent(varying, 8),
        body=indent(lanes.lines, 10),
        out=out.item(), reached=reached.item(), fx=fx.item(),
        store=indent(store, 10),
    )  # fmt: skip


def _prelude_module(gm: fx.GraphModule, lanes: Lanes) -> fx.GraphModule:
    """The prelude as a graph of its own: inputs k, then the hyperparameters and targets;
    outputs the columns the statements read (``lanes.columns``, fixed then varying)."""
    graph, env = fx.Graph(), {}
    for node in lanes.prelude:
        env[node] = graph.node_copy(node, env.__getitem__)
    graph.output(tuple(env[n] for n in lanes.columns[0] + lanes.columns[1]))
    return fx.GraphModule(gm, graph)


def _inputs_of(nodes: list[fx.Node]) -> set[fx.Node]:
    """The graph inputs (placeholders) that ``nodes`` are computed from."""
    seen, todo = set(), list(nodes)
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(node.all_input_nodes)
    return {n for n in seen if n.op == "placeholder"}


# gcc flags after inductor's, none of which changes a number: sqrt as an instruction, not a call
# that may set errno; no floating-point traps (inductor's -fno-unsafe-math-optimizations turns
# them back on), so that a select may compute both sides; and the loop vectorizer, which
# inductor turns off for its own kernels (vectorized by hand), to run the W lanes as vectors
FLAGS = ("-fno-math-errno", "-fno-trapping-math", "-ftree-loop-vectorize")

# the most numbers the table of the prelude's varying columns holds: a run's steps are cut into
# chunks that fit, each with its table computed before its steps
TABLE_NUMBERS = 1 << 20


class LaneKernel:
    """Steps of ``rule`` on landscape ``f`` of dimension d, each trajectory in C++ registers
    (:data:`SOURCE`), for float64 blocks x [C, B, d] of the batched engine."""

    def __init__(self, f: Callable, rule: Rule, switches: dict[str, bool], d: int) -> None:
        from torch._inductor.codecache import CppPythonBindingsCodeCache

        gm = trace_step(f, rule, switches, d)
        inputs = [n.name for n in gm.graph.nodes if n.op == "placeholder"]
        n_state = len(rule.state)
        lane = {inputs[0]: np.array([f"X[{e}][j]" for e in range(d)], dtype=object)}
        for i, name in enumerate(inputs[1 : 1 + n_state]):
            lane[name] = np.array([f"S[{i}][{e}][j]" for e in range(d)], dtype=object)
        self.lanes = Lanes(gm, lane, inputs[1 + n_state :])
        # the prelude as C++ statements of its own, on k and h_i[c · z_i], input i of
        # configuration c (z_i = 0 where every configuration shares it)
        pre = _prelude_module(gm, self.lanes)
        names = [n.name for n in pre.graph.nodes if n.op == "placeholder"]
        scalars = ["k"] + [f"h{i}[c * z{i}]" for i in range(len(names) - 1)]
        self.prelude = Lanes(
            pre, {n: np.array(v, dtype=object) for n, v in zip(names, scalars)}, []
        )
        # the numbers (inputs after k) that the varying columns read: where none differs
        # between configurations, the varying table is one row a step
        table = [n for n in self.lanes.prelude if n.op == "placeholder"]
        self.varying_inputs = [table.index(n) - 1 for n in _inputs_of(self.lanes.columns[1])
                               if n is not table[0]]  # fmt: skip
        self.source = source(self.lanes, self.prelude, d, n_state)
        argtypes = ["double*"] * (1 + n_state)
        argtypes += ["const double*", "const int64_t"] * (len(scalars) - 1)
        argtypes += ["double*", "double*", "bool*", "int64_t*", "int64_t*", "double*"]
        self.kernel = CppPythonBindingsCodeCache.load_pybinding(
            argtypes + ["const int64_t"] * 8, self.source, extra_flags=FLAGS
        )

    def __call__(self, x: Tensor, state: list[Tensor], k0: int, steps: int,
                 numbers: list[Tensor], active: Tensor, to_target: Tensor,
                 diverged: Tensor, threads: int) -> Tensor:  # fmt: skip
        """Observe and step k0 … k0 + steps − 1, then observe at k0 + steps, the block x
        [C, B, d] and its state in place, with its ``active``, ``to_target`` and ``diverged``
        [C, B] (contiguous, as the engine keeps them), on ``threads`` threads. ``numbers`` are
        the prelude's inputs after k: hyperparameters [C, 1, 1], or one number where every
        configuration shares the value (its ρᵏ is then computed once a step, not C times),
        bound, f* and tol_f. f at the final x, [C, B]."""
        C, B, _ = x.shape
        f = torch.full((C, B), math.nan, dtype=torch.float64)
        P0, P1 = (max(1, len(c)) for c in self.lanes.columns)
        CV = C if any(numbers[i].numel() > 1 for i in self.varying_inputs) else 1
        KT = max(1, min(steps + 1, TABLE_NUMBERS // (CV * P1)))
        fixed = torch.empty(C, P0, dtype=torch.float64)
        varying = torch.empty(KT, CV, P1, dtype=torch.float64)
        args = []
        for t in numbers:
            args += [t.to(torch.float64).contiguous(), int(t.numel() > 1)]
        self.kernel(x, *state, *args, fixed, varying, active, to_target, diverged, f,
                    C * B, B, C, CV, KT, k0, k0 + steps, threads)  # fmt: skip
        return f
