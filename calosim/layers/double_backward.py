"""Double backward: the gradient of a function of an input-gradient, for chains of Dense and activation layers.

The WGAN-GP penalty lambda * (||dD/dx||_2 - 1)^2 depends on the weights through the input gradient
g = dD/dx, which a network computes with its own backward pass. Its gradient w.r.t. the weights is the
backward of that backward ("double backward"). For one layer with forward y = f(x, theta) and backward
dx = J(x, theta)^T dy, and a cotangent ggx on dx (the gradient of the penalty w.r.t. dx), the rule gives

    ggy     = d<ggx, dx>/d dy    = J ggx                 (the forward-mode derivative of f along ggx)
    gx      = d<ggx, dx>/d x     = sum_k ggx_k dy . d^2 y / dx dx_k   (second derivative; 0 for Dense and
                                                         piecewise-linear activations, which have f'' = 0)
    g_theta = d<ggx, dx>/d theta                          (Dense: d kernel = ggx^T dy, d bias = 0)

Per layer (Notation: N batch, F_in, F_out; W (F_in, F_out)):
    Dense       dx = dy W^T:            ggy = ggx W, gx = 0, d kernel = ggx^T dy (F_in, F_out), d bias = 0
    LeakyReLU   dx = dy s(x), s = 1 (x > 0) or alpha:   ggy = ggx s(x), gx = 0 (the kink has measure zero)
    Tanh        dx = dy (1 - y^2):      ggy = ggx (1 - y^2),     gx = -2 ggx dy y (1 - y^2)
    Sigmoid     dx = dy y (1 - y):      ggy = ggx y (1 - y),     gx = ggx dy y (1 - y) (1 - 2 y)

For the whole chain (layers 1..L, x_0 the input, x_i the output of layer i, dy_L the upstream seed):
  1. ``input_gradient``: forward, then the ordinary backward from dy_L, keeping every layer's dy (the tape);
     returns D (N, F_out) and g = dD/dx_0 (N, F_in) -- D summed over the batch, so row n of g is dD_n/dx_n.
  2. ``input_gradient_backward(tape, G)`` for G = dP/dg: runs the backward pass's adjoint from the first layer
     to the last (ggx of layer i+1 = ggy of layer i), collecting g_theta and the second-order terms gx_i; then
     one ordinary backward through the forward graph carries the gx_i to the weights of the layers below
     (skipped when every gx_i is zero, as in a ReLU critic). Returns dP/dx_0 and {parameter: dP/dparameter}.

Both use the layers' own forward/backward (so every backend works); ordinary backward passes overwrite
``Parameter.grad`` as usual, so the caller keeps what it needs before calling these.
"""

from __future__ import annotations

from dataclasses import dataclass

from calosim.layers.activations import LeakyReLU, Sigmoid, Tanh
from calosim.layers.base import Layer, Parameter, Sequential
from calosim.layers.dense import Dense

SUPPORTED = (Dense, LeakyReLU, Tanh, Sigmoid)  # ReLU is a LeakyReLU with alpha 0


def _chain(net) -> list[Layer]:
    layers = net.layers if isinstance(net, Sequential) else [net]
    for layer in layers:
        if not isinstance(layer, SUPPORTED):
            raise TypeError(f"{layer.name}: no double backward for {type(layer).__name__}; supported: "
                            f"{', '.join(t.__name__ for t in SUPPORTED)}")
    return list(layers)


@dataclass
class Tape:
    """What ``input_gradient_backward`` needs: the layers in forward order and the dy each backward received."""

    layers: list[Layer]
    dys: list  # dys[i] is the upstream gradient layer i's backward received


def input_gradient(net, x, seed=None, training: bool = True):
    """(D, g, tape): D = net(x) (N, F_out) and g = d<seed, D>/dx (N, F_in), seed = ones by default.

    ``net`` is a Sequential of Dense / LeakyReLU / ReLU / Tanh / Sigmoid layers (or one such layer).
    """
    layers = _chain(net)
    y = net.forward(x, training)
    d = net.backend.xp.ones_like(y) if seed is None else seed
    dys = [None] * len(layers)
    for index in range(len(layers) - 1, -1, -1):
        dys[index] = d
        d = layers[index].backward(d)
    return y, d, Tape(layers, dys)


