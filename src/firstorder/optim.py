"""The notes' optimizers as drop-in ``torch.optim.Optimizer`` subclasses.

Each class only says which rule of :mod:`firstorder.rules` it runs; the shared base class gives
the contract PyTorch users rely on: param groups with their own hyperparameters,
``state_dict()`` / ``load_state_dict()``, ``step(closure)``, parameters without a gradient
skipped, and every ``torch.optim.lr_scheduler`` (η(t) of E6) through ``group["lr"]``.

Defaults follow Goodfellow, Bengio & Courville, *Deep Learning*, ch. 8 (the notes' source):
momentum ρ = 0.9, AdaGrad ε = 1e-7, RMSProp ρ = 0.9 and ε = 1e-6, Adam α = 1e-3, ρ₁ = 0.9,
ρ₂ = 0.999, ε = 1e-8. ε is added outside the square root, as in the notes.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from firstorder import flat, rules
from firstorder.errors import UserTypeError, UserValueError
from firstorder.kernels import step as kernel
from firstorder.kernels.trace import impossible, warn_not_compiled

__all__ = [
    "GD",
    "Momentum",
    "Nesterov",
    "AdaGrad",
    "RMSProp",
    "Adam",
    "AdamW",
    "Newton",
    "OPTIMIZERS",
]

_K = operator.itemgetter("k")  # a parameter's step counter, read without a Python loop

Params = Iterable[Tensor] | Iterable[dict[str, Any]]

# compile=None (the default) compiles a param group's rule from this many values on. Below it,
# the compiled step's fixed cost (the flat buffers' bookkeeping, the prelude, the kernel's call:
# about 50 µs) outweighs what fusing saves, and the per-tensor plain rule runs, exactly as with
# compile=False. Measured on a 2-core VM (torch 2.13, CPU, loaded), Adam on one float32 tensor:
# plain 59 µs against compiled 68 µs at 16,384 values, 89 against 61 at 32,768, 93 against 64
# at 65,536; the threshold leaves a margin for machines where the call costs more.
min_numel = 65_536

# compile=None starts building the kernel once the optimizer has spent this many seconds in
# plain flat steps, not when it is made: the build (about 10 s of inductor on a 2-core VM, 2 s
# with its disk cache warm) shares the CPU and the GIL with the steps taken meanwhile, which ran
# 10-35x slower there, so a short script would pay more than it gains. This is the ski-rental
# rule: rent (plain steps) until the rent paid is about the price of buying (the build), then
# buy; a run never pays more than about twice what the better choice in hindsight would cost.
build_after = 5.0


class RuleOptimizer(torch.optim.Optimizer):
    """A ``torch.optim.Optimizer`` that applies one rule of :mod:`firstorder.rules` to each
    parameter tensor. Subclasses set ``rule``.

    The fast path: the parameters of a param group, their gradients and the state live in one
    flat buffer per dtype and device (:mod:`firstorder.flat`), and the rule, compiled once by
    :mod:`firstorder.kernels.step`, updates each buffer in one pass over memory.
    ``compile=None`` (the default) takes it for param groups of at least :data:`min_numel`
    values: the plain rule runs on the flat buffers (one call of each torch operation for all
    tensors); once those steps have taken :data:`build_after` seconds, the kernel is built in a
    background thread, and runs from the first step after it is ready; no step waits. Smaller
    groups, and groups whose kernel cannot be compiled here, run the per-tensor plain rule.
    ``compile=False`` always runs the per-tensor plain rule (for teaching and debugging);
    ``compile=True`` always takes the fast path and compiles at the first step (seconds).
    On the fast path hyperparameters must be numbers (or one-element tensors).
    """

    rule: rules.Rule

    def __init__(self, params: Params, *, compile: bool | None = None, **hyper: Any) -> None:
        for name, value in hyper.items():
            rules.check(name, value)
        if compile is not None and not isinstance(compile, bool):
            raise UserTypeError(f"compile must be True, False or None (auto), got {compile!r}.")
        self.compile = compile
        # param group index -> its flat buffers and the parameters left out of them
        self._flat: dict[int, tuple[list[flat.FlatGroup], list[Tensor]]] = {}
        self._auto: dict[int, bool] = {}  # param group index -> compile=None chose the fast path
        self._plain_seconds = 0.0  # time spent in plain flat steps, against build_after
        super().__init__(params, hyper)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for i, p in enumerate(params):
            p = p[1] if isinstance(p, tuple) and len(p) == 2 else p  # (name, tensor), as torch
            if not isinstance(p, Tensor):
                raise TypeError(f"params must be tensors, got {type(p).__name__} at position {i}.")
            if not (p.is_floating_point() or (p.is_complex() and self._takes_complex)):
                allowed = (
                    "floating-point or complex tensors"
                    if self._takes_complex
                    else f"real floating-point tensors for {type(self).__name__}"
                    + (" with compile=True" if self.compile is True else "")
                )
                raise TypeError(f"params must be {allowed}, got dtype {p.dtype} at position {i}.")
        tensors = [p[1] if isinstance(p, tuple) else p for p in params]
        if len(set(tensors)) != len(tensors):
            # torch.optim warns and updates such a parameter twice per step (its warning says
            # this will become an error); a flat buffer cannot hold one tensor twice, so both
            # of our paths refuse it
            i = next(i for i, p in enumerate(tensors) if any(p is q for q in tensors[:i]))
            raise ValueError(
                f"params must list each parameter once, got the parameter at position {i} twice."
            )
        _check_keys(self.rule, param_group)
        for name in self.rule.hyper:
            if name in param_group:
                rules.check(name, param_group[name])
            value = param_group.get(name, self.defaults[name])
            if self.compile is True and isinstance(value, Tensor) and value.numel() != 1:
                raise UserValueError(
                    f"{name} must be a number or a one-element tensor with compile=True, got a "
                    f"tensor of shape {tuple(value.shape)}."
                )
        super().add_param_group({**param_group, "params": params})
        if self.compile is None:
            self._choose(len(self.param_groups) - 1, self.param_groups[-1])

    def _choose(self, index: int, group: dict[str, Any]) -> bool:
        """compile=None: whether param group ``index`` takes the fast path (its kernels are
        built in the background once the plain steps have cost :data:`build_after` seconds).
        Remembered for the group."""
        params = group["params"]
        fast = (
            not self.rule.needs_hessian
            and sum(p.numel() for p in params) >= min_numel
            and all(p.is_floating_point() for p in params)
            and all(impossible(p.dtype, p.device) is None for p in params)
        )
        self._auto[index] = fast
        return fast

    def _kernel(self, group: dict[str, Any], dtype: torch.dtype, device: torch.device):
        switches = tuple((name, group[name]) for name in self.rule.switches)
        return kernel.compiled(self.rule, dtype, device, switches)

    def _fast(self, index: int, group: dict[str, Any], hyper: dict[str, Any]) -> bool:
        """Whether param group ``index`` takes the fast path at this step."""
        if self.compile is not None:
            return self.compile
        chosen = self._auto.get(index)
        if chosen is None:
            chosen = self._choose(index, group)
        # a hyperparameter tensor shaped like θ (per coordinate) has no flat form
        return chosen and all(not isinstance(v, Tensor) or v.numel() == 1 for v in hyper.values())

    def _wait_for_kernels(self) -> None:
        """Wait until every kernel that compile=None started building is built (a test hook:
        the default never waits)."""
        for index, group in enumerate(self.param_groups):
            if self._auto.get(index):
                for p in {(p.dtype, p.device): p for p in group["params"]}.values():
                    self._kernel(group, p.dtype, p.device).deferred.warm_up(wait=True)

    @property
    def _takes_complex(self) -> bool:
        """Complex parameters are updated as torch.optim updates them: as pairs of reals
        (``torch.view_as_real``); the flat buffers and Newton's H hold real numbers only."""
        return self.compile is not True and not self.rule.needs_hessian

    def __getstate__(self) -> dict[str, Any]:
        # torch.optim.Optimizer pickles only defaults, state and param_groups; ``compile``
        # must survive deepcopy and pickle too (the flat buffers are rebuilt at the next step)
        return {**super().__getstate__(), "compile": self.compile}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Called by unpickling and by ``load_state_dict`` (after its pre-hooks): the loaded
        param groups and state are checked before anything is replaced."""
        if "param_groups" in state:
            _check_loaded(self.rule, type(self).__name__, state)
        state.setdefault("compile", getattr(self, "compile", None))
        super().__setstate__(state)
        self._flat: dict[int, tuple[list[flat.FlatGroup], list[Tensor]]] = {}
        self._auto = getattr(self, "_auto", {})
        self._plain_seconds = getattr(self, "_plain_seconds", 0.0)

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """Apply the rule once to every parameter with a gradient; return the closure's loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for index, group in enumerate(self.param_groups):
            hyper = {name: group[name] for name in self.rule.hyper}
            if self._fast(index, group, hyper):
                self._step_flat(index, group, hyper)
            else:
                self._step_plain(group, hyper)
        return loss

    def _step_plain(self, group: dict[str, Any], hyper: dict[str, Any]) -> None:
        """The plain rule on each parameter tensor in turn (compile=False)."""
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise UserValueError(
                    f"{type(self).__name__} needs dense gradients, got a sparse gradient "
                    f"for a parameter of shape {tuple(p.shape)}."
                )
            state = self.state[p]
            if not state:
                state.update(self._initial_state(p))
            buffers = {name: _real(state[name]) for name in self.rule.state}
            if self.rule.counts_steps:
                state["k"] += 1
            self.rule.apply(_real(p), _real(p.grad), buffers, hyper, k=state.get("k"))

    # already compiled: a torch.compile around the training step calls it as it is, instead
    # of tracing the flat buffers' bookkeeping and inlining the rule's eager form
    @torch.compiler.disable
    def _step_flat(self, index: int, group: dict[str, Any], hyper: dict[str, Any]) -> None:
        """The fast path: one call of the rule per stretch of a flat buffer, compiled once its
        kernel is ready (compile=True waits for it at the first step; compile=None does not).

        The buffers hold the parameters that had a gradient when they were built, so a frozen
        parameter (``requires_grad=False``) costs no gradient or state memory and gets no state,
        as in ``torch.optim``; once one of the others gets a gradient, they are built again."""
        built = self._flat.get(index)
        if built is None or not all(g.intact() for g in built[0]) or flat.any_gradient(built[1]):
            graded = [p for p in group["params"] if p.grad is not None]
            if self.rule.counts_steps:
                for p in graded:
                    self.state[p].setdefault("k", 0)
            built = self._flat[index] = (
                flat.flat_groups(graded, self.state, self.rule.state),
                [p for p in group["params"] if p.grad is None],
            )
        hyper = {n: v.item() if isinstance(v, Tensor) else v for n, v in hyper.items()}
        for buffers in built[0]:
            self._step_buffers(buffers, group, hyper)

    def _step_buffers(
        self, buffers: flat.FlatGroup, group: dict[str, Any], hyper: dict[str, Any]
    ) -> None:
        """One step of the flat ``buffers``: the kernel runs if compile=True (built now, at the
        first step) or if it is ready (compile=None), the plain rule otherwise. Decided once for
        the buffers: a kernel that gets ready mid-step serves from the next step on."""
        dtype, device = buffers.theta.dtype, buffers.theta.device
        update = self._kernel(group, dtype, device)
        compiled = update.deferred.ready
        renting = self.compile is None and not compiled and impossible(dtype, device) is None
        if renting and self._plain_seconds >= build_after:
            update.deferred.warm_up()  # once; in the background, the plain rule meanwhile
        if self.compile is True and not compiled:
            reason = impossible(dtype, device)
            compiled = reason is None
            if reason is not None:  # the plain rule on the flat buffers, said once
                warn_not_compiled(f"the {self.rule.name} rule", reason, "running the plain rule")
        run = update if compiled else self._plain
        start = time.perf_counter()
        has_grad = buffers.gather_gradients()
        k = list(map(_K, buffers.states)) if self.rule.counts_steps else None
        for i, j in buffers.runs(has_grad, k):
            a, b = buffers.offsets[i], buffers.offsets[j]
            state = {name: buf[a:b] for name, buf in buffers.buffers.items()}
            step = None
            if k is not None:
                step = k[i] + 1
                for st in buffers.states[i:j]:
                    st["k"] = step
            run(buffers.theta[a:b], buffers.grad[a:b], state, hyper, k=step)
        if renting:
            self._plain_seconds += time.perf_counter() - start

    def _plain(
        self, theta: Tensor, g: Tensor, state: dict[str, Tensor], hyper: dict[str, Any], k: Any
    ) -> None:
        self.rule.apply(theta, g, state, hyper, k=k)

    def _initial_state(self, p: Tensor) -> dict[str, Any]:
        state: dict[str, Any] = self.rule.initial_state(p)
        if self.rule.counts_steps:
            state["k"] = 0  # a Python int: never saturates, unlike a float32 step tensor
        return state


