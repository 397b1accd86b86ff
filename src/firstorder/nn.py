"""The neural network of the notes (E8), written in the notes' symbols.

    z⁽ⁱ⁾ = W⁽ⁱ⁾ a⁽ⁱ⁻¹⁾ + b⁽ⁱ⁾,   a⁽ⁱ⁾ = g⁽ⁱ⁾(z⁽ⁱ⁾),   a⁽⁰⁾ = x,   i = 1, …, L
    W⁽ⁱ⁾ ∈ ℝ^{nᵢ×nᵢ₋₁},  b⁽ⁱ⁾ ∈ ℝ^{nᵢ},  f_θ = a⁽ᴸ⁾,  θ = (W⁽¹⁾, b⁽¹⁾, …, W⁽ᴸ⁾, b⁽ᴸ⁾)

A batch of inputs is a matrix whose *rows* are the vectors x, so in code the notes' column
form W a + b becomes ``a @ W.T + b`` (``torch.nn.functional.linear``): the same numbers, one
row per example.

Claim C14 ("if none of the activation functions is non-linear, the model would collapse in a
nn linear layer even with multiple layers") is :meth:`MLP.collapse`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from firstorder.errors import UserValueError

__all__ = ["ACTIVATIONS", "Layer", "MLP", "unwrap"]

# g⁽ⁱ⁾ by name. Only "identity" is linear, which is what collapse() relies on.
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "identity": lambda z: z,
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The network itself: ``model.module`` inside ``DistributedDataParallel``, else ``model``.

    DistributedDataParallel's forward talks to the other processes; a local computation (the
    risk on the whole data set, curvature, a checkpoint) runs on the wrapped network, whose
    parameters are the same on every process.
    """
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def _check_activation(name: object, where: str) -> str:
    if not isinstance(name, str) or name.lower() not in ACTIVATIONS:
        allowed = ", ".join(ACTIVATIONS)
        raise UserValueError(f"{where} must be one of {allowed}; got {name!r}.")
    return name.lower()


class Layer(torch.nn.Module):
    """Layer i of E8: a⁽ⁱ⁾ = g⁽ⁱ⁾(W⁽ⁱ⁾ a⁽ⁱ⁻¹⁾ + b⁽ⁱ⁾), with W of shape [nᵢ, nᵢ₋₁]."""

    def __init__(self, n_in: int, n_out: int, g: str, generator: torch.Generator | None) -> None:
        super().__init__()
        # The bound 1/√nᵢ₋₁ is what torch.nn.Linear draws from (its Kaiming-uniform with
        # a = √5 reduces to it), so a network here starts where a PyTorch user's would.
        bound = 1.0 / n_in**0.5
        self.W = torch.nn.Parameter(
            torch.empty(n_out, n_in).uniform_(-bound, bound, generator=generator)
        )
        self.b = torch.nn.Parameter(torch.empty(n_out).uniform_(-bound, bound, generator=generator))
        self.g = g

    def z(self, a: Tensor) -> Tensor:
        """The pre-activation z⁽ⁱ⁾ = W⁽ⁱ⁾ a⁽ⁱ⁻¹⁾ + b⁽ⁱ⁾ (rows of ``a`` are examples)."""
        return torch.nn.functional.linear(a, self.W, self.b)

    def forward(self, a: Tensor) -> Tensor:
        """a⁽ⁱ⁾ = g⁽ⁱ⁾(z⁽ⁱ⁾)."""
        return ACTIVATIONS[self.g](self.z(a))

    def extra_repr(self) -> str:
        n_out, n_in = self.W.shape
        return f"W: {n_out}×{n_in}, b: {n_out}, g: {self.g}"


