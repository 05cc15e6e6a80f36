"""The layers of :mod:`pipeline.models.numpy_mlp`: forward and backward passes on batched arrays.

Each activation's derivative sits beside it, as in micrograd, and both are looked up by name in
``ACTIVATIONS`` (scikit-learn's table style); ``OUTPUTS`` pairs each loss (``mse``,
``cross_entropy``, ``squared``) with its output function, and ``softmax`` reads linear outputs
as class probabilities. ``init_layers`` draws the weights, ``forward`` and ``backward`` run a
mini-batch ``(n_samples, n_features)`` through every layer in place, and ``Workspace`` holds
the buffers a training epoch reuses so that no mini-batch allocates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Each hidden activation overwrites its pre-activation buffer z; its backward multiplies
# delta = dC/da in place by the derivative, written in terms of the activation's output a.


def _sigmoid(z: np.ndarray) -> np.ndarray:
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1.0
    return np.reciprocal(z, out=z)


def _sigmoid_backward(delta: np.ndarray, a: np.ndarray) -> None:
    delta *= a
    delta *= 1.0 - a  # sigma'(z) = a (1 - a)


def _relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0, out=z)


def _relu_backward(delta: np.ndarray, a: np.ndarray) -> None:
    delta *= a > 0  # a boolean mask: 1 where the unit was active


def _tanh(z: np.ndarray) -> np.ndarray:
    return np.tanh(z, out=z)


def _tanh_backward(delta: np.ndarray, a: np.ndarray) -> None:
    delta *= 1.0 - a * a


# Hidden activation -> (forward, backward).
ACTIVATIONS = {
    "sigmoid": (_sigmoid, _sigmoid_backward),
    "relu": (_relu, _relu_backward),
    "tanh": (_tanh, _tanh_backward),
}


# Each output function turns the logits z (n, k) in place into the output activations and
# returns the data loss summed over rows (0.0 without targets). Both work in float64: k is
# small, and the loss of a memorized example (1e-9, say) would round to 0 in float32.


def _softmax_cross_entropy(z: np.ndarray, targets: np.ndarray | None) -> float:
    z64 = z.astype(np.float64)
    rows = np.arange(len(z64))
    # Shift each row's largest logit to 0 so exp cannot overflow. (Row maxima and sums over
    # k ~ 10 columns: argmax + gather and einsum are ~5x faster here than .max/.sum(axis=1).)
    z64 -= z64[rows, z64.argmax(axis=1)][:, None]
    picked = None if targets is None else z64[rows, targets]  # (n,)
    np.exp(z64, out=z64)
    norm = np.einsum("ij->i", z64)[:, None]  # (n, 1), in [1, k]
    np.divide(z64, norm, out=z)  # the probabilities, back in the model's dtype
    if targets is None:
        return 0.0
    return float(np.log(norm).sum() - picked.sum())  # -log p_y = log norm - (z_y - max z)


def _sigmoid_quadratic(z: np.ndarray, targets: np.ndarray | None) -> float:
    a = _sigmoid(z)
    if targets is None:
        return 0.0
    diff = a.astype(np.float64)
    diff[np.arange(len(a)), targets] -= 1.0  # a - y
    return float(np.einsum("ij,ij->", diff, diff) / 2)


def _linear_squared(z: np.ndarray, targets: np.ndarray | None) -> float:
    """Linear outputs and Belkin et al.'s (2019) squared loss: sum over the k outputs of
    (z - y)^2 for one-hot y, no 1/2, so the mean over examples is their reported test loss."""
    if targets is None:
        return 0.0
    diff = z.astype(np.float64)
    diff[np.arange(len(z)), targets] -= 1.0  # z - y
    return float(np.einsum("ij,ij->", diff, diff))


OUTPUTS = {
    "mse": _sigmoid_quadratic,
    "cross_entropy": _softmax_cross_entropy,
    "squared": _linear_squared,
}


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``z`` (n, k), as a new array of ``z``'s dtype (taken in float64).

    The same arithmetic as the ``cross_entropy`` output. For ``loss="squared"`` it is only how
    the linear outputs are read as class probabilities (Bridle 1990); training never applies it.
    """
    probabilities = z.copy()
    _softmax_cross_entropy(probabilities, None)
    return probabilities