# Keys that torch's own code writes into param groups besides the hyperparameters: the
# parameters' names, the schedulers' (initial_lr; OneCycleLR's max_lr, min_lr, max_momentum,
# base_momentum; SWALR's swa_lr), and ZeroRedundancyOptimizer's, which copies its constructor
# keywords (compile) into each group it hands to the optimizer of its shard.
_TORCH_KEYS = frozenset(
    {"params", "param_names", "initial_lr", "max_lr", "min_lr", "max_momentum"}
    | {"base_momentum", "swa_lr", "compile"}
)
# torch.optim's names for the notes' symbols, to point a user at ours
_TORCH_NAMES = {"momentum": "rho", "alpha": "rho", "betas": "rho1 and rho2"}


def _real(t: Tensor) -> Tensor:
    """A complex tensor as the real tensor of its (real, imaginary) pairs, as torch.optim
    updates it; a real tensor as it is."""
    return torch.view_as_real(t) if t.is_complex() else t


def _check_keys(rule: rules.Rule, group: dict[str, Any]) -> None:
    unknown = [key for key in group if key not in _TORCH_KEYS and key not in rule.hyper]
    if unknown:
        hints = [
            f"torch.optim's {k} is {_TORCH_NAMES[k]} here"
            for k in unknown
            if k in _TORCH_NAMES and _TORCH_NAMES[k].split()[0] in rule.hyper
        ]
        raise UserValueError(
            f"param group keys must be params or hyperparameters of {rule.name} "
            f"({', '.join(rule.hyper)}), got {', '.join(map(repr, unknown))}"
            + (f" ({'; '.join(hints)})." if hints else ".")
        )


