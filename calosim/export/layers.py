"""How each calosim layer exports: standard ONNX operators emitted from the layer's parameters, in inference mode.

An exporter registry keyed by layer type (the most specific registered class of a layer's MRO wins), so that
calosim.layers stays free of ONNX. Values are flat (N, F) (calosim.export.graph); the patch ops of a locally
connected layer, a convolution, padding, up-sampling and pooling are one Gather of feature indices each, and
consecutive gathers compose into one (calosim.export.graph.Graph.gather).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from calosim.errors import ExportError
from calosim.layers import (
    AveragePooling2D,
    BatchNorm,
    ChannelSoftmax,
    Conv2D,
    Dense,
    Dropout,
    InpaintingAttention,
    KneeReLU,
    LeakyReLU,
    LocallyConnected2D,
    Reshape,
    Sequential,
    Sigmoid,
    SplitReLU,
    Tanh,
    UpSampling2D,
    ZeroPad2D,
)
from calosim.layers.activations import sigmoid

EXPORTERS: dict[type, Callable] = {}


def exports(*kinds):
    def register(fn):
        for kind in kinds:
            EXPORTERS[kind] = fn
        return fn
    return register


def export_layer(graph, layer, x):
    """The graph value of ``layer.forward(x, training=False)``."""
    for kind in type(layer).__mro__:
        if kind in EXPORTERS:
            return EXPORTERS[kind](graph, layer, x)
    raise ExportError(f"{layer.name}: no ONNX export for a {type(layer).__name__} layer")


def weights(layer, name: str) -> np.ndarray | None:
    """A parameter of ``layer`` as float32 NumPy (None where the layer has no such parameter: no bias)."""
    param = layer.params.get(name)
    return None if param is None else np.asarray(layer.backend.to_numpy(param.value), np.float32)


# ---------------------------------------------------------------------- feature indices of images (H, W, C)
def image_indices(shape, pad=((0, 0), (0, 0))) -> np.ndarray:
    """The flat feature index of every cell of an (H, W, C) image after zero padding ``pad``; padded cells get
    H*W*C, the graph's stand-in for a zero."""
    h, w, c = shape
    index = np.arange(h * w * c, dtype=np.int64).reshape(h, w, c)
    return np.pad(index, (*pad, (0, 0)), constant_values=h * w * c)


def patch_indices(shape, kernel, stride, pad=((0, 0), (0, 0))):
    """(L, P) indices of the 'valid' patches of a padded (H, W, C) image, positions L = H_out*W_out in row-major
    order and the patch axis P ordered (k_h, k_w, c) as the kernels of calosim.layers are; and (H_out, W_out)."""
    index = image_indices(shape, pad)
    (kh, kw), (sh, sw) = kernel, stride
    hp, wp, c = index.shape
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    patches = np.empty((ho, wo, kh, kw, c), np.int64)
    for a in range(kh):
        for b in range(kw):
            patches[:, :, a, b, :] = index[a:a + sh * (ho - 1) + 1:sh, b:b + sw * (wo - 1) + 1:sw, :]
    return patches.reshape(ho * wo, kh * kw * c), (ho, wo)


def locally_connected(graph, x, kernel: np.ndarray, bias, kernel_size, stride, pad=((0, 0), (0, 0))):
    """LC2D of kernel (H_out, W_out, P, C_out): a gather of patches and one batched product over positions."""
    indices, (ho, wo) = patch_indices(x.shape, kernel_size, stride, pad)
    return graph.patch_products(graph.gather(x, indices), kernel, bias, (ho, wo, kernel.shape[-1]))


# ---------------------------------------------------------------------- layers with weights
@exports(Dense)
def _dense(graph, layer: Dense, x):
    if len(x.shape) != 1:
        raise ExportError(f"{layer.name}: only a Dense layer on per-sample vectors is exported, got {x.shape}")
    return graph.matmul(x, weights(layer, "kernel"), weights(layer, "bias"))


@exports(LocallyConnected2D)
def _locally_connected(graph, layer: LocallyConnected2D, x):
    return locally_connected(graph, x, weights(layer, "kernel"), weights(layer, "bias"), layer.kernel, layer.stride)


@exports(Conv2D)
def _conv2d(graph, layer: Conv2D, x):
    """A gather of patches (with the 'same' padding) times the shared kernel (K_h*K_w*C_in, C_out)."""
    indices, (ho, wo) = patch_indices(x.shape, layer.kernel, layer.stride, layer.pad)
    kernel = weights(layer, "kernel")
    return graph.patch_products(graph.gather(x, indices), kernel.reshape(-1, layer.filters), weights(layer, "bias"),
                                (ho, wo, layer.filters))


@exports(BatchNorm)
def _batchnorm(graph, layer: BatchNorm, x):
    """Inference: y = scale x + shift per channel with the moving statistics, folded in float64."""
    be = layer.backend
    gamma, beta = (np.asarray(be.to_numpy(layer.params[k].value), np.float64) for k in ("gamma", "beta"))
    mean, var = (np.asarray(be.to_numpy(layer.state[k]), np.float64) for k in ("moving_mean", "moving_variance"))
    scale = gamma / np.sqrt(var + layer.epsilon)
    positions = x.size // scale.size
    return x * np.tile(scale, positions) + np.tile(beta - scale * mean, positions)


