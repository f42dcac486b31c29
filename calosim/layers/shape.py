"""Layers that move cells without arithmetic weights: padding, up-sampling, pooling, reshaping, concatenation.

All act on channels-last images (N, H, W, C) except Reshape/Flatten/Concat, which take any shape.
"""

from __future__ import annotations

import numpy as np

from calosim.layers.base import Layer
from calosim.layers.local import _pair


class ZeroPad2D(Layer):
    """Zero padding ``((top, bottom), (left, right))``; an int pads every side by that many cells."""

    def __init__(self, padding=1, name: str | None = None):
        super().__init__(name or "zeropad2d")
        if isinstance(padding, int):
            padding = ((padding, padding), (padding, padding))
        self.pad = tuple(_pair(p) for p in padding)

    def _build(self, input_shape, rng):
        h, w, c = input_shape
        return (h + sum(self.pad[0]), w + sum(self.pad[1]), c)

    def forward(self, x, training: bool = True):
        self.check_input(x)
        return self.backend.pad2d(x, self.pad)  # nothing retained

    def backward(self, dy):
        return self.backend.pad2d_backward(dy, self.pad)


class UpSampling2D(Layer):
    """Nearest-neighbour up-sampling: every cell repeated ``size = (f_h, f_w)`` times."""

    def __init__(self, size=2, name: str | None = None):
        super().__init__(name or "upsampling2d")
        self.size = _pair(size)

    def _build(self, input_shape, rng):
        h, w, c = input_shape
        return (h * self.size[0], w * self.size[1], c)

    def forward(self, x, training: bool = True):
        self.check_input(x)
        return self.backend.upsample2d(x, self.size)  # nothing retained

    def backward(self, dy):
        return self.backend.upsample2d_backward(dy, self.size)


class AveragePooling2D(Layer):
    """Average over non-overlapping ``pool = (p_h, p_w)`` windows (stride = pool, floor mode)."""

    def __init__(self, pool_size=2, name: str | None = None):
        super().__init__(name or "avgpool2d")
        self.pool = _pair(pool_size)

    def _build(self, input_shape, rng):
        h, w, c = input_shape
        if h < self.pool[0] or w < self.pool[1]:
            raise ValueError(f"{self.name}: pool {self.pool} larger than input {input_shape}")
        return (h // self.pool[0], w // self.pool[1], c)

    def forward(self, x, training: bool = True):
        self.check_input(x)
        return self.backend.avgpool2d(x, self.pool)  # nothing retained

    def backward(self, dy):
        return self.backend.avgpool2d_backward(dy, self.pool, (dy.shape[0], *self.input_shape))


class Reshape(Layer):
    """Per-sample reshape to ``target_shape``."""

    def __init__(self, target_shape, name: str | None = None):
        super().__init__(name or "reshape")
        self.target_shape = tuple(int(s) for s in target_shape)

    def _build(self, input_shape, rng):
        if int(np.prod(input_shape)) != int(np.prod(self.target_shape)):
            raise ValueError(f"{self.name}: cannot reshape {input_shape} to {self.target_shape}")
        return self.target_shape

    def forward(self, x, training: bool = True):
        self.check_input(x)
        return x.reshape((x.shape[0], *self.target_shape))

    def backward(self, dy):
        return dy.reshape((dy.shape[0], *self.input_shape))


class Flatten(Reshape):
    """Per-sample flatten to one axis."""

    def __init__(self, name: str | None = None):
        super().__init__((), name=name or "flatten")

    def _build(self, input_shape, rng):
        self.target_shape = (int(np.prod(input_shape)),)
        return self.target_shape


class Concat(Layer):
    """Concatenation of several inputs along ``axis`` (a per-sample axis; -1 = the last).

    Built with a list of per-sample shapes; ``forward`` takes a list of arrays and ``backward`` returns one.
    """

    def __init__(self, axis: int = -1, name: str | None = None):
        super().__init__(name or "concat")
        self.axis = axis

    def _build(self, input_shapes, rng):
        shapes = [tuple(s) for s in input_shapes]
        ndim = len(shapes[0])
        axis = self.axis % ndim
        for s in shapes:
            if len(s) != ndim or any(s[i] != shapes[0][i] for i in range(ndim) if i != axis):
                raise ValueError(f"{self.name}: shapes {shapes} do not concatenate along axis {self.axis}")
        self._sizes = [s[axis] for s in shapes]
        self._axis = axis + 1  # batch axis in front
        out = list(shapes[0])
        out[axis] = sum(self._sizes)
        return tuple(out)

    def forward(self, xs, training: bool = True):
        for x, shape in zip(xs, self.input_shape):
            if tuple(x.shape[1:]) != tuple(shape):
                raise ValueError(f"{self.name}: expected an input (N, {shape}), got {tuple(x.shape)}")
        return self.backend.xp.concatenate(list(xs), axis=self._axis)

    def backward(self, dy):
        xp = self.backend.xp
        bounds = np.cumsum(self._sizes)[:-1].tolist()
        return [xp.ascontiguousarray(part) for part in xp.split(dy, bounds, axis=self._axis)]
