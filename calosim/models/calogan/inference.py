"""The CaloGAN generator for sampling only, with exact algebraic folds made once when a model is loaded.

Inference (BatchNorm with its moving statistics) makes each generator stream
    Dense -> Reshape -> Conv2D(same) -> LeakyReLU -> BatchNorm -> LC2D -> LeakyReLU -> LC2D(no bias)
a chain in which two pairs of neighbours are both affine and can be merged:
- Dense then Conv2D: padding and convolution are linear, so conv(pad(h W + b)) = h conv(pad(W)) + conv(pad(b))
  + b_conv, a single Dense with (R+2)(C+2) C_conv outputs instead of (R+2)(C+2) C_dense (fewer weights to read
  and 16/36 of the dense layer's multiply-adds in the paper's config);
- BatchNorm then the first LC2D: y = s x + t per channel, so LC2D(s x + t) has weights w[., ., (k, c), .] s[c]
  and bias b + sum_p w[., ., p, .] t[c(p)] (the LC2D is 'valid', no padding between them, so this is exact).
The folds are computed in float64 and cast to the backend's dtype; results equal the unfolded inference
forward up to float32 rounding (tests/test_inference.py). Attention and the final ReLU run as trained.
"""

from __future__ import annotations

import numpy as np

from calosim.backends import get_backend
from calosim.layers import BatchNorm, Conv2D, Dense, LeakyReLU, LocallyConnected2D, Reshape
from calosim.models.calogan.generator import generator_input, scale_output


def _numpy(backend, array) -> np.ndarray:
    return np.asarray(backend.to_numpy(array), dtype=np.float64)


class _FoldedStream:
    """One generator stream after the folds: Dense' -> LeakyReLU -> LC2D' -> LeakyReLU -> LC2D."""

    def __init__(self, stream, backend):
        dense, reshape, conv, act1, norm, local1, act2, local2 = stream.layers
        expected = (Dense, Reshape, Conv2D, LeakyReLU, BatchNorm, LocallyConnected2D, LeakyReLU, LocallyConnected2D)
        if not all(isinstance(layer, kind) for layer, kind in zip(stream.layers, expected)):
            raise ValueError(f"{stream.name}: not a CaloGAN generator stream")
        ref = get_backend("numpy", "float64")
        be = backend
        # Dense then Conv2D -> one Dense
        latent = dense.input_shape[0]
        w = _numpy(be, dense.params["kernel"].value).reshape(latent, *reshape.target_shape)
        b = _numpy(be, dense.params["bias"].value).reshape(1, *reshape.target_shape)
        k = _numpy(be, conv.params["kernel"].value)
        conv_bias = _numpy(be, conv.params["bias"].value) if conv.use_bias else None
        w_folded = ref.conv2d_forward(ref.pad2d(w, conv.pad), k, None, conv.stride)
        b_folded = ref.conv2d_forward(ref.pad2d(b, conv.pad), k, conv_bias, conv.stride)
        self.image_shape = w_folded.shape[1:]
        self.kernel = be.asarray(w_folded.reshape(latent, -1))
        self.bias = be.asarray(b_folded.reshape(-1))
        # BatchNorm then LC2D -> one LC2D
        gamma, beta = _numpy(be, norm.params["gamma"].value), _numpy(be, norm.params["beta"].value)
        mean, var = _numpy(be, norm.state["moving_mean"]), _numpy(be, norm.state["moving_variance"])
        scale = gamma / np.sqrt(var + norm.epsilon)
        shift = beta - scale * mean
        taps = local1.kernel[0] * local1.kernel[1]
        w1 = _numpy(be, local1.params["kernel"].value)  # (H_out, W_out, taps * C, C_out), patch order (k, c)
        b1 = _numpy(be, local1.params["bias"].value) if local1.use_bias else 0.0
        self.local1_kernel = be.asarray(w1 * np.tile(scale, taps)[None, None, :, None])
        self.local1_bias = be.asarray(b1 + np.einsum("ijpo,p->ijo", w1, np.tile(shift, taps)))
        self.local1, self.local2 = local1, local2
        self.local2_kernel = local2.params["kernel"].value
        self.local2_bias = local2.params["bias"].value if local2.use_bias else None
        self.alpha1, self.alpha2 = act1.alpha, act2.alpha
        self.backend = be

    def forward(self, h):
        be = self.backend
        y = be.matmul(h, self.kernel)
        y += self.bias
        y = be.leaky_relu(y.reshape(h.shape[0], *self.image_shape), self.alpha1)
        y = be.lc2d_forward(y, self.local1_kernel, self.local1_bias, self.local1.kernel, self.local1.stride)
        y = be.leaky_relu(y, self.alpha2)
        return be.lc2d_forward(y, self.local2_kernel, self.local2_bias, self.local2.kernel, self.local2.stride)

    def export_onnx(self, graph, h):
        """:meth:`forward` on an ONNX graph (calosim.export.graph)."""
        numpy = self.backend.to_numpy
        y = graph.matmul(h, numpy(self.kernel), numpy(self.bias))
        y = graph.leaky_relu(y.reshape(-1, *self.image_shape), self.alpha1)
        y = graph.locally_connected(y, numpy(self.local1_kernel), numpy(self.local1_bias), self.local1.kernel,
                                    self.local1.stride)
        y = graph.leaky_relu(y, self.alpha2)
        bias = None if self.local2_bias is None else numpy(self.local2_bias)
        return graph.locally_connected(y, numpy(self.local2_kernel), bias, self.local2.kernel, self.local2.stride)

    def gemm_shapes(self, batch: int):
        latent, outputs = self.kernel.shape
        return [(1, batch, latent, outputs), *self.local1.gemm_shapes(batch), *self.local2.gemm_shapes(batch)]


