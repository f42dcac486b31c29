"""An ONNX graph under construction, with enough of NumPy's surface that calosim's own formulas build it.

A model's sampling path is exported by running its inference code with a :class:`Graph` in place of the array
module ``xp`` (``graph.log``, ``graph.where``, ``graph.concatenate``, ...) and :class:`Tensor` values in place of
arrays (``+ - * / **``, comparisons, ``x[:, a:b]``, ``x.reshape(-1, ...)``, ``x.sum(axis=1, keepdims=True)``):
the graph then holds the same operations in the same order, so ONNX Runtime and calosim differ by float32
rounding only. Layers with weights are emitted by calosim.export.layers.

Layout: inside the graph every value is a float32 (or bool) tensor (F, N), feature-major: F the per-sample
features flattened in C order (an image (H, W, C) channels-last has F = H*W*C) and N the dynamic batch size,
last; a Tensor keeps its per-sample shape in Python. Patches, padding, up-sampling and pooling are then one
Gather of whole rows of N values (a memory copy per index; on (N, F) ONNX Runtime gathers value by value, 10x
slower), consecutive locally connected layers need no transposes between them, and a reshape between
per-sample shapes of one size costs no node. Only the inputs (N, ...) and outputs (N, R, C) are transposed.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17  # ONNX Runtime >= 1.11; Geant4's Par04 example and ATLAS FastCaloSim run such runtimes
IR_VERSION = 8  # the IR version of opset 17, so that older runtimes load the file
BATCH = "N"
_ONNX_TYPES = {np.float32: TensorProto.FLOAT, np.int64: TensorProto.INT64, np.bool_: TensorProto.BOOL}


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


class Tensor:
    """A value of the graph: its ONNX name, per-sample shape and dtype (on the graph: (prod(shape), N))."""

    __array_ufunc__ = None  # numpy scalars and arrays defer to our operators

    def __init__(self, graph: Graph, name: str, shape: tuple, dtype=np.float32, stacked: bool = False):
        self.graph, self.name, self.shape, self.dtype = graph, name, tuple(int(s) for s in shape), dtype
        self.stacked = stacked  # stored as (*shape, N) (patches), not (F, N): only the patch ops take it
        self.origin = None  # (source, indices) when a gather made this value (the next gather composes)

    @property
    def size(self) -> int:
        return _size(self.shape)

    def __repr__(self) -> str:
        return f"Tensor({self.name}, ({self.size}, N) as per-sample {self.shape})"

    # arithmetic and comparisons, as NumPy broadcasts them on (N, F)
    def __add__(self, other):
        return self.graph.binary("Add", self, other)

    def __radd__(self, other):
        return self.graph.binary("Add", other, self)

    def __sub__(self, other):
        return self.graph.binary("Sub", self, other)

    def __rsub__(self, other):
        return self.graph.binary("Sub", other, self)

    def __mul__(self, other):
        return self.graph.binary("Mul", self, other)

    def __rmul__(self, other):
        return self.graph.binary("Mul", other, self)

    def __truediv__(self, other):
        return self.graph.binary("Div", self, other)

    def __rtruediv__(self, other):
        return self.graph.binary("Div", other, self)

    def __pow__(self, other):
        return self.graph.binary("Pow", self, other)

    def __neg__(self):
        return self.graph.unary("Neg", self)

    def __gt__(self, other):
        return self.graph.binary("Greater", self, other, np.bool_)

    def __lt__(self, other):
        return self.graph.binary("Less", self, other, np.bool_)

    def __ge__(self, other):
        return self.graph.binary("GreaterOrEqual", self, other, np.bool_)

    # shape handling
    def __getitem__(self, index):
        """``x[:, a:b]``: features a..b of a flat (per-sample 1-D) value."""
        if not (isinstance(index, tuple) and len(index) == 2 and index[0] == slice(None)
                and isinstance(index[1], slice) and len(self.shape) == 1 and index[1].step in (None, 1)):
            raise TypeError(f"{self}: only x[:, a:b] on a per-sample vector is exported, not {index}")
        start, stop, _ = index[1].indices(self.shape[0])
        return self.graph.features(self, start, stop)

    def reshape(self, *shape):
        """``x.reshape(-1, *per_sample)`` (or the batch size first): a new per-sample shape of the same size."""
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple) else shape
        per_sample = tuple(shape[1:])
        if self.stacked or _size(per_sample) != self.size:
            raise ValueError(f"{self}: cannot reshape to per-sample {per_sample}")
        out = Tensor(self.graph, self.name, per_sample, self.dtype)
        out.origin = self.origin
        return out

    def astype(self, dtype):
        """The value itself, or a bool value as float32 (0, 1), e.g. to count the true features."""
        if np.dtype(dtype) == np.dtype(self.dtype):
            return self
        if np.dtype(self.dtype) == np.bool_ and np.dtype(dtype) == np.float32:
            return self.graph.op("Cast", [self], self.shape, np.float32, to=TensorProto.FLOAT)
        raise TypeError(f"{self}: the exported graph is float32 throughout")

    def sum(self, axis=1, keepdims=True):
        """The sum over all features (N, 1), as ``x.sum(axis=1, keepdims=True)`` of a (N, F) array."""
        if axis not in (1, -1) or not keepdims or len(self.shape) != 1:
            raise TypeError(f"{self}: only x.sum(axis=1, keepdims=True) of a per-sample vector is exported")
        return self.graph.op("ReduceSum", [self, self.graph.const(np.array([0], np.int64))], (1,), keepdims=1)

    def max(self, axis=1, keepdims=True):
        """The largest feature (N, 1), as ``x.max(axis=1, keepdims=True)`` of a (N, F) array."""
        if axis not in (1, -1) or not keepdims or len(self.shape) != 1:
            raise TypeError(f"{self}: only x.max(axis=1, keepdims=True) of a per-sample vector is exported")
        return self.graph.op("ReduceMax", [self], (1,), axes=[0], keepdims=1)  # opset 17: axes an attribute


class Graph:
    """Nodes, constants, inputs and outputs of one ONNX graph; also the ``xp`` of the formulas that build it."""

    def __init__(self, name: str):
        self.name = name
        self.nodes: list = []
        self.initializers: list = []
        self.inputs: list = []
        self.outputs: list = []
        self.input_docs: dict[str, str] = {}
        self._input_values: dict[str, Tensor] = {}
        self._held_showers: list | None = None
        self._constants: dict = {}
        self._count = 0

    # ------------------------------------------------------------------ plumbing
    def _fresh(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, value, dtype=None) -> str:
        """The name of an initializer holding ``value`` (integer and bool arrays keep their dtype, anything else
        becomes float32, unless ``dtype`` says); equal small constants are shared."""
        array = np.asarray(value)
        if dtype is None:
            dtype = array.dtype if array.dtype.kind in "bi" else np.float32
        array = np.ascontiguousarray(array, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes()) if array.size <= 64 else None
        if key is not None and key in self._constants:
            return self._constants[key]
        name = self._fresh("const")
        self.initializers.append(numpy_helper.from_array(array, name))
        if key is not None:
            self._constants[key] = name
        return name

    def _name(self, value) -> str:
        if isinstance(value, Tensor):
            return value.name
        value = np.asarray(value, np.float32)  # operands are float32; a per-feature vector (F,) is a column (F, 1)
        return self.const(value.reshape(-1, 1) if value.ndim == 1 else value)

    def op(self, op_type: str, inputs: list, shape, dtype=np.float32, stacked: bool = False, **attrs) -> Tensor:
        """One node with one output of per-sample ``shape`` (stored (*shape, N) when ``stacked``); inputs are
        Tensors, constants or names; ``attrs`` the node's ONNX attributes."""
        names = [value if isinstance(value, str) else self._name(value) for value in inputs]
        out = self._fresh(op_type.lower())
        self.nodes.append(helper.make_node(op_type, names, [out], **attrs))
        return Tensor(self, out, shape, dtype, stacked)

    def unary(self, op_type: str, x: Tensor, **attrs) -> Tensor:
        return self.op(op_type, [x], x.shape, x.dtype, **attrs)

    def binary(self, op_type: str, a, b, dtype=np.float32) -> Tensor:
        shapes = [v.shape for v in (a, b) if isinstance(v, Tensor)]
        for v in (a, b):  # a constant array broadcasts over the flat features
            if not isinstance(v, Tensor) and np.ndim(v) > 1:
                raise ValueError(f"{op_type}: constants must be scalars or flat (F,), got shape {np.shape(v)}")
            if not isinstance(v, Tensor) and np.ndim(v) == 1:  # (F,) against a (1,) value gives (F,)
                shapes.append(np.shape(v))
        shape = max(shapes, key=_size)
        if any(_size(s) not in (1, _size(shape)) for s in shapes):
            raise ValueError(f"{op_type}: per-sample shapes {shapes} do not broadcast")
        return self.op(op_type, [a, b], shape, dtype)

    # ------------------------------------------------------------------ inputs and outputs
    def input(self, name: str, shape, doc: str, dtype=np.float32) -> Tensor:
        """A graph input (N,) or (N, F) with per-sample shape () or (F,); the formulas see (N, 1) or (N, F).
        Asking for an input again gives the same value (the energy model reads the generator's energies)."""
        if len(shape) > 1:
            raise ValueError(f"input {name}: per-sample vectors only (reshape inside the graph)")
        if name in self._input_values:
            value = self._input_values[name]
            if value.shape != (tuple(shape) or (1,)) or value.dtype != dtype:
                raise ValueError(f"input {name}: asked for again with another shape or dtype")
            return value
        self.inputs.append(helper.make_tensor_value_info(name, _ONNX_TYPES[dtype], [BATCH, *shape], doc))
        self.input_docs[name] = doc
        value = Tensor(self, name, shape or (1,), dtype)
        if shape == ():
            value = self.op("Unsqueeze", [value, self.const(np.array([0], np.int64))], (1,), dtype)
        else:
            value = self.op("Transpose", [value], shape, dtype, perm=[1, 0])
        self._input_values[name] = value
        return value

    def output(self, name: str, x: Tensor, shape, doc: str) -> None:
        """A graph output (N, *shape) of the value x (per-sample size prod(shape))."""
        if _size(shape) != x.size or x.stacked:
            raise ValueError(f"output {name}: {x} is not of shape {shape}")
        rows = self.op("Transpose", [x], x.shape, perm=[1, 0])
        target = self.const(np.array([-1, *shape], np.int64))
        self.nodes.append(helper.make_node("Reshape", [rows.name, target], [name]))
        self.outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [BATCH, *shape], doc))

    def _used(self):
        """(nodes, initializers) the outputs depend on: composed gathers leave their first steps unused."""
        needed = {out.name for out in self.outputs}
        nodes = []
        for node in reversed(self.nodes):
            if any(name in needed for name in node.output):
                nodes.append(node)
                needed.update(node.input)
        return nodes[::-1], [t for t in self.initializers if t.name in needed]

    def model(self, metadata: dict[str, str], doc: str) -> onnx.ModelProto:
        nodes, initializers = self._used()
        graph = helper.make_graph(nodes, self.name, self.inputs, self.outputs, initializers, doc)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="calosim", doc_string=doc)
        model.ir_version = IR_VERSION
        helper.set_model_props(model, metadata)
        onnx.checker.check_model(model)
        return model

    # ------------------------------------------------------------------ the xp surface
    def log(self, x):
        return self.unary("Log", x)

    def exp(self, x):
        return self.unary("Exp", x)

    def expm1(self, x):
        # ONNX has no expm1: exp(x) - 1 loses relative precision for |x| << 1, i.e. on cells of a few
        # 1e-7 * log_epsilon_mev MeV, far below any tolerance stated in MeV
        return self.exp(x) - 1.0

    def abs(self, x):
        return self.unary("Abs", x)

    def tanh(self, x):
        return self.unary("Tanh", x)

    def maximum(self, a, b):
        return self.binary("Max", a, b)

    def minimum(self, a, b):
        return self.binary("Min", a, b)

    def equal(self, a, b) -> Tensor:
        """``a == b`` (bool), e.g. a count (N, 1) against the indices 0 .. K-1 (K,): a one-hot (N, K)."""
        return self.binary("Equal", a, b, np.bool_)

    def cumsum(self, x: Tensor, axis: int = 1) -> Tensor:
        """``xp.cumsum(x, axis=1)`` of a (N, F) value: running sums over the features."""
        if axis not in (1, -1) or len(x.shape) != 1:
            raise TypeError(f"{x}: only the cumulative sum of a per-sample vector along axis 1 is exported")
        return self.op("CumSum", [x, self.const(np.array(0, np.int64))], x.shape)

    def where(self, condition: Tensor, a, b) -> Tensor:
        shapes = [v.shape for v in (condition, a, b) if isinstance(v, Tensor)]
        return self.op("Where", [condition, a, b], max(shapes, key=_size))

    def asarray(self, value, dtype=np.float32):
        return np.asarray(value, dtype=np.float32)

    def concatenate(self, values: list, axis: int = 1) -> Tensor:
        """``xp.concatenate([... (N, F_i)], axis=1)``."""
        if axis not in (1, -1) or any(len(v.shape) != 1 for v in values):
            raise TypeError("only the concatenation of per-sample vectors along axis 1 is exported")
        return self.op("Concat", values, (sum(v.size for v in values),), axis=0)

    # ------------------------------------------------------------------ feature moves and products
    def features(self, x: Tensor, start: int, stop: int) -> Tensor:
        starts, ends, axes = (self.const(np.array([v], np.int64)) for v in (start, stop, 0))
        return self.op("Slice", [x, starts, ends, axes], (stop - start,), x.dtype)

    def gather(self, x: Tensor, indices: np.ndarray, shape=None) -> Tensor:
        """Features ``x[:, indices]``, index x.size standing for a zero (padding). 1-D indices give a flat
        value of per-sample ``shape`` (default (F,)); 2-D indices (L, P) give patches stored (L, P, N)."""
        indices = np.asarray(indices, np.int64)
        if x.origin is not None:  # gather from what x was gathered from; x's stand-in zero stays a zero
            source, previous = x.origin
            indices, x = np.append(previous, source.size)[indices], source
        flat_source = x
        if indices.size and indices.max() >= x.size:  # padding: one zero appended to the features
            x = self.op("Pad", [x, self.const(np.array([0, 0, 1, 0], np.int64))], (x.size + 1,), mode="constant")
        stacked = indices.ndim == 2
        out = self.op("Gather", [x, self.const(indices, np.int64)], indices.shape, stacked=stacked, axis=0)
        if not stacked:
            out.origin = (flat_source, indices)
        return out if stacked or shape is None else out.reshape(-1, *shape)

    def mean_of_patches(self, patches: Tensor, shape) -> Tensor:
        """The mean over each patch of patches (L, P, N): (L, N) of per-sample ``shape``."""
        out = self.op("ReduceMean", [patches], (patches.shape[0],), axes=[1], keepdims=0)
        return out.reshape(-1, *shape)

    def matmul(self, x: Tensor, kernel: np.ndarray, bias: np.ndarray | None = None) -> Tensor:
        """x (N, F_in) @ kernel (F_in, F_out) [+ bias (F_out,)], on the graph kernel^T (F_out, F_in) @ x (F_in, N)."""
        kernel = np.asarray(kernel, np.float32)
        y = self.op("MatMul", [self.const(np.ascontiguousarray(kernel.T)), x], (kernel.shape[1],))
        return y if bias is None else y + np.asarray(bias, np.float32).reshape(-1)

    def patch_products(self, patches: Tensor, kernel: np.ndarray, bias: np.ndarray | None,
                       out_shape) -> Tensor:
        """Patches (L, P, N) times per-position kernels (L, P, C_out) (or one kernel (P, C_out) shared by all
        positions: a convolution): one batched product over the positions L, kernel^T (L, C_out, P) @ patches
        (L, P, N); plus the bias (L, C_out) (or (C_out,)). Returns per-sample ``out_shape``."""
        assert patches.stacked, patches
        positions, taps = patches.shape
        kernel = np.asarray(kernel, np.float32)
        kernel_t = np.ascontiguousarray(np.swapaxes(kernel.reshape(-1, taps, kernel.shape[-1]), -1, -2))
        y = self.op("MatMul", [self.const(kernel_t), patches], (positions, kernel.shape[-1]), stacked=True)
        if bias is not None:
            bias = np.asarray(bias, np.float32).reshape(-1, kernel.shape[-1], 1)  # (L or 1, C_out, 1)
            y = self.op("Add", [y, self.const(bias if bias.shape[0] > 1 else bias[0])], y.shape, stacked=True)
        return self.flat(y, out_shape)

    def flat(self, x: Tensor, shape) -> Tensor:
        """x stored (..., N) as more than two axes, made (F, N) again (per-sample ``shape``)."""
        assert x.stacked, x
        return self.op("Reshape", [x, self.const(np.array([_size(shape), -1], np.int64))], tuple(shape))

    def grouped(self, x: Tensor, groups: int) -> Tensor:
        """(F, N) stored as (groups, F / groups, N), e.g. pixels and channels for a softmax over channels."""
        return self.op("Reshape", [x, self.const(np.array([groups, x.size // groups, -1], np.int64))],
                       (groups, x.size // groups), stacked=True)

    # ------------------------------------------------------------------ layers (calosim.export.layers)
    def layer(self, layer, x):
        """The value of ``layer.forward(x, training=False)``."""
        from calosim.export.layers import export_layer

        return export_layer(self, layer, x)

    def leaky_relu(self, x: Tensor, alpha: float) -> Tensor:
        from calosim.export.layers import knee_relu

        return knee_relu(self, x, 0.0, alpha)

    def knee_relu(self, x: Tensor, knee: float, alpha: float = 0.0) -> Tensor:
        from calosim.export.layers import knee_relu

        return knee_relu(self, x, knee, alpha)

    def locally_connected(self, x: Tensor, kernel, bias, kernel_size, stride) -> Tensor:
        from calosim.export.layers import locally_connected

        bias = None if bias is None else np.asarray(bias, np.float32)
        return locally_connected(self, x, np.asarray(kernel, np.float32), bias, kernel_size, stride)

    # ------------------------------------------------------------------ calosim's inputs and outputs
    def latent(self, dim: int) -> Tensor:
        return self.input("z", (dim,), f"latent vectors (N, {dim}), standard normal")

    def energy(self) -> Tensor:
        return self.input("energy", (), "incident energies (N,) in GeV")

    def uniforms(self, name: str, count: int, doc: str) -> Tensor:
        """Uniform numbers u ~ U(0, 1) (N, count) of a Bernoulli (or other discrete) draw, as an input."""
        return self.input(name, (count,), f"uniform numbers (N, {count}) in [0, 1): {doc}")

    def normals(self, name: str, count: int, doc: str) -> Tensor:
        """Standard normal numbers (N, count) of a Gaussian draw other than the latent vectors, as an input."""
        return self.input(name, (count,), f"standard normal numbers (N, {count}): {doc}")

    def class_rows(self, table: np.ndarray, name: str = "label") -> Tensor:
        """Rows table[label] (N, K) for an int64 class-label input (N,)."""
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.INT64, [BATCH], "class labels (N,)"))
        self.input_docs[name] = f"class labels (N,), 0 .. {len(table) - 1}"
        columns = self.const(np.ascontiguousarray(np.asarray(table, np.float32).T))  # (K, Z) as (Z, K)
        return self.op("Gather", [columns, name], (table.shape[1],), axis=1)

    def showers(self, geometry, cells) -> None:
        """One output per calorimeter layer, named as the layer, (N, R_l, C_l) in MeV: from a list of per-layer
        values, or from the flat (N, V) cells in the geometry's order. Within :meth:`held_showers` the
        per-layer values are kept there instead."""
        if isinstance(cells, Tensor):
            off = geometry.offsets
            cells = [cells[:, off[i]:off[i + 1]] for i in range(geometry.n_layers)]
        if self._held_showers is not None:
            self._held_showers.extend(cells)
            return
        for layer, value in zip(geometry.layers, cells):
            self.output(layer.name, value, layer.shape, f"cell energies (N, {layer.shape[0]}, {layer.shape[1]}) "
                        f"in MeV of calorimeter layer {layer.name}")

    @contextmanager
    def held_showers(self):
        """Within: :meth:`showers` fills the yielded list with the per-layer values (N, ...) instead of making
        them outputs, so that a later step of the sampling path (the energy factorisation's rescaling) can
        transform them before they are."""
        if self._held_showers is not None:
            raise RuntimeError("held_showers does not nest")
        held: list = []
        self._held_showers = held
        try:
            yield held
        finally:
            self._held_showers = None