# ---------------------------------------------------------------------- activations
@exports(LeakyReLU)
def _leaky_relu(graph, layer: LeakyReLU, x):
    if layer.alpha == 0.0:
        return graph.unary("Relu", x)
    return graph.unary("LeakyRelu", x, alpha=layer.alpha)


@exports(KneeReLU)
def _knee_relu(graph, layer: KneeReLU, x):
    return knee_relu(graph, x, layer.knee, layer.alpha)


def knee_relu(graph, x, knee: float, alpha: float = 0.0):
    """x^2 / (x + knee) for x > 0, alpha x elsewhere (calosim.layers.KneeReLU)."""
    if knee == 0.0:
        return graph.unary("Relu", x) if alpha == 0.0 else graph.unary("LeakyRelu", x, alpha=alpha)
    positive = graph.maximum(x, 0.0)
    return graph.where(x > 0.0, positive * positive / (positive + knee), x * alpha)


@exports(SplitReLU)
def _split_relu(graph, layer: SplitReLU, x):
    slopes = np.full(x.size, layer.alpha, np.float32)
    slopes[:layer.n_plain] = 0.0
    if layer.n_linear:
        slopes[x.size - layer.n_linear:] = 1.0
    return graph.where(x > 0.0, x, x * slopes)


@exports(Sigmoid)
def _sigmoid(graph, layer, x):
    return sigmoid(x, graph)


@exports(Tanh)
def _tanh(graph, layer, x):
    return graph.tanh(x)


@exports(ChannelSoftmax)
def _channel_softmax(graph, layer, x):
    """exp(x - max) / sum over the channels of each pixel, as the NumPy backend writes it (ONNX's Softmax over
    the middle axis of (pixels, C, N) transposes, and is slower)."""
    channels = x.shape[-1]
    pixels = graph.grouped(x, x.size // channels)  # (pixels, C, N)
    shape = pixels.shape
    peak = graph.op("ReduceMax", [pixels], shape, stacked=True, axes=[1], keepdims=1)
    e = graph.op("Exp", [graph.op("Sub", [pixels, peak], shape, stacked=True)], shape, stacked=True)
    total = graph.op("ReduceSum", [e, graph.const(np.array([1], np.int64))], shape, stacked=True, keepdims=1)
    return graph.flat(graph.op("Div", [e, total], shape, stacked=True), x.shape)


# ---------------------------------------------------------------------- moving cells
@exports(Sequential)
def _sequential(graph, layer: Sequential, x):
    for child in layer.layers:
        x = export_layer(graph, child, x)
    return x


@exports(Dropout)
def _dropout(graph, layer, x):
    return x  # inference: the identity


@exports(Reshape)
def _reshape(graph, layer: Reshape, x):
    return x.reshape(-1, *layer.output_shape)


@exports(ZeroPad2D)
def _zero_pad(graph, layer: ZeroPad2D, x):
    index = image_indices(x.shape, layer.pad)
    return graph.gather(x, index.reshape(-1), index.shape)


@exports(UpSampling2D)
def _upsample(graph, layer: UpSampling2D, x):
    index = np.repeat(np.repeat(image_indices(x.shape), layer.size[0], axis=0), layer.size[1], axis=1)
    return graph.gather(x, index.reshape(-1), index.shape)


@exports(AveragePooling2D)
def _average_pool(graph, layer: AveragePooling2D, x):
    """Floor mode: each output cell the mean of its (p_h, p_w) window, as a gather of windows and a mean."""
    (ph, pw), (h, w, c) = layer.pool, x.shape
    ho, wo = h // ph, w // pw
    index = image_indices(x.shape)[:ho * ph, :wo * pw].reshape(ho, ph, wo, pw, c).transpose(0, 2, 4, 1, 3)
    return graph.mean_of_patches(graph.gather(x, index.reshape(ho * wo * c, ph * pw)), (ho, wo, c))


@exports(InpaintingAttention)
def _attention(graph, layer: InpaintingAttention, xs):
    """w = softmax(LC2D(pad(concat[primary, carry]))) per pixel; w0 primary + w1 carry."""
    primary, carry = xs
    both = graph.concatenate([primary.reshape(-1, primary.size), carry.reshape(-1, carry.size)])
    pixels = primary.size  # (H, W, 1) each: channel k of pixel i is feature k * pixels + i of ``both``
    interleaved = np.stack([np.arange(pixels), pixels + np.arange(pixels)], axis=1)
    x = graph.gather(both, interleaved.reshape(-1), (*primary.shape[:2], 2))
    for child in (layer.pad, layer.local, layer.softmax):
        x = export_layer(graph, child, x)
    w0 = graph.gather(x, 2 * np.arange(pixels), primary.shape)
    w1 = graph.gather(x, 2 * np.arange(pixels) + 1, primary.shape)
    return w0 * primary + w1 * carry