def _check_loaded(rule: rules.Rule, name: str, loaded: dict[str, Any]) -> None:
    """Refuse a loaded state that another optimizer saved, or hyperparameters outside their
    domain, before any of it replaces the optimizer's own."""
    for i, group in enumerate(loaded["param_groups"]):
        theirs = [key for key in group if key not in _TORCH_KEYS]
        if sorted(theirs) != sorted(rule.hyper):
            raise UserValueError(
                f"state_dict must be one saved by {name}, got param group {i} with "
                f"hyperparameters ({', '.join(theirs)}) where {name} has "
                f"({', '.join(rule.hyper)}): it comes from another optimizer."
            )
        for key in rule.hyper:
            try:
                rules.check(key, group[key])
            except (TypeError, ValueError) as err:
                raise type(err)(f"state_dict param group {i}: {err}") from None
    expected = set(rule.state) | ({"k"} if rule.counts_steps else set())
    for state in loaded["state"].values():
        if isinstance(state, dict) and state and set(state) != expected:
            raise UserValueError(
                f"state_dict must be one saved by {name}, got a parameter state with "
                f"({', '.join(map(str, state))}) where {name} keeps "
                f"({', '.join(sorted(expected))}): it comes from another optimizer."
            )


class GD(RuleOptimizer):
    """Gradient descent, E1: θ ← θ − α g."""

    rule = rules.RULES["gd"]

    def __init__(self, params: Params, lr: float | Tensor, *, compile: bool | None = None) -> None:
        super().__init__(params, lr=lr, compile=compile)


