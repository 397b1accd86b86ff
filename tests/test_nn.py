"""The network of E8 against the notes' equations written out here in float64 NumPy, and C14."""

import numpy as np
import pytest
import torch

from firstorder import data, optim
from firstorder.nn import MLP
from firstorder.train import train


@pytest.fixture(autouse=True)
def one_thread():
    """Small networks: one thread per test process (pytest -n 2 fills the cores) is faster,
    and far faster on a busy machine, than OpenMP threads competing for them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


G = {  # g⁽ⁱ⁾ written independently of firstorder.nn
    "identity": lambda z: z,
    "relu": lambda z: np.maximum(z, 0.0),
    "tanh": np.tanh,
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
}


def e8(theta: list[np.ndarray], g: list[str], x: np.ndarray) -> list[np.ndarray]:
    """E8 column by column: z⁽ⁱ⁾ = W⁽ⁱ⁾ a⁽ⁱ⁻¹⁾ + b⁽ⁱ⁾, a⁽ⁱ⁾ = g⁽ⁱ⁾(z⁽ⁱ⁾), a⁽⁰⁾ = x."""
    a_all = []
    for x_j in x:  # one example at a time, as a column vector, exactly as the notes write it
        a = [x_j]
        for i in range(len(g)):
            W, b = theta[2 * i], theta[2 * i + 1]
            z = W @ a[-1] + b
            a.append(G[g[i]](z))
        a_all.append(a)
    return [np.stack([a[i] for a in a_all]) for i in range(len(g) + 1)]


def numpy_theta(model: MLP) -> list[np.ndarray]:
    return [p.detach().double().numpy() for p in model.theta]


def test_forward_and_activations_equal_explicit_e8():
    g = ["tanh", "relu", "sigmoid", "identity"]
    model = MLP([5, 7, 6, 4, 3], g, seed=1).double()
    x = torch.randn(9, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    expected = e8(numpy_theta(model), g, x.numpy())
    np.testing.assert_allclose(model(x).detach().numpy(), expected[-1], rtol=1e-13, atol=1e-14)
    a = model.activations(x)
    assert len(a) == 5 and a[0] is x
    for a_i, e_i in zip(a, expected, strict=True):
        np.testing.assert_allclose(a_i.detach().numpy(), e_i, rtol=1e-13, atol=1e-14)


def test_theta_is_the_notes_order_with_the_notes_shapes():
    widths = [4, 6, 3]
    model = MLP(widths, "relu", seed=0)
    theta = model.theta
    assert [tuple(p.shape) for p in theta] == [(6, 4), (6,), (3, 6), (3,)]
    assert theta[0] is model.layers[0].W and theta[3] is model.layers[1].b
    assert list(theta) == list(model.parameters())  # optimizers see θ in the notes' order
    assert [layer.g for layer in model.layers] == ["relu", "identity"]  # logits out


def test_activation_list_with_or_without_the_output_layer():
    assert [la.g for la in MLP([2, 3, 3, 1], ["tanh", "relu"]).layers] == [
        "tanh",
        "relu",
        "identity",
    ]
    assert [la.g for la in MLP([2, 3, 1], ["tanh", "sigmoid"]).layers] == ["tanh", "sigmoid"]


def test_init_is_seeded_pytorch_style_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    a, b, c = MLP([100, 50, 10], "relu", seed=3), MLP([100, 50, 10], "relu", seed=3), None
    c = MLP([100, 50, 10], "relu", seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.theta, b.theta, strict=True))
    assert not torch.equal(a.theta[0], c.theta[0])
    for layer, n_in in zip(a.layers, [100, 50], strict=True):
        bound = 1 / np.sqrt(n_in)  # nn.Linear's U(−1/√n, 1/√n)
        assert layer.W.abs().max() <= bound and layer.W.abs().max() > 0.95 * bound
        assert abs(layer.W.std().item() - bound / np.sqrt(3)) < 0.05 * bound


@pytest.mark.parametrize(
    ("widths", "activations", "match"),
    [
        ([3], "relu", "widths"),
        ([3, 0, 2], "relu", "widths"),
        ([3, 2.0, 2], "relu", "widths"),
        ([3, 4, 2], "softmax", "activations must be one of identity, relu, tanh, sigmoid"),
        ([3, 4, 2], ["relu", "tanh", "relu"], "activations must name 2 layers"),
        ([3, 4, 2], ["relu", "gelu"], r"activations\[1\]"),
    ],
)
def test_bad_arguments_raise_one_clear_sentence(widths, activations, match):
    with pytest.raises(ValueError, match=match):
        MLP(widths, activations)


# --- claim C14: without a non-linear activation the network is one linear layer -----------------


def test_linear_network_collapses_to_one_linear_layer():
    model = MLP([6, 8, 5, 3], "identity", seed=0)
    linear = model.collapse()
    assert isinstance(linear, torch.nn.Linear)
    x = torch.randn(200, 6, generator=torch.Generator().manual_seed(1)) * 3
    # the product W⁽³⁾W⁽²⁾W⁽¹⁾ and the propagated bias, computed here in float64
    W1, b1, W2, b2, W3, b3 = numpy_theta(model)
    # float32, two ways: sums of 6, 8 and 5 terms through the layers (19 roundings, each term
    # of the product rounded once more), against 6 terms of the collapsed weights, themselves
    # products summed over 8 and 5 (13 + 6 roundings): under 2 · 25 u32 of the same sums
    # taken over magnitudes
    A = [np.abs(W) for W in (W1, W2, W3)]
    magnitude = A[2] @ (A[1] @ (A[0] @ np.abs(x.numpy().T) + np.abs(b1)[:, None]))
    magnitude = magnitude + (A[2] @ np.abs(b2) + np.abs(b3))[:, None]
    bound = 2 * 25 * 2.0**-24 * magnitude.T
    assert ((linear(x) - model(x)).abs().detach().numpy() <= bound).all()
    np.testing.assert_allclose(
        linear.weight.detach().double().numpy(), W3 @ W2 @ W1, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        linear.bias.detach().double().numpy(), W3 @ (W2 @ b1 + b2) + b3, rtol=1e-5, atol=1e-6
    )


def test_collapse_in_float64_is_exact_to_rounding():
    model = MLP([4, 9, 9, 2], "identity", seed=5).double()
    x = torch.randn(50, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(model.collapse()(x), model(x), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize(
    ("activations", "layer", "name"),
    [("tanh", 1, "tanh"), (["identity", "relu", "identity"], 2, "relu")],
)
def test_collapse_refuses_a_nonlinear_network_naming_the_layer(activations, layer, name):
    model = MLP([3, 4, 4, 2], activations, seed=0)
    with pytest.raises(ValueError, match=f"activation of layer {layer} .*'{name}'"):
        model.collapse()


def test_linear_network_cannot_fit_xor_but_tanh_network_can():
    """C14 in action: the same widths, the same optimizer (our Adam), the same steps."""
    xor = data.load("xor")
    accuracy = {}
    for g in ("identity", "tanh"):
        model = MLP([2, 8, 2], g, seed=0)
        history = train(
            model, optim.Adam(model.parameters(), lr=0.05), xor, steps=300, log_every=300
        )
        accuracy[g] = history.final.train_accuracy
    assert accuracy["identity"] <= 0.75  # a linear classifier separates at most 3 of the 4
    assert accuracy["tanh"] == 1.0
