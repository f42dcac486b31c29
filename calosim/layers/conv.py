"""Conv2D with Keras' padding rules.

Notation: N batch, (H, W, C_in) input, kernel (K_h, K_w), stride (S_h, S_w); W has shape
(K_h, K_w, C_in, C_out), bias (C_out,). padding='same' pads (K - 1) cells in total per axis with the extra one
at the bottom/right (so a 2x2 kernel pads one row and one column at the bottom/right only, as Keras does);
with stride 1 the output keeps the input's size.
"""

from __future__ import annotations

from calosim.layers.base import Layer
from calosim.layers.local import _pair


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Keras/TensorFlow 'same' padding (before, after) of one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Conv2D(Layer):
    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid", use_bias: bool = True,
                 kernel_init="glorot_uniform", bias_init="zeros", name: str | None = None):
        super().__init__(name or "conv2d")
        if padding not in ("same", "valid"):
            raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
        self.filters = int(filters)
        self.kernel = _pair(kernel_size)
        self.stride = _pair(strides)
        self.padding = padding
        self.use_bias = use_bias
        self.kernel_init = kernel_init
        self.bias_init = bias_init

    def _build(self, input_shape, rng):
        if len(input_shape) != 3:
            raise ValueError(f"{self.name}: expects per-sample input (H, W, C), got {input_shape}")
        h, w, c = input_shape
        (kh, kw), (sh, sw) = self.kernel, self.stride
        if self.padding == "same":
            self.pad = (same_padding(h, kh, sh), same_padding(w, kw, sw))
        else:
            self.pad = ((0, 0), (0, 0))
        hp, wp = h + sum(self.pad[0]), w + sum(self.pad[1])
        ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
        if ho < 1 or wo < 1:
            raise ValueError(f"{self.name}: kernel {self.kernel} does not fit input {input_shape}")
        self.add_param("kernel", (kh, kw, c, self.filters), self.kernel_init, rng, kh * kw * c, kh * kw * self.filters)
        if self.use_bias:
            self.add_param("bias", (self.filters,), self.bias_init, rng)
        return (ho, wo, self.filters)

    def gemm_shapes(self, batch):
        kh, kw, ci, co = self.params["kernel"].value.shape
        ho, wo, _ = self.output_shape
        return [(1, batch * ho * wo, kh * kw * ci, co)]

    def _padded(self, x):
        if self.pad == ((0, 0), (0, 0)):
            return x
        return self.backend.pad2d(x, self.pad)

    def forward(self, x, training: bool = True):
        self.check_input(x)
        xp = self._padded(x)
        self._xp = xp  # the padded input is retained for the weight gradient
        bias = self.params["bias"].value if self.use_bias else None
        return self.backend.conv2d_forward(xp, self.params["kernel"].value, bias, self.stride)

    def backward(self, dy):
        be, xp = self.backend, self._xp
        kernel = self.params["kernel"]
        if self.param_grads:
            kernel.grad = be.conv2d_backward_weight(xp, dy, self.kernel, self.stride)
            if self.use_bias:
                self.params["bias"].grad = dy.sum(axis=(0, 1, 2))
        if not self.input_grad:
            return None
        dxp = be.conv2d_backward_data(dy, kernel.value, xp.shape, self.stride)
        return dxp if self.pad == ((0, 0), (0, 0)) else be.pad2d_backward(dxp, self.pad)
