"""The NumPy backend: the readable specification every other backend is checked against.

Written only with the array-module API (``self.xp``), so it also runs unchanged on CuPy arrays; the
fast backends override the primitives whose loops matter.
"""

from __future__ import annotations

import numpy as np

from calosim.backends.base import Backend


def conv_output_size(size: int, kernel: int, stride: int) -> int:
    """Output length of a 'valid' window of ``kernel`` moved by ``stride`` over ``size`` cells."""
    out = (size - kernel) // stride + 1
    if out < 1:
        raise ValueError(f"kernel {kernel} does not fit an input of size {size}")
    return out


class NumpyBackend(Backend):
    """Reference implementation; float32 or float64."""

    name = "numpy"
    xp = np

    def asarray(self, a, dtype=None):
        return self.xp.ascontiguousarray(self.xp.asarray(a, dtype=dtype or self.dtype))

    def to_numpy(self, a):
        return np.asarray(a)

    def matmul(self, a, b, out=None):
        return self.xp.matmul(a, b, out=out)

    # ----------------------------------------------------------------- patches (im2col) helpers
    def _patches(self, x, kernel, stride):
        """Patches of x (N, H, W, C): (N, H_out, W_out, K_h, K_w, C), patch order (k_h, k_w, c)."""
        n, h, w, c = x.shape
        (kh, kw), (sh, sw) = kernel, stride
        ho, wo = conv_output_size(h, kh, sh), conv_output_size(w, kw, sw)
        patches = self.xp.empty((n, ho, wo, kh, kw, c), dtype=x.dtype)
        for a in range(kh):
            for b in range(kw):
                patches[:, :, :, a, b, :] = x[:, a : a + sh * (ho - 1) + 1 : sh, b : b + sw * (wo - 1) + 1 : sw, :]
        return patches

    def _fold_patches(self, dpatches, x_shape, stride):
        """Adjoint of :meth:`_patches`: sum patch gradients (N, H_out, W_out, K_h, K_w, C) into (N, H, W, C)."""
        _, ho, wo, kh, kw, _ = dpatches.shape
        sh, sw = stride
        dx = self.xp.zeros(x_shape, dtype=dpatches.dtype)
        for a in range(kh):
            for b in range(kw):
                dx[:, a : a + sh * (ho - 1) + 1 : sh, b : b + sw * (wo - 1) + 1 : sw, :] += dpatches[:, :, :, a, b, :]
        return dx

    # ----------------------------------------------------------------- locally connected 2D
    def lc2d_forward(self, x, w, b, kernel, stride):
        n = x.shape[0]
        ho, wo, p, co = w.shape
        patches = self._patches(x, kernel, stride).reshape(n, ho * wo, p).transpose(1, 0, 2)
        y = self.matmul(patches, w.reshape(ho * wo, p, co))  # (L, N, C_out)
        y = y.transpose(1, 0, 2).reshape(n, ho, wo, co)
        if b is not None:
            y = y + b
        return self.xp.ascontiguousarray(y)

    def lc2d_backward_data(self, dy, w, x_shape, kernel, stride):
        n, ho, wo, co = dy.shape
        p = w.shape[2]
        dy_l = dy.reshape(n, ho * wo, co).transpose(1, 0, 2)
        dpatches = self.matmul(dy_l, w.reshape(ho * wo, p, co).transpose(0, 2, 1))  # (L, N, P)
        dpatches = dpatches.transpose(1, 0, 2).reshape(n, ho, wo, kernel[0], kernel[1], x_shape[3])
        return self._fold_patches(dpatches, x_shape, stride)

    def lc2d_backward_weight(self, x, dy, kernel, stride):
        n, ho, wo, co = dy.shape
        patches = self._patches(x, kernel, stride).reshape(n, ho * wo, -1).transpose(1, 2, 0)  # (L, P, N)
        dw = self.matmul(patches, dy.reshape(n, ho * wo, co).transpose(1, 0, 2))  # (L, P, C_out)
        return dw.reshape(ho, wo, -1, co)

    # ----------------------------------------------------------------- convolution ('valid')
    def conv2d_forward(self, x, w, b, stride):
        kh, kw, ci, co = w.shape
        patches = self._patches(x, (kh, kw), stride)
        n, ho, wo = patches.shape[:3]
        y = self.matmul(patches.reshape(n * ho * wo, kh * kw * ci), w.reshape(kh * kw * ci, co))
        y = y.reshape(n, ho, wo, co)
        if b is not None:
            y = y + b
        return y

    def conv2d_backward_data(self, dy, w, x_shape, stride):
        kh, kw, ci, co = w.shape
        n, ho, wo, _ = dy.shape
        dpatches = self.matmul(dy.reshape(n * ho * wo, co), w.reshape(kh * kw * ci, co).T)
        return self._fold_patches(dpatches.reshape(n, ho, wo, kh, kw, ci), x_shape, stride)

    def conv2d_backward_weight(self, x, dy, kernel, stride):
        n, ho, wo, co = dy.shape
        ci = x.shape[3]
        patches = self._patches(x, kernel, stride).reshape(n * ho * wo, -1)
        dw = self.matmul(patches.T, dy.reshape(n * ho * wo, co))
        return dw.reshape(kernel[0], kernel[1], ci, co)

    # ----------------------------------------------------------------- shape ops
    def pad2d(self, x, pad):
        (top, bottom), (left, right) = pad
        return self.xp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))

    def upsample2d(self, x, factor):
        return self.xp.repeat(self.xp.repeat(x, factor[0], axis=1), factor[1], axis=2)

    def avgpool2d(self, x, pool):
        n, h, w, c = x.shape
        ph, pw = pool
        ho, wo = h // ph, w // pw
        x = x[:, : ho * ph, : wo * pw, :]
        return x.reshape(n, ho, ph, wo, pw, c).mean(axis=(2, 4))

    def pad2d_backward(self, dy, pad):
        (top, bottom), (left, right) = pad
        return self.xp.ascontiguousarray(dy[:, top : dy.shape[1] - bottom, left : dy.shape[2] - right, :])

    def upsample2d_backward(self, dy, factor):
        n, h, w, c = dy.shape
        fh, fw = factor
        return dy.reshape(n, h // fh, fh, w // fw, fw, c).sum(axis=(2, 4))

    def avgpool2d_backward(self, dy, pool, x_shape):
        ph, pw = pool
        _, ho, wo, _ = dy.shape
        dx = self.xp.zeros(x_shape, dtype=dy.dtype)
        dx[:, : ho * ph, : wo * pw, :] = self.upsample2d(dy * dy.dtype.type(1.0 / (ph * pw)), pool)
        return dx

    # ----------------------------------------------------------------- batch normalisation
    def batchnorm_forward(self, x, gamma, beta, eps):
        axes = tuple(range(x.ndim - 1))
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)
        inv_std = 1.0 / self.xp.sqrt(var + eps)
        x_hat = (x - mean) * inv_std
        return gamma * x_hat + beta, mean, var, x_hat, inv_std

    def batchnorm_backward(self, dy, x_hat, inv_std, gamma):
        axes = tuple(range(dy.ndim - 1))
        count = dy.size // dy.shape[-1]
        dbeta = dy.sum(axis=axes)
        dgamma = (dy * x_hat).sum(axis=axes)
        dx = (gamma * inv_std / count) * (count * dy - dbeta - x_hat * dgamma)
        return dx, dgamma, dbeta

    # ----------------------------------------------------------------- activations
    def leaky_relu(self, x, alpha):
        return self.xp.where(x > 0, x, x * x.dtype.type(alpha))

    def leaky_relu_backward(self, x, dy, alpha):
        return self.xp.where(x > 0, dy, dy * dy.dtype.type(alpha))

    def channel_softmax(self, x):
        e = self.xp.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def channel_softmax_backward(self, y, dy):
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))

    # ----------------------------------------------------------------- minibatch discrimination
    def mbd_forward(self, m):
        l1 = self.xp.abs(m[:, None, :, :] - m[None, :, :, :]).sum(axis=3)  # (N, N, K)
        return self.xp.exp(-l1).sum(axis=1)

    def mbd_backward(self, m, do):
        diff = m[:, None, :, :] - m[None, :, :, :]  # (N, N, K, D)
        e = self.xp.exp(-self.xp.abs(diff).sum(axis=3))  # (N, N, K), symmetric in (i, j)
        weight = (do[:, None, :] + do[None, :, :]) * e
        return -(weight[:, :, :, None] * self.xp.sign(diff)).sum(axis=1)

    # ----------------------------------------------------------------- optimiser
    def adam_update_(self, param, grad, m, v, lr_t, beta1, beta2, eps):
        m *= beta1
        m += (1.0 - beta1) * grad
        v *= beta2
        v += (1.0 - beta2) * grad * grad
        param -= lr_t * m / (self.xp.sqrt(v) + eps)