class Momentum(RuleOptimizer):
    """Momentum, E2: s ← ρ s − α g ; θ ← θ + s  (α inside the velocity, ρ ∈ [0, 1))."""

    rule = rules.RULES["momentum"]

    def __init__(
        self, params: Params, lr: float | Tensor, rho: float = 0.9, *, compile: bool | None = None
    ) -> None:
        super().__init__(params, lr=lr, rho=rho, compile=compile)


class Nesterov(RuleOptimizer):
    """Nesterov momentum (Sutskever et al. 2013), in the notes' convention of E2:
    s ← ρ s − α g ; θ ← θ + ρ s − α g  (α inside the velocity, ρ ∈ [0, 1), g at θ).

    The same trajectory as ``torch.optim.SGD(lr=α, momentum=ρ, nesterov=True)`` for a constant α.
    """

    rule = rules.RULES["nesterov"]

    def __init__(
        self, params: Params, lr: float | Tensor, rho: float = 0.9, *, compile: bool | None = None
    ) -> None:
        super().__init__(params, lr=lr, rho=rho, compile=compile)


class AdaGrad(RuleOptimizer):
    """AdaGrad, E3: r ← r + g⊙g ; θ ← θ − α/(√r + ε) ⊙ g  (r starts at 0)."""

    rule = rules.RULES["adagrad"]

    def __init__(
        self, params: Params, lr: float | Tensor, eps: float = 1e-7, *, compile: bool | None = None
    ) -> None:
        super().__init__(params, lr=lr, eps=eps, compile=compile)


