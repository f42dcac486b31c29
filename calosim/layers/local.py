"""LocallyConnected2D: a convolution whose filters are not shared between output positions (Keras' layer).

Notation: N batch, (H, W, C_in) input, kernel (K_h, K_w), stride (S_h, S_w), 'valid' windows,
H_out = (H - K_h) // S_h + 1; W has shape (H_out, W_out, K_h*K_w*C_in, C_out) with the patch axis ordered
(k_h, k_w, c_in); the bias has shape (H_out, W_out, C_out).
"""

from __future__ import annotations

from calosim.layers.base import Layer


def _pair(value) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[1]))


class LocallyConnected2D(Layer):
    def __init__(self, filters: int, kernel_size, strides=1, use_bias: bool = True, kernel_init="glorot_uniform",
                 bias_init="zeros", name: str | None = None):
        super().__init__(name or "lc2d")
        self.filters = int(filters)
        self.kernel = _pair(kernel_size)
        self.stride = _pair(strides)
        self.use_bias = use_bias
        self.kernel_init = kernel_init
        self.bias_init = bias_init

    def _build(self, input_shape, rng):
        if len(input_shape) != 3:
            raise ValueError(f"{self.name}: expects per-sample input (H, W, C), got {input_shape}")
        h, w, c = input_shape
        (kh, kw), (sh, sw) = self.kernel, self.stride
        ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
        if ho < 1 or wo < 1:
            raise ValueError(f"{self.name}: kernel {self.kernel} does not fit input {input_shape}")
        patch = kh * kw * c
        self.add_param("kernel", (ho, wo, patch, self.filters), self.kernel_init, rng, patch, kh * kw * self.filters)
        if self.use_bias:
            self.add_param("bias", (ho, wo, self.filters), self.bias_init, rng)
        return (ho, wo, self.filters)

    def gemm_shapes(self, batch):
        ho, wo, patch, co = self.params["kernel"].value.shape
        return [(ho * wo, batch, patch, co)]

    def forward(self, x, training: bool = True):
        self.check_input(x)
        self._x = x  # retained for the weight gradient
        bias = self.params["bias"].value if self.use_bias else None
        return self.backend.lc2d_forward(x, self.params["kernel"].value, bias, self.kernel, self.stride)

    def backward(self, dy):
        be, x = self.backend, self._x
        kernel = self.params["kernel"]
        if self.param_grads:
            kernel.grad = be.lc2d_backward_weight(x, dy, self.kernel, self.stride)
            if self.use_bias:
                self.params["bias"].grad = dy.sum(axis=0)
        if not self.input_grad:
            return None
        return be.lc2d_backward_data(dy, kernel.value, x.shape, self.kernel, self.stride)
