"""CaloGAN's layer-to-layer attention ("in-painting"): a learned per-pixel blend of two images.

attention(primary, carry): x = concat([primary, carry], channels) -> ZeroPad(1) -> LocallyConnected2D(2, 3x3)
with bias 0 for channel 0 and -10 for channel 1 -> per-pixel softmax over the 2 channels ->
w0 * primary + w1 * carry. It starts out (w1 ~ 5e-5) ignoring the carried-over image.
Inputs and output are (N, H, W, 1).
"""

from __future__ import annotations

import numpy as np

from calosim.layers.activations import ChannelSoftmax
from calosim.layers.base import Layer
from calosim.layers.local import LocallyConnected2D
from calosim.layers.shape import Concat, ZeroPad2D


def _channel_bias(rng, shape, fan_in=0, fan_out=0):
    return np.broadcast_to(np.array([0.0, -10.0]), shape).copy()


class InpaintingAttention(Layer):
    def __init__(self, name: str | None = None):
        super().__init__(name or "attention")

    def _build(self, input_shapes, rng):
        primary, carry = (tuple(s) for s in input_shapes)
        if primary != carry or primary[-1] != 1:
            raise ValueError(f"{self.name}: needs two (H, W, 1) inputs of the same shape, got {input_shapes}")
        self.concat = Concat(axis=-1, name=f"{self.name}.concat")
        self.pad = ZeroPad2D(1, name=f"{self.name}.pad")
        self.local = LocallyConnected2D(2, 3, bias_init=_channel_bias, name=f"{self.name}.lc2d")
        self.softmax = ChannelSoftmax(name=f"{self.name}.softmax")
        shape = self.concat.build([primary, carry], self.backend, rng)
        shape = self.pad.build(shape, self.backend, rng)
        shape = self.local.build(shape, self.backend, rng)
        self.softmax.build(shape, self.backend, rng)
        return primary

    def sublayers(self):
        return [self.concat, self.pad, self.local, self.softmax]

    def forward(self, xs, training: bool = True):
        primary, carry = xs
        x = self.concat.forward([primary, carry], training)
        w = self.softmax.forward(self.local.forward(self.pad.forward(x, training), training), training)
        self._primary, self._carry, self._w = primary, carry, w  # all retained for the blend's gradient
        return w[..., 0:1] * primary + w[..., 1:2] * carry

    def backward(self, dy):
        xp = self.backend.xp
        w = self._w
        dw = xp.concatenate([dy * self._primary, dy * self._carry], axis=-1)
        dx = self.pad.backward(self.local.backward(self.softmax.backward(dw)))
        d_primary, d_carry = self.concat.backward(dx)
        return [d_primary + dy * w[..., 0:1], d_carry + dy * w[..., 1:2]]