class RMSProp(RuleOptimizer):
    """RMSProp, E4: r ← ρ r + (1−ρ) g⊙g ; θ ← θ − α/(√r + ε) ⊙ g."""

    rule = rules.RULES["rmsprop"]

    def __init__(
        self,
        params: Params,
        lr: float | Tensor,
        rho: float = 0.9,
        eps: float = 1e-6,
        *,
        compile: bool | None = None,
    ) -> None:
        super().__init__(params, lr=lr, rho=rho, eps=eps, compile=compile)


class Adam(RuleOptimizer):
    """Adam, E5: s, r moving averages of g and g⊙g, bias-corrected to ŝ, r̂ at step k;
    θ ← θ − α/(√r̂ + ε) ⊙ ŝ. ``bias_correction=False`` uses s and r directly (claim C7)."""

    rule = rules.RULES["adam"]

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1e-3,
        rho1: float = 0.9,
        rho2: float = 0.999,
        eps: float = 1e-8,
        bias_correction: bool = True,
        *,
        compile: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            rho1=rho1,
            rho2=rho2,
            eps=eps,
            bias_correction=bias_correction,
            compile=compile,
        )


class AdamW(RuleOptimizer):
    """AdamW (Loshchilov & Hutter 2019): decoupled weight decay θ ← θ − α δ θ, then Adam's step
    of E5 (ε outside √r̂, ``bias_correction`` as for :class:`Adam`). The same trajectory as
    ``torch.optim.AdamW(lr=α, betas=(ρ₁, ρ₂), eps=ε, weight_decay=δ)``."""

    rule = rules.RULES["adamw"]

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1e-3,
        rho1: float = 0.9,
        rho2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        bias_correction: bool = True,
        *,
        compile: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            rho1=rho1,
            rho2=rho2,
            eps=eps,
            weight_decay=weight_decay,
            bias_correction=bias_correction,
            compile=compile,
        )


