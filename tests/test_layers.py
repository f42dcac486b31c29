"""Layer behaviour the gradient checks cannot see: Keras conventions, running statistics, initialisers, Adam."""

from __future__ import annotations

import numpy as np
import pytest

from calosim import layers as L
from calosim.backends import get_backend
from calosim.layers import init
from calosim.optim import Adam


@pytest.fixture
def be64():
    return get_backend("numpy", "float64")


def test_conv_same_2x2_pads_bottom_right_only(be64):
    layer = L.Conv2D(1, 2, padding="same", use_bias=False)
    layer.build((3, 3, 1), be64, np.random.default_rng(0))
    layer.params["kernel"].value[...] = np.array([[1.0, 10.0], [100.0, 1000.0]]).reshape(2, 2, 1, 1)
    x = np.arange(9, dtype=float).reshape(1, 3, 3, 1)
    y = layer.forward(x)[0, :, :, 0]
    assert y.shape == (3, 3)
    # bottom-right corner: only x[2, 2] is inside the window, weighted by the top-left tap
    assert y[2, 2] == pytest.approx(x[0, 2, 2, 0])
    # top-left corner sees x[0:2, 0:2] (no padding on top/left)
    assert y[0, 0] == pytest.approx(0 * 1 + 1 * 10 + 3 * 100 + 4 * 1000)


def test_lc2d_output_shape_and_param_count(be64):
    layer = L.LocallyConnected2D(6, 2, strides=(1, 2))
    out = layer.build((5, 98, 16), be64, np.random.default_rng(0))
    assert out == (4, 49, 6)
    assert layer.num_params() == 4 * 49 * (2 * 2 * 16 * 6 + 6)


def test_batchnorm_running_statistics_follow_keras_momentum(be64):
    layer = L.BatchNorm(momentum=0.99, epsilon=1e-3)
    layer.build((2,), be64, np.random.default_rng(0))
    x = np.random.default_rng(1).normal(3.0, 2.0, size=(64, 2))
    layer.forward(x, training=True)
    np.testing.assert_allclose(layer.state["moving_mean"], 0.01 * x.mean(0))
    np.testing.assert_allclose(layer.state["moving_variance"], 0.99 + 0.01 * x.var(0))
    y = layer.forward(x, training=False)
    expected = (x - layer.state["moving_mean"]) / np.sqrt(layer.state["moving_variance"] + 1e-3)
    np.testing.assert_allclose(y, expected)


def test_batchnorm_training_output_is_standardised(be64):
    layer = L.BatchNorm(epsilon=0.0)
    layer.build((3,), be64, np.random.default_rng(0))
    y = layer.forward(np.random.default_rng(2).normal(5.0, 3.0, size=(100, 3)))
    np.testing.assert_allclose(y.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.std(0), 1.0, rtol=1e-12)


def test_attention_starts_out_ignoring_the_carried_layer(be64):
    layer = L.InpaintingAttention()
    layer.build([(4, 5, 1), (4, 5, 1)], be64, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    primary, carry = rng.random((2, 4, 5, 1)), rng.random((2, 4, 5, 1))
    out = layer.forward([primary, carry])
    np.testing.assert_allclose(out, primary, atol=5e-4 * np.abs(carry - primary).max() + 1e-12)
    assert not np.allclose(out, primary, atol=1e-9)


def test_dropout_keeps_inference_exact_and_scales_training(be64):
    layer = L.Dropout(0.5)
    layer.build((1000,), be64, np.random.default_rng(0))
    x = np.ones((4, 1000))
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    y = layer.forward(x, training=True)
    assert set(np.unique(y)) == {0.0, 2.0}
    assert 0.4 < (y == 0).mean() < 0.6


def test_layer_rejects_a_wrong_input_shape(be64):
    layer = L.Dense(3)
    layer.build((4,), be64, np.random.default_rng(0))
    with pytest.raises(ValueError, match="expected input"):
        layer.forward(np.ones((2, 5)))


def test_he_uniform_and_glorot_normal_follow_keras():
    rng = np.random.default_rng(0)
    w = init.he_uniform(rng, (200, 300), fan_in=200, fan_out=300)
    limit = np.sqrt(6 / 200)
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit
    g = init.glorot_normal(rng, (400, 600), fan_in=400, fan_out=600)
    assert np.abs(g).max() <= 2 * np.sqrt(2 / 1000) / 0.87962566103423978
    assert g.std() == pytest.approx(np.sqrt(2 / 1000), rel=0.02)
    with pytest.raises(ValueError, match="unknown initialiser"):
        init.get_initializer("lecun_magic")


def test_adam_first_step_matches_the_formula(be64):
    param = L.Parameter("p", np.array([1.0, -2.0]))
    param.grad = np.array([0.5, -0.25])
    opt = Adam([param], lr=0.1, beta1=0.5, beta2=0.999, eps=1e-7, backend=be64)
    opt.step()
    m, v = 0.5 * param.grad, 0.001 * param.grad**2
    lr_t = 0.1 * np.sqrt(1 - 0.999) / (1 - 0.5)
    np.testing.assert_allclose(param.value, np.array([1.0, -2.0]) - lr_t * m / (np.sqrt(v) + 1e-7))


def test_adam_state_restores_exactly(be64):
    rng = np.random.default_rng(5)
    grads = [rng.standard_normal(3) for _ in range(6)]

    def make():
        p = L.Parameter("w", np.zeros(3))
        return p, Adam([p], lr=1e-2, beta1=0.5, backend=be64)

    p1, opt1 = make()
    for g in grads:
        p1.grad = g
        opt1.step()
    p2, opt2 = make()
    for g in grads[:3]:
        p2.grad = g
        opt2.step()
    saved_value, saved_state = p2.value.copy(), opt2.state_dict()
    p3, opt3 = make()
    p3.value[...] = saved_value
    opt3.load_state_dict(saved_state)
    for g in grads[3:]:
        p3.grad = g
        opt3.step()
    np.testing.assert_array_equal(p3.value, p1.value)


def test_switched_off_gradients_are_skipped_and_the_rest_unchanged(be64):
    rng = np.random.default_rng(7)
    net = L.Sequential([L.Dense(6), L.LeakyReLU(0.3), L.Reshape((2, 3, 1)), L.Conv2D(2, 2, padding="same"),
                        L.BatchNorm(), L.LocallyConnected2D(2, 2), L.Flatten(), L.MinibatchDiscrimination(2, 3)])
    net.build((4,), be64, rng)
    x, dy = rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
    net.forward(x)
    dx = net.backward(dy)
    grads = [p.grad.copy() for p in net.parameters()]
    for p in net.parameters():
        p.grad = None
    net.set_param_grads(False)
    net.forward(x)
    np.testing.assert_array_equal(net.backward(dy), dx)
    assert all(p.grad is None for p in net.parameters())
    net.set_param_grads(True)
    net.layers[0].input_grad = False
    net.forward(x)
    assert net.backward(dy) is None
    for p, g in zip(net.parameters(), grads):
        np.testing.assert_array_equal(p.grad, g)


def test_dense_writes_its_weight_gradient_into_the_previous_one(be64):
    import calosim.layers as L

    rng = np.random.default_rng(3)
    dense = L.Dense(5)
    dense.build((4,), be64, rng)
    kernel = dense.params["kernel"]
    grads = []
    for _ in range(2):
        x, dy = rng.standard_normal((6, 4)), rng.standard_normal((6, 5))
        dense.forward(x)
        dense.backward(dy)
        grads.append(kernel.grad)
        np.testing.assert_allclose(kernel.grad, x.T @ dy, rtol=1e-12)
    assert grads[0] is grads[1]
