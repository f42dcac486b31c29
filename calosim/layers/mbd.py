"""Minibatch discrimination (Salimans et al. 2016) with CaloGAN's L1 exponential kernel.

Notation: N batch, F features, K kernels, D kernel dimensions. T has shape (F, K*D);
M = (x T) reshaped (N, K, D); o[i, k] = sum_j exp(-sum_d |M[i, k, d] - M[j, k, d]|) (j = i included,
contributing 1), o (N, K).
"""

from __future__ import annotations

from calosim.layers.base import Layer


class MinibatchDiscrimination(Layer):
    def __init__(self, n_kernels: int = 10, kernel_dim: int = 10, kernel_init="glorot_uniform",
                 name: str | None = None):
        super().__init__(name or "mbd")
        self.n_kernels = int(n_kernels)
        self.kernel_dim = int(kernel_dim)
        self.kernel_init = kernel_init

    def _build(self, input_shape, rng):
        if len(input_shape) != 1:
            raise ValueError(f"{self.name}: expects flat per-sample features (F,), got {input_shape}")
        width = self.n_kernels * self.kernel_dim
        self.add_param("kernel", (input_shape[0], width), self.kernel_init, rng, input_shape[0], width)
        return (self.n_kernels,)

    def gemm_shapes(self, batch):
        return [(1, batch, self.input_shape[0], self.n_kernels * self.kernel_dim)]

    def forward(self, x, training: bool = True):
        self.check_input(x)
        be = self.backend
        m = be.matmul(x, self.params["kernel"].value).reshape(x.shape[0], self.n_kernels, self.kernel_dim)
        self._x, self._m = x, m  # both retained: x for dT, M for the kernel's gradient
        return be.mbd_forward(m)

    def backward(self, do):
        be = self.backend
        kernel = self.params["kernel"]
        dm = be.mbd_backward(self._m, do).reshape(do.shape[0], -1)
        if self.param_grads:
            kernel.grad = be.matmul(self._x.T, dm)
        return be.matmul(dm, kernel.value.T) if self.input_grad else None