class MLP(torch.nn.Module):
    """The network of E8 with widths (n₀, n₁, …, n_L) and activations g⁽¹⁾, …, g⁽ᴸ⁾.

    ``activations`` is one name for every hidden layer (the output layer then gets
    ``"identity"``, because the losses take logits), or a list of names: L of them (one per
    layer, the output layer included) or L − 1 (hidden layers; the output layer is identity).
    Names: identity, relu, tanh, sigmoid.

    ``layers[i - 1]`` is layer i of the notes and holds ``.W`` (W⁽ⁱ⁾) and ``.b`` (b⁽ⁱ⁾).
    Initialization is PyTorch's for ``nn.Linear``: every entry of W⁽ⁱ⁾ and b⁽ⁱ⁾ uniform in
    ±1/√nᵢ₋₁, drawn from a generator seeded with ``seed`` (``None``: torch's global generator).
    """

    def __init__(
        self, widths: list[int], activations: str | list[str], seed: int | None = None
    ) -> None:
        super().__init__()
        widths = list(widths)
        if len(widths) < 2 or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in widths
        ):
            raise UserValueError(
                f"widths must be a list of at least two positive integers (n₀, …, n_L); "
                f"got {widths!r}."
            )
        L = len(widths) - 1
        if isinstance(activations, str):
            g = [_check_activation(activations, "activations")] * (L - 1) + ["identity"]
        else:
            g = [_check_activation(a, f"activations[{i}]") for i, a in enumerate(activations)]
            if len(g) == L - 1:
                g.append("identity")
            elif len(g) != L:
                raise UserValueError(
                    f"activations must name {L} layers (or the {L - 1} hidden ones) for widths "
                    f"{widths}; got {len(g)} names."
                )
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        self.widths = widths
        self.layers = torch.nn.ModuleList(
            Layer(widths[i - 1], widths[i], g[i - 1], generator) for i in range(1, L + 1)
        )

    @property
    def L(self) -> int:
        """The number of layers L."""
        return len(self.layers)

    @property
    def theta(self) -> tuple[Tensor, ...]:
        """θ = (W⁽¹⁾, b⁽¹⁾, …, W⁽ᴸ⁾, b⁽ᴸ⁾), the parameters in the notes' order."""
        return tuple(p for layer in self.layers for p in (layer.W, layer.b))

    def forward(self, x: Tensor) -> Tensor:
        """f_θ(x) = a⁽ᴸ⁾."""
        a = x
        for layer in self.layers:
            a = layer(a)
        return a

    def activations(self, x: Tensor) -> list[Tensor]:
        """Every activation vector [a⁽⁰⁾ = x, a⁽¹⁾, …, a⁽ᴸ⁾]."""
        a = [x]
        for layer in self.layers:
            a.append(layer(a[-1]))
        return a

    @torch.no_grad()
    def collapse(self) -> torch.nn.Linear:
        """The single linear layer this network equals when every g⁽ⁱ⁾ is the identity (C14).

        Composing z = W a + b layer by layer gives, with W = W⁽ᴸ⁾ ⋯ W⁽¹⁾,

            b = W⁽ᴸ⁾(⋯(W⁽²⁾ b⁽¹⁾ + b⁽²⁾)⋯) + b⁽ᴸ⁾,   f_θ(x) = W x + b.

        Returns a ``torch.nn.Linear(n₀, n_L)`` holding that W and b (copies, no gradient link).
        """
        for i, layer in enumerate(self.layers, start=1):
            if layer.g != "identity":
                raise UserValueError(
                    f"activation of layer {i} must be 'identity' for the network to collapse "
                    f"into one linear layer; got {layer.g!r}."
                )
        W, b = self.layers[0].W.clone(), self.layers[0].b.clone()
        for layer in self.layers[1:]:
            W, b = layer.W @ W, layer.W @ b + layer.b
        # skip_init: a plain nn.Linear(...) would draw a throw-away init from the global RNG.
        linear = torch.nn.utils.skip_init(
            torch.nn.Linear, self.widths[0], self.widths[-1], dtype=W.dtype, device=W.device
        )
        linear.weight.copy_(W)
        linear.bias.copy_(b)
        return linear