@dataclass
class Workspace:
    """Arrays every mini-batch of an epoch reuses; a shorter last batch uses their leading rows.

    ``x`` is (batch, n_features); ``z[l]`` and ``deltas[l]`` are (batch, sizes[l + 1]); the
    steps have the shapes of ``coefs_`` and ``intercepts_`` and hold learning rate x gradient.
    """

    x: np.ndarray
    z: list[np.ndarray]
    deltas: list[np.ndarray]
    coef_steps: list[np.ndarray]
    intercept_steps: list[np.ndarray]

    @classmethod
    def allocate(cls, rows: int, coefs: list[np.ndarray], intercepts: list[np.ndarray], dtype):
        """Buffers for mini-batches of up to ``rows`` rows through the layers ``coefs``."""
        widths = [w.shape[1] for w in coefs]
        return cls(
            x=np.empty((rows, coefs[0].shape[0]), dtype),
            z=[np.empty((rows, k), dtype) for k in widths],
            deltas=[np.empty((rows, k), dtype) for k in widths[:-1]],
            coef_steps=[np.empty_like(w) for w in coefs],
            intercept_steps=[np.empty_like(b) for b in intercepts],
        )


def init_layers(sizes: list[int], activation: str, rng: np.random.Generator, dtype):
    """Draw weights (sizes[l], sizes[l + 1]) and biases: Glorot/He uniform, as sklearn does."""
    coefs, intercepts = [], []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        hidden_relu = activation == "relu" and i < len(sizes) - 2
        if hidden_relu:
            bound = math.sqrt(6.0 / fan_in)  # He: keeps ReLU activations' variance
        else:
            factor = 2.0 if activation == "sigmoid" else 6.0  # sklearn's Glorot factors
            bound = math.sqrt(factor / (fan_in + fan_out))
        coefs.append(rng.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype))
        intercepts.append(rng.uniform(-bound, bound, fan_out).astype(dtype))
    return coefs, intercepts


def forward(coefs, intercepts, activation: str, X: np.ndarray, buffers=None) -> list[np.ndarray]:
    """Activations of every layer, input first: ``activations[l]`` is (n, sizes[l]).

    The last entry is left as the output layer's pre-activations (logits) for the output
    function to finish in place. With ``buffers`` (``Workspace.z``) no array is allocated.
    """
    activations = [X]
    hidden, _ = ACTIVATIONS[activation]
    last = len(coefs) - 1
    for i, (W, b) in enumerate(zip(coefs, intercepts, strict=True)):
        out = None if buffers is None else buffers[i][: len(X)]
        z = np.matmul(activations[-1], W, out=out)  # (n, fan_out)
        z += b
        activations.append(hidden(z) if i < last else z)
    return activations


def output_delta(loss: str, output: np.ndarray, targets: np.ndarray, scale: float) -> np.ndarray:
    """Turn the output activations (n, k), in place, into ``scale`` x dC/dz of the output."""
    if loss == "mse":
        derivative = output * (1.0 - output)  # sigma'(z), taken before output changes
    output[np.arange(len(output)), targets] -= 1.0  # a - y
    if loss == "mse":
        output *= derivative
    elif loss == "squared":
        output *= 2.0  # d/dz of (z - y)^2 (no 1/2 in Belkin's loss)
    output *= scale  # the 1/n of the mean, and in training the learning rate too
    return output


def backward(
    coefs, activation: str, activations, delta, coef_grads, intercept_grads, deltas=None
) -> None:
    """Backpropagate the output layer's ``delta`` (n, k) through every layer.

    Fills ``coef_grads[l]`` (fan_in, fan_out) and ``intercept_grads[l]`` (fan_out,) in
    place, scaled as ``delta`` is; ``deltas`` (``Workspace.deltas``) saves allocations.
    """
    _, activation_backward = ACTIVATIONS[activation]
    for layer in range(len(coefs) - 1, -1, -1):
        np.matmul(activations[layer].T, delta, out=coef_grads[layer])
        np.sum(delta, axis=0, out=intercept_grads[layer])
        if layer > 0:  # the input layer needs no delta
            out = None if deltas is None else deltas[layer - 1][: len(delta)]
            delta = np.matmul(delta, coefs[layer].T, out=out)  # dC/da, (n, fan_in)
            activation_backward(delta, activations[layer])  # now dC/dz
