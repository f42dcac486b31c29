"""A backend that builds a model without allocating its arrays: every array is a zero-stride view of one
zero, so a model file's config can be built to learn the shapes it implies before anything real is allocated
(calosim.models.file_checks). Nothing can be computed with it: writes into its arrays (a builder scaling its
initial weights) are ignored."""

from __future__ import annotations

import numpy as np

from calosim.backends.numpy_backend import NumpyBackend


class ShapeOnlyArray(np.ndarray):
    """A read-only zero-stride array whose in-place updates and item assignments do nothing."""

    def __setitem__(self, key, value):
        pass

    def _ignore(self, other):
        return self

    __iadd__ = __isub__ = __imul__ = __itruediv__ = __ipow__ = _ignore


class ShapeOnlyBackend(NumpyBackend):
    """Layers ask ``shapes_only`` and skip their initialisers (calosim.layers.base.Layer.add_param)."""

    name = "shapes-only"
    shapes_only = True

    def asarray(self, a, dtype=None):
        return self.zeros(np.shape(a), dtype)

    def zeros(self, shape, dtype=None):
        return np.broadcast_to(np.zeros((), dtype=dtype or self.dtype), tuple(shape)).view(ShapeOnlyArray)
