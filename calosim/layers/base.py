"""Layer, Parameter and Sequential: the contract every op follows.

A layer is built once for a per-sample input shape on a backend, then ``forward`` keeps what ``backward``
needs (said in a comment in each layer) and ``backward`` returns dL/dx and stores dL/dparam in each
``Parameter.grad`` (overwritten, not accumulated: every optimiser step follows one backward; a layer may
write the new gradient into the previous gradient's array, so a caller keeping a gradient copies it).
"""

from __future__ import annotations

import numpy as np

from calosim.layers.init import get_initializer


class Parameter:
    """A trainable array on the backend, with its gradient after a backward pass."""

    __slots__ = ("name", "value", "grad")

    def __init__(self, name: str, value):
        self.name = name
        self.value = value
        self.grad = None

    def __repr__(self) -> str:
        return f"Parameter({self.name}, shape={tuple(self.value.shape)})"


class Layer:
    """Base class. Subclasses implement ``_build``, ``forward`` and ``backward``."""

    def __init__(self, name: str | None = None):
        self.name = name or type(self).__name__.lower()
        self.params: dict[str, Parameter] = {}
        self.state: dict[str, object] = {}  # non-trainable arrays saved with the model (BatchNorm statistics)
        # Work a caller may switch off: parameter gradients (a frozen network in another network's step) and
        # the input gradient (a first layer whose input is data or noise); backward then returns None.
        self.param_grads = True
        self.input_grad = True
        self.backend = None
        self.input_shape: tuple | None = None
        self.output_shape: tuple | None = None

    # --------------------------------------------------------------- construction
    def build(self, input_shape, backend, rng: np.random.Generator):
        """Create parameters for per-sample ``input_shape``; returns the per-sample output shape."""
        self.backend = backend
        self.input_shape = tuple(input_shape) if not _is_shape_list(input_shape) else input_shape
        self.output_shape = self._build(self.input_shape, rng)
        return self.output_shape

    def _build(self, input_shape, rng):
        return input_shape

    def add_param(self, name: str, shape, init, rng, fan_in: int = 0, fan_out: int = 0) -> Parameter:
        if getattr(self.backend, "shapes_only", False):  # a build that only learns the shapes: draw nothing
            value = np.broadcast_to(np.zeros(()), tuple(shape))
        else:
            value = get_initializer(init)(rng, tuple(shape), fan_in, fan_out)
        param = Parameter(f"{self.name}/{name}", self.backend.asarray(value))
        self.params[name] = param
        return param

    # --------------------------------------------------------------- passes
    def forward(self, x, training: bool = True):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    # --------------------------------------------------------------- state
    def sublayers(self) -> list[Layer]:
        return []

    def walk(self):
        """This layer and every layer inside it, depth first."""
        yield self
        for layer in self.sublayers():
            yield from layer.walk()

    def parameters(self) -> list[Parameter]:
        return [p for layer in self.walk() for p in layer.params.values()]

    def gemm_shapes(self, batch: int) -> list[tuple[int, int, int, int]]:
        """The matrix products of one forward pass as (count, M, K, N): count products of (M, K) x (K, N)."""
        return [shape for layer in self.sublayers() for shape in layer.gemm_shapes(batch)]

    def flops(self, batch: int) -> int:
        """Floating-point operations of one forward pass over ``batch`` samples, counted from the products
        (2 M K N each); element-wise work is not counted."""
        return int(sum(2 * count * m * k * n for count, m, k, n in self.gemm_shapes(batch)))

    def set_param_grads(self, flag: bool) -> None:
        """Compute parameter gradients in backward (True) or leave them untouched (False), for every sublayer."""
        for layer in self.walk():
            layer.param_grads = flag

    def num_params(self) -> int:
        return int(sum(int(np.prod(p.value.shape)) for p in self.parameters()))

    def check_input(self, x, ndim_extra: int | None = None) -> None:
        """Fail early, with the layer's name, when ``x`` does not have the built per-sample shape."""
        if tuple(x.shape[1:]) != tuple(self.input_shape):
            raise ValueError(
                f"{self.name}: expected input (N, {', '.join(map(str, self.input_shape))}), got {tuple(x.shape)}"
            )


def _is_shape_list(shape) -> bool:
    return isinstance(shape, list) and len(shape) > 0 and isinstance(shape[0], (tuple, list))


class Sequential(Layer):
    """A chain of single-input layers; names its children ``<name>.<index>.<child>``."""

    def __init__(self, layers: list[Layer], name: str | None = None):
        super().__init__(name or "sequential")
        self.layers = list(layers)

    def _build(self, input_shape, rng):
        shape = input_shape
        for index, layer in enumerate(self.layers):
            layer.name = f"{self.name}.{index}.{layer.name}"
            shape = layer.build(shape, self.backend, rng)
        return shape

    def forward(self, x, training: bool = True):
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def sublayers(self) -> list[Layer]:
        return self.layers


def pass_products(net, batch: int, backward: bool, weight_grads: bool = True) -> list[tuple[int, int, int, int]]:
    """The matrix products (count, M, K, N) of one forward pass of ``net``, or of one backward pass: per layer
    the weight gradient (count, K, M, N) when it has parameters and ``weight_grads``, and the input gradient
    (count, M, N, K) unless the layer skips it (``input_grad``: the generator's first dense layers)."""
    shapes = []
    for layer in net.walk():
        if layer.sublayers():
            continue
        for count, m, k, n in layer.gemm_shapes(batch):
            if not backward:
                shapes.append((count, m, k, n))
                continue
            if weight_grads and layer.params:
                shapes.append((count, k, m, n))
            if layer.input_grad:
                shapes.append((count, m, n, k))
    return shapes
