"""Dense (fully connected) layer: y = x W + b.

Notation: N batch, F_in, F_out; W has shape (F_in, F_out), b (F_out,). The input may have any per-sample
shape ending in F_in (for example (K, F_in)); the matrix product acts on the last axis.
"""

from __future__ import annotations

import numpy as np

from calosim.layers.base import Layer


class Dense(Layer):
    def __init__(self, units: int, use_bias: bool = True, kernel_init="glorot_uniform", bias_init="zeros",
                 name: str | None = None):
        super().__init__(name or "dense")
        self.units = int(units)
        self.use_bias = use_bias
        self.kernel_init = kernel_init
        self.bias_init = bias_init

    def _build(self, input_shape, rng):
        fan_in = input_shape[-1]
        self.add_param("kernel", (fan_in, self.units), self.kernel_init, rng, fan_in, self.units)
        if self.use_bias:
            self.add_param("bias", (self.units,), self.bias_init, rng)
        return (*input_shape[:-1], self.units)

    def gemm_shapes(self, batch):
        rows = batch * int(np.prod(self.input_shape[:-1], dtype=np.int64))
        return [(1, rows, self.input_shape[-1], self.units)]

    def forward(self, x, training: bool = True):
        self.check_input(x)
        self._x = x  # retained for the weight gradient
        y = self.backend.matmul(x, self.params["kernel"].value)
        if self.use_bias:
            y += self.params["bias"].value
        return y

    def backward(self, dy):
        be, x = self.backend, self._x
        kernel = self.params["kernel"]
        fan_in = kernel.value.shape[0]
        if self.param_grads:
            x2, dy2 = x.reshape(-1, fan_in), dy.reshape(-1, self.units)
            previous = kernel.grad  # overwritten in place (see Parameter): a fresh 72 MB array faults in its pages
            dtype = np.result_type(x2.dtype, dy2.dtype)
            reuse = (previous is not None and previous.shape == kernel.value.shape and previous.dtype == dtype
                     and previous.flags.c_contiguous)
            kernel.grad = be.matmul(x2.T, dy2, out=previous if reuse else None)
            if self.use_bias:
                self.params["bias"].grad = dy2.sum(axis=0)
        return be.matmul(dy, kernel.value.T) if self.input_grad else None
