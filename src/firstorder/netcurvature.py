"""Curvature of a network's risk R(θ) over all its parameters θ, flattened into one vector.

    H = ∇²R(θ) ∈ ℝ^{d×d},   d = the number of entries of θ = (W⁽¹⁾, b⁽¹⁾, …, W⁽ᴸ⁾, b⁽ᴸ⁾)

H is never formed: every function here is built on the Hessian-vector product v ↦ H v, the
derivative of the gradient along v (``torch.func.vjp`` of ``torch.func.grad``), which costs one
backward pass per product and no d×d memory.

- :func:`risk_hvp`: the operator v ↦ H v.
- :func:`sharpness`: the top eigenvalues of H (λ_max sets the stable step α < 2/λ_max, C10),
  through :func:`firstorder.curvature.top_eigenvalues`.
- :func:`hessian_diagonal` (exact, d products with basis vectors) and
  :func:`hutchinson_diagonal` (the estimate diag H ≈ E[v ⊙ H v] over Rademacher v).
- :func:`effective_step` and :func:`adam_preconditioner_vs_hessian`: Adam's per-coordinate step
  α/(√r̂ + ε) next to 1/|diag H|, the scaling a diagonal Newton method would use (claim C13).

The order of the flattened vector is ``model.parameters()``, which for
:class:`firstorder.nn.MLP` is the notes' order of θ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

import torch
from torch import Tensor
from torch.func import functional_call, grad, vjp, vmap

from firstorder import rules
from firstorder.curvature import top_eigenvalues
from firstorder.errors import UserValueError
from firstorder.nn import unwrap

__all__ = [
    "PreconditionerVsHessian",
    "adam_preconditioner_vs_hessian",
    "effective_step",
    "hessian_diagonal",
    "hutchinson_diagonal",
    "risk_function",
    "risk_hvp",
    "sharpness",
]

LossFn = Callable[[Tensor, Tensor], Tensor]


def risk_function(
    model: torch.nn.Module, loss_fn: LossFn, x: Tensor, y: Tensor
) -> tuple[Callable[[Tensor], Tensor], Tensor]:
    """R as a function of the flat parameter vector, and the current θ (detached copy).

    R(θ) = loss_fn(f_θ(x), y), evaluated with ``torch.func.functional_call`` so the model's own
    parameters are never touched.
    """
    model = unwrap(model)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise UserValueError("model must have at least one parameter with requires_grad=True.")
    names = [n for n, _ in named]
    shapes = [p.shape for _, p in named]
    sizes = [p.numel() for _, p in named]
    buffers = dict(model.named_buffers())
    theta = torch.cat([p.detach().reshape(-1) for _, p in named])

    def R(theta_flat: Tensor) -> Tensor:
        pieces = torch.split(theta_flat, sizes)
        params = {n: t.view(s) for n, t, s in zip(names, pieces, shapes, strict=True)}
        return loss_fn(functional_call(model, {**params, **buffers}, (x,)), y)

    return R, theta


def risk_hvp(
    model: torch.nn.Module, loss_fn: LossFn, x: Tensor, y: Tensor
) -> Callable[[Tensor], Tensor]:
    """The operator v ↦ H v with H = ∇²R(θ) at the model's current θ, R = loss_fn(f_θ(x), y).

    H v is the vector-Jacobian product of ∇R with v (reverse over reverse; H is symmetric, so
    vᵀH = (Hv)ᵀ). ∇R and its graph are computed once, when the operator is built; each product
    is then one backward pass through that graph, several times faster than recomputing it.
    ``v`` is flat with d entries, of any float dtype; it is cast to the parameters' dtype and
    the product is returned in ``v``'s dtype. Works under ``torch.func.vmap`` for a batch of
    vectors ``[m, d]``.
    """
    R, theta = risk_function(model, loss_fn, x, y)
    _, vjp_of_grad = vjp(grad(R), theta)

    def hvp(v: Tensor) -> Tensor:
        if v.shape[-1] != theta.numel():
            raise UserValueError(
                f"v must have {theta.numel()} entries (one per parameter); got shape "
                f"{tuple(v.shape)}."
            )
        return vjp_of_grad(v.to(theta.dtype))[0].to(v.dtype)

    return hvp


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in unwrap(model).parameters() if p.requires_grad)


def sharpness(
    model: torch.nn.Module,
    loss_fn: LossFn,
    x: Tensor,
    y: Tensor,
    k: int = 1,
    tol: float | None = None,
) -> Tensor:
    """The k largest eigenvalues of H = ∇²R(θ) (λ_max first for k = 1), float64.

    λ_max is the "sharpness": gradient descent with step α is stable along the top eigenvector
    only if α < 2/λ_max (the notes' α ∝ 1/λ_max, C10). ``tol`` is Lanczos' relative accuracy;
    by default 1e-10 for a float64 network and 1e-6 otherwise, since float32 products are
    themselves only accurate to about 1e-7 and a tighter tolerance would only cost iterations.
    """
    if tol is None:
        tol = 1e-10 if next(unwrap(model).parameters()).dtype == torch.float64 else 1e-6
    hvp = risk_hvp(model, loss_fn, x, y)
    return top_eigenvalues(hvp, _n_params(model), k, which="LA", tol=tol)


def _basis_chunks(d: int, chunk_size: int, dtype: torch.dtype) -> Iterable[tuple[int, Tensor]]:
    for start in range(0, d, chunk_size):
        stop = min(start + chunk_size, d)
        E = torch.zeros(stop - start, d, dtype=dtype)
        E[torch.arange(stop - start), torch.arange(start, stop)] = 1.0
        yield start, E


def _check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserValueError(f"{name} must be a positive integer; got {value!r}.")


def hessian_diagonal(
    model: torch.nn.Module, loss_fn: LossFn, x: Tensor, y: Tensor, chunk_size: int = 256
) -> Tensor:
    """The exact diagonal Hᵢᵢ = eᵢᵀ H eᵢ, from d Hessian-vector products with basis vectors.

    Costs d HVPs (``chunk_size`` of them at once through vmap), each about a backward pass
    over all of x: seconds for a few hundred parameters, one to a few minutes for the 9 610 of
    the digits 64-128-10 network on 2 cores. Use a subset of x, or :func:`hutchinson_diagonal`,
    for more.
    """
    _check_positive("chunk_size", chunk_size)
    hvp = vmap(risk_hvp(model, loss_fn, x, y))
    d = _n_params(model)
    dtype = next(unwrap(model).parameters()).dtype
    diag = torch.empty(d, dtype=dtype)
    for start, E in _basis_chunks(d, chunk_size, dtype):
        HE = hvp(E)  # row j is H e_{start+j}
        diag[start : start + len(E)] = HE[:, start : start + len(E)].diagonal()
    return diag


def hutchinson_diagonal(
    model: torch.nn.Module,
    loss_fn: LossFn,
    x: Tensor,
    y: Tensor,
    n_samples: int = 100,
    seed: int = 0,
    chunk_size: int = 64,
) -> Tensor:
    """Hutchinson's estimate diag H ≈ (1/m) Σⱼ vⱼ ⊙ H vⱼ with Rademacher vⱼ ∈ {−1, +1}ᵈ.

    Unbiased because E[vᵢ vⱼ] = δᵢⱼ: E[(v ⊙ Hv)ᵢ] = Σⱼ Hᵢⱼ E[vᵢ vⱼ] = Hᵢᵢ. The error of each
    entry shrinks like √(Σ_{j≠i} Hᵢⱼ² / m).
    """
    _check_positive("n_samples", n_samples)
    _check_positive("chunk_size", chunk_size)
    hvp = vmap(risk_hvp(model, loss_fn, x, y))
    d = _n_params(model)
    dtype = next(unwrap(model).parameters()).dtype
    generator = torch.Generator().manual_seed(seed)
    total = torch.zeros(d, dtype=dtype)
    for start in range(0, n_samples, chunk_size):
        m = min(chunk_size, n_samples - start)
        v = torch.randint(0, 2, (m, d), generator=generator).to(dtype) * 2 - 1
        total += (v * hvp(v)).sum(0)
    return total / n_samples


# torch.optim.Adam and AdamW keep E5's s and r under the names of their state_dict format, and k
# as "step" (a tensor). This table is the one place that knows those names: the step itself is
# computed by the rule, from the state renamed into the notes' symbols.
_TORCH_ADAM_STATE = {"s": "exp_avg", "r": "exp_avg_sq"}
_TORCH_ADAMS = (torch.optim.Adam, torch.optim.AdamW)


def _rule(optimizer: torch.optim.Optimizer) -> rules.Rule | None:
    """The rule an optimizer runs: its own (firstorder's optimizers carry one), E5's for
    torch.optim.Adam/AdamW, None for any other."""
    rule = getattr(optimizer, "rule", None)
    if isinstance(rule, rules.Rule):
        return rule
    return rules.get("adam") if type(optimizer) in _TORCH_ADAMS else None


def _step_of(optimizer: torch.optim.Optimizer, group: dict, state: dict) -> Tensor:
    rule = _rule(optimizer)
    if type(optimizer) not in _TORCH_ADAMS:
        hyper = {name: group[name] for name in rule.hyper}
        return rule.effective_step(state, hyper, state.get("k", 0))
    names = dict(_TORCH_ADAM_STATE)
    if group["amsgrad"]:  # AMSGrad divides by the running maximum of r instead of r
        names["r"] = "max_exp_avg_sq"
    notes_state = {ours: state[theirs] for ours, theirs in names.items()}
    rho1, rho2 = group["betas"]
    hyper = {"lr": group["lr"], "rho1": rho1, "rho2": rho2, "eps": group["eps"]}
    return rule.effective_step(notes_state, {**hyper, "bias_correction": True}, int(state["step"]))


def effective_step(optimizer: torch.optim.Optimizer, params: Iterable[Tensor]) -> Tensor | None:
    """The per-coordinate step α/(√r̂ + ε) that scales the next update, flattened in the order
    of ``params``; ``None`` for an optimizer without one (GD, Momentum, SGD, …).

    For the adaptive optimizers of :mod:`firstorder.optim` (AdaGrad, RMSProp, Adam) this is
    their rule's ``effective_step``. For ``torch.optim.Adam`` / ``AdamW`` it is computed from
    their state the same way, r̂ = exp_avg_sq / (1 − β₂ᵗ) (ε is outside the root there too).
    A parameter the optimizer has not updated yet is an error: it has no r.
    """
    rule = _rule(optimizer)
    if rule is None or not rule.adaptive:
        return None
    per_param = {
        id(p): _step_of(optimizer, group, optimizer.state[p])
        for group in optimizer.param_groups
        for p in group["params"]
        if optimizer.state.get(p)
    }
    flat = []
    for i, p in enumerate(params):
        if id(p) not in per_param:
            raise UserValueError(
                f"params[{i}] (shape {tuple(p.shape)}) must have been updated by the optimizer "
                f"at least once to have an effective step; it has no optimizer state."
            )
        flat.append(per_param[id(p)].detach().reshape(-1))
    return torch.cat(flat)


class PreconditionerVsHessian(NamedTuple):
    """Claim C13 side by side, one entry per parameter coordinate (flattened θ)."""

    effective_step: Tensor  # α/(√r̂ + ε), Adam's per-coordinate step
    inverse_curvature: Tensor  # 1/|Hᵢᵢ|, a diagonal Newton step's scaling (inf where Hᵢᵢ = 0)
    hessian_diagonal: Tensor  # Hᵢᵢ


def adam_preconditioner_vs_hessian(
    optimizer: torch.optim.Optimizer,
    model: torch.nn.Module,
    loss_fn: LossFn,
    x: Tensor,
    y: Tensor,
    *,
    exact: bool = True,
    n_samples: int = 100,
    seed: int = 0,
) -> PreconditionerVsHessian:
    """Adam's α/(√r̂ + ε) next to 1/|diag H| at the model's current θ (claim C13: "Adam acts as
    a Diagonal Quasi-Newton method", i.e. the first should track the second up to a factor).

    diag H is exact (:func:`hessian_diagonal`) or, with ``exact=False``, Hutchinson's estimate
    from ``n_samples`` Rademacher vectors drawn with ``seed``.
    """
    params = [p for p in unwrap(model).parameters() if p.requires_grad]
    step = effective_step(optimizer, params)
    if step is None:
        raise UserValueError(
            f"optimizer must be adaptive (firstorder AdaGrad/RMSProp/Adam or torch.optim.Adam/"
            f"AdamW); got {type(optimizer).__name__}."
        )
    if exact:
        diag = hessian_diagonal(model, loss_fn, x, y)
    else:
        diag = hutchinson_diagonal(model, loss_fn, x, y, n_samples=n_samples, seed=seed)
    return PreconditionerVsHessian(step, 1.0 / diag.abs(), diag)