def layer_double_backward(layer: Layer, dy, ggx):
    """(ggy, gx or None, {param name: grad}) of one layer: see the module docstring. ``dy`` is the upstream
    gradient its backward received; the layer still holds what its last forward retained."""
    be = layer.backend
    if isinstance(layer, Dense):
        kernel = layer.params["kernel"].value
        fan_in = kernel.shape[0]
        grads = {"kernel": be.matmul(ggx.reshape(-1, fan_in).T, dy.reshape(-1, layer.units))}
        if layer.use_bias:
            grads["bias"] = be.xp.zeros_like(layer.params["bias"].value)
        return be.matmul(ggx, kernel), None, grads
    if isinstance(layer, LeakyReLU):
        return be.leaky_relu_backward(layer._x, ggx, layer.alpha), None, {}
    if isinstance(layer, Tanh):
        slope = 1.0 - layer._y * layer._y
        return ggx * slope, -2.0 * ggx * dy * layer._y * slope, {}
    if isinstance(layer, Sigmoid):
        slope = layer._y * (1.0 - layer._y)
        return ggx * slope, ggx * dy * slope * (1.0 - 2.0 * layer._y), {}
    raise TypeError(f"{layer.name}: no double backward for {type(layer).__name__}")


def input_gradient_backward(tape: Tape, gg) -> tuple[object, dict[Parameter, object]]:
    """(dP/dx (N, F_in), {Parameter: dP/dparam}) for a scalar P(g) with gg = dP/dg, g from ``input_gradient``.

    The layers must still hold the state of the ``input_gradient`` call (no forward in between).
    """
    grads: dict[Parameter, object] = {}
    second_order = []  # gx_i: cotangents on the forward input of layer i
    ggx = gg
    for layer, dy in zip(tape.layers, tape.dys):
        ggy, gx, pgrads = layer_double_backward(layer, dy, ggx)
        for name, g in pgrads.items():
            grads[layer.params[name]] = g
        second_order.append(gx)
        ggx = ggy  # the cotangent of this layer's dy is the cotangent of the next layer's dx
    dx = None
    if any(gx is not None for gx in second_order):
        # carry the second-order terms down the forward graph with ordinary backward passes
        carry = None
        for layer, gx in zip(reversed(tape.layers), reversed(second_order)):
            if carry is not None:
                carry = layer.backward(carry)
                for p in layer.params.values():
                    grads[p] = grads[p] + p.grad
            if gx is not None:
                carry = gx if carry is None else carry + gx
        dx = carry
    if dx is None:
        dx = tape.layers[0].backend.xp.zeros_like(gg)
    return dx, grads


def gradient_penalty(g, n_penalised: int | None, weight: float, xp):
    """WGAN-GP penalty on the input gradients g (N, F): weight * mean_n (||g_n[:n_penalised]||_2 - 1)^2.

    Only the first ``n_penalised`` features (the voxels; None = all) enter the norm. Returns (penalty, dP/dg
    (N, F) with zeros on the other features, the norms (N,)). A tiny 1e-12 under the square root keeps the
    gradient finite where g vanishes.
    """
    n = g.shape[0]
    part = g if n_penalised is None else g[:, :n_penalised]
    norm = xp.sqrt((part * part).sum(axis=1) + 1e-12)
    penalty = float(weight * ((norm - 1.0) ** 2).mean())
    coef = (2.0 * weight / n) * (norm - 1.0) / norm
    gg = xp.zeros_like(g)
    if n_penalised is None:
        gg[...] = coef[:, None] * part
    else:
        gg[:, :n_penalised] = coef[:, None] * part
    return penalty, gg, norm