class FoldedGenerator:
    """Sampling-only twin of a trained ``CaloGANGenerator``: ``forward(z, E)`` equals
    ``generator.forward([z, E], training=False)`` (images (N, R_l, C_l, 1) in training units)."""

    def __init__(self, generator):
        self.generator = generator
        self.backend = generator.backend
        self.streams = [_FoldedStream(stream, self.backend) for stream in generator.streams]

    def forward(self, z, energy):
        g = self.generator
        h, s = generator_input(z, energy, g.config, self.backend.xp)
        xs = [stream.forward(h) for stream in self.streams]
        for index in range(1, len(xs)):
            if g.attentions[index] is not None:
                carried = g.carries[index].forward(xs[index - 1], False)
                xs[index] = g.attentions[index].forward([xs[index], carried], False)
        return scale_output([relu.forward(x, False) for relu, x in zip(g.relus, xs)], s, g.config)

    def export_onnx(self, graph, z, energy):
        """:meth:`forward` on an ONNX graph (calosim.export.graph, standing in for the array module): the
        images [(N, R_l, C_l, 1)] in training units for the graph's z and energy values."""
        g = self.generator
        h, s = generator_input(z, energy, g.config, graph)
        xs = [stream.export_onnx(graph, h) for stream in self.streams]
        for index in range(1, len(xs)):
            if g.attentions[index] is not None:
                carried = graph.layer(g.carries[index], xs[index - 1])
                xs[index] = graph.layer(g.attentions[index], [xs[index], carried])
        # inference never leaks (the annealed ReLU's slope is 0 outside training)
        return scale_output([graph.knee_relu(x, relu.knee) for relu, x in zip(g.relus, xs)], s, g.config)

    def gemm_shapes(self, batch: int):
        """The products this path executes (fewer than the trained generator's, see the module docstring)."""
        shapes = [s for stream in self.streams for s in stream.gemm_shapes(batch)]
        shapes += [s for a in self.generator.attentions if a is not None for s in a.gemm_shapes(batch)]
        return shapes

    def flops(self, batch: int) -> int:
        return int(sum(2 * count * m * k * n for count, m, k, n in self.gemm_shapes(batch)))
