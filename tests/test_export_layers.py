"""Each layer's ONNX export (calosim.export.layers) against the layer's own inference forward, run by ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the ONNX export needs the onnx extra: pip install 'calosim[onnx]'")
pytest.importorskip("onnxruntime", reason="the export check needs the onnx extra: pip install 'calosim[onnx]'")

from calosim.backends import get_backend  # noqa: E402
from calosim.export.check import session  # noqa: E402
from calosim.export.graph import Graph  # noqa: E402
from calosim.layers import (  # noqa: E402
    AveragePooling2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    InpaintingAttention,
    KneeReLU,
    LeakyReLU,
    LocallyConnected2D,
    Reshape,
    Sequential,
    Sigmoid,
    SplitReLU,
    Tanh,
    UpSampling2D,
    ZeroPad2D,
)

RTOL, ATOL = 1e-5, 1e-5  # float32, stated once


def _trained_looking(net, rng):
    """Non-trivial BatchNorm statistics and biases (fresh ones are 0 / 1)."""
    be = net.backend
    for layer in net.walk():
        for key, value in layer.state.items():
            layer.state[key] = be.asarray(np.abs(rng.standard_normal(value.shape)) + 0.5)
        for name, param in layer.params.items():
            if name in ("gamma", "beta", "bias"):
                param.value = be.asarray(rng.normal(0.5, 0.3, param.value.shape))


def _run(graph, outputs, feeds):
    sess = session(graph.model({}, "test").SerializeToString())
    return sess.run(None, feeds), sess


def _compare(layers, in_shape, seed=0, batch=5):
    be = get_backend("numpy", "float32")
    rng = np.random.default_rng(seed)
    net = Sequential(layers, name="net")
    out_shape = net.build(in_shape, be, rng)
    _trained_looking(net, rng)
    x = rng.standard_normal((batch, *in_shape)).astype(np.float32)
    want = be.to_numpy(net.forward(be.asarray(x), training=False))
    graph = Graph("test")
    size = int(np.prod(in_shape))
    y = graph.layer(net, graph.input("x", (size,), "input").reshape(-1, *in_shape))
    graph.output("y", y, out_shape, "output")
    (got,), sess = _run(graph, ["y"], {"x": x.reshape(batch, size)})
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    return graph.model({}, "test")


CASES = {
    "conv_same_bn_lc_stride": ([Conv2D(3, 2, padding="same"), LeakyReLU(0.3), BatchNorm(),
                                LocallyConnected2D(2, 3, strides=(1, 2)), Tanh()], (5, 7, 2)),
    "pad_lc_sigmoid": ([ZeroPad2D(((1, 0), (2, 1))), LocallyConnected2D(2, 2, use_bias=False), Sigmoid()], (3, 4, 2)),
    "upsample_pool_floor_conv_valid_knee": ([UpSampling2D((2, 1)), AveragePooling2D((1, 3)),
                                             Conv2D(2, 3, strides=2), KneeReLU(0.05, 0.1)], (4, 10, 2)),
    "conv_same_stride2": ([Conv2D(2, 3, strides=2, padding="same"), LeakyReLU(0.0)], (5, 6, 3)),
    "dense_reshape_split_relu": ([Dense(24), Dropout(0.5), Reshape((2, 3, 4)), LocallyConnected2D(5, 1),
                                  Reshape((30,)), SplitReLU(10, 0.1, n_linear=5)], (7,)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_layer_export_equals_inference_forward(case):
    layers, in_shape = CASES[case]
    _compare(layers, in_shape)


def test_consecutive_cell_moves_become_one_gather():
    """Up-sampling, padding and the patches of the next LC2D compose into one Gather (LAGAN's generator body)."""
    model = _compare([UpSampling2D(2), ZeroPad2D(2), LocallyConnected2D(2, 5)], (3, 4, 2))
    assert [node.op_type for node in model.graph.node].count("Gather") == 1


def test_attention_export_equals_inference_forward():
    be = get_backend("numpy", "float32")
    rng = np.random.default_rng(1)
    attention = InpaintingAttention(name="attention")
    attention.build([(4, 6, 1), (4, 6, 1)], be, rng)
    _trained_looking(attention, rng)
    kernel = attention.local.params["kernel"]  # a blend that uses both images
    kernel.value = be.asarray(rng.standard_normal(kernel.value.shape))
    primary, carry = (rng.standard_normal((3, 4, 6, 1)).astype(np.float32) for _ in range(2))
    want = attention.forward([be.asarray(primary), be.asarray(carry)], training=False)
    graph = Graph("test")
    inputs = [graph.input(name, (24,), name).reshape(-1, 4, 6, 1) for name in ("primary", "carry")]
    graph.output("y", graph.layer(attention, inputs), (4, 6, 1), "blend")
    (got,), _ = _run(graph, ["y"], {"primary": primary.reshape(3, 24), "carry": carry.reshape(3, 24)})
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_a_layer_without_an_exporter_is_named():
    from calosim.errors import ExportError
    from calosim.layers import MinibatchDiscrimination

    be = get_backend("numpy", "float32")
    layer = MinibatchDiscrimination(2, 2, name="mbd")
    layer.build((4,), be, np.random.default_rng(0))
    graph = Graph("test")
    with pytest.raises(ExportError, match="mbd: no ONNX export for a MinibatchDiscrimination"):
        graph.layer(layer, graph.input("x", (4,), "x"))