class Newton(RuleOptimizer):
    """Newton's method, E7: θ ← θ − α (H + λI)⁻¹ g, with the exact Hessian of the closure's loss.

    ``step(closure)`` is required: the closure returns the loss R(θ) (it may call
    ``zero_grad()`` but must not call ``backward()``: Newton differentiates the loss twice
    itself). All parameters are treated as one vector θ, so H couples every parameter with
    every other; this is for landscapes and small models (H has n² entries).

    ``strict=True`` refuses a step when damping is 0 and H is singular or not positive
    definite (the step would then head for a saddle or a maximum, or not exist). Otherwise an
    indefinite H is used as it is, and a singular one gives a non-finite step, reported as
    divergence by the loops that watch for it.
    """

    rule = rules.RULES["newton"]

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if self.param_groups:
            raise ValueError(
                "param_groups of Newton must be a single group (its step couples every "
                f"parameter through H), got a group number {len(self.param_groups) + 1}."
            )
        super().add_param_group(param_group)

    def __init__(
        self, params: Params, lr: float = 1.0, damping: float = 0.0, strict: bool = False
    ) -> None:
        self.strict = strict
        super().__init__(params, lr=lr, damping=damping)

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "strict": self.strict}

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor:  # type: ignore[override]
        if closure is None:
            raise ValueError("closure must be given to Newton.step: it needs the loss, got None.")
        with torch.enable_grad():
            loss = closure()
            params = [p for group in self.param_groups for p in group["params"]]
            try:
                grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
            except RuntimeError as err:
                raise RuntimeError(
                    "Newton.step needs a closure that returns the loss without calling "
                    "backward(), so that it can differentiate the loss twice."
                ) from err
            grads = [torch.zeros_like(p) if gi is None else gi for p, gi in zip(params, grads)]
            g = torch.cat([gi.reshape(-1) for gi in grads])
            H = _hessian_rows(g, params)
        for p, gi in zip(params, grads, strict=True):
            p.grad = gi.detach()
        group = self.param_groups[0]
        if self.strict and group["damping"] == 0:
            _check_positive_definite(H)
        theta = torch.cat([p.detach().reshape(-1) for p in params])
        hyper = {name: group[name] for name in self.rule.hyper}
        self.rule.apply(theta, g.detach(), {}, hyper, H=H)
        for p, new in zip(params, theta.split([p.numel() for p in params]), strict=True):
            p.copy_(new.view_as(p))
        return loss


def _hessian_rows(g: Tensor, params: list[Tensor]) -> Tensor:
    """H = ∂g/∂θ, one row a backward pass (vectorised with vmap where autograd allows)."""
    n = g.numel()
    eye = torch.eye(n, dtype=g.dtype, device=g.device)
    rows = torch.autograd.grad(
        g, params, grad_outputs=eye, is_grads_batched=True, retain_graph=True, allow_unused=True
    )
    rows = [
        torch.zeros(n, *p.shape, dtype=g.dtype) if r is None else r for p, r in zip(params, rows)
    ]
    H = torch.cat([r.reshape(n, -1) for r in rows], dim=1).detach()
    return (H + H.T) / 2  # symmetric up to rounding; make it exactly so


def _check_positive_definite(H: Tensor) -> None:
    lam = torch.linalg.eigvalsh(H)
    if lam.min() <= 0:
        raise ValueError(
            f"the Hessian must be positive definite for a strict Newton step with damping 0, "
            f"got smallest eigenvalue {lam.min().item():.3g}; set damping > "
            f"{max(-lam.min().item(), 0):.3g} or strict=False."
        )


def _by_rule() -> dict[str, type[RuleOptimizer]]:
    """Each rule's optimizer class (the subclasses of RuleOptimizer defined above), in the order
    of rules.RULES: a new class is listed by being written, not by editing a table."""
    classes = {cls.rule.name: cls for cls in RuleOptimizer.__subclasses__()}
    return {name: classes[name] for name in rules.RULES if name in classes}


OPTIMIZERS: dict[str, type[RuleOptimizer]] = _by_rule()
