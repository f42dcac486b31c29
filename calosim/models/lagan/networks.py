"""LAGAN's networks (the package docstring): the class embedding, the generator and the discriminator."""

from __future__ import annotations

from calosim.errors import ConfigError
from calosim.layers import (
    AveragePooling2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    LeakyReLU,
    LocallyConnected2D,
    MinibatchDiscrimination,
    ReLU,
    Reshape,
    Sequential,
    Tanh,
    UpSampling2D,
    ZeroPad2D,
)
from calosim.models.lagan.config import LAGANConfig

IMAGE_SHAPE = (25, 25)


class ClassEmbedding(Layer):
    """h = z * (y @ W): z (N, Z), y (N, K) one-hot labels (any real values work), W (K, Z).

    Retains z, y and y @ W; backward returns [dz, dy] and sets dW = y^T (dh * z).
    """

    def __init__(self, name: str | None = None):
        super().__init__(name or "class_embedding")

    def _build(self, input_shapes, rng):
        (z_dim,), (k,) = input_shapes
        self.add_param("embedding", (k, z_dim), "glorot_uniform", rng, k, z_dim)
        return (z_dim,)

    def forward(self, inputs, training: bool = True):
        z, y = inputs
        self._z, self._y = z, y
        self._e = self.backend.matmul(y, self.params["embedding"].value)
        return z * self._e

    def backward(self, dh):
        be = self.backend
        weight = self.params["embedding"]
        weight.grad = be.matmul(self._y.T, dh * self._z)
        return [dh * self._e, be.matmul(dh * self._z, weight.value.T)]


def _check_geometry(geometry) -> None:
    if geometry.n_layers != 1 or tuple(geometry.shapes[0]) != IMAGE_SHAPE:
        raise ConfigError(f"LAGAN needs one 25 x 25 layer; the data's geometry {geometry.name!r} has "
                          f"layers {list(geometry.shapes)} (make one with calosim.geometry.single_layer_geometry)")


class LAGANGenerator(Layer):
    """G: forward([z (N, Z), y (N, K), e (N, 1) = E / E_max]) -> (N, 25, 25, 1);
    backward(d_images) -> [dz, dy, de] (sets the weight gradients)."""

    def __init__(self, config: LAGANConfig, name: str = "generator"):
        super().__init__(name)
        self.config = config

    def _build(self, input_shapes, rng):
        cfg = self.config.architecture
        self.embedding = ClassEmbedding(name=f"{self.name}.class_embedding")
        self.embedding.build([(cfg.latent_dim,), (cfg.n_classes,)], self.backend, rng)
        a, f = cfg.leaky_alpha, cfg.g_dense_channels
        self.body = Sequential([
            Dense(7 * 7 * f), Reshape((7, 7, f)),
            Conv2D(cfg.g_conv_filters, 5, padding="same", kernel_init="he_uniform"), LeakyReLU(a),
            BatchNorm(cfg.bn_momentum, cfg.bn_epsilon), UpSampling2D(2), ZeroPad2D(2),
            LocallyConnected2D(cfg.g_lc_filters, 5, kernel_init="he_uniform"), LeakyReLU(a),
            BatchNorm(cfg.bn_momentum, cfg.bn_epsilon), UpSampling2D(2),
            LocallyConnected2D(cfg.g_lc_filters, 3, kernel_init="he_uniform"), LeakyReLU(a),
            LocallyConnected2D(1, 2, use_bias=False, kernel_init="glorot_normal"), ReLU(),
        ], name=f"{self.name}.body")
        out = self.body.build((cfg.latent_dim,), self.backend, rng)
        assert out == (*IMAGE_SHAPE, 1), out
        if self.config.output_gain is not None:
            kernel = self.body.layers[-2].params["kernel"]
            kernel.value *= self.config.output_gain.gain
        return out

    def sublayers(self):
        return [self.embedding, self.body]

    def forward(self, inputs, training: bool = True):
        z, y, e = inputs
        self._e = e  # retained: dh/dz
        self._embedded = self.embedding.forward([z, y], training)  # retained: dh/de
        return self.body.forward(self._embedded * e, training)

    def backward(self, d_images):
        dh = self.body.backward(d_images)
        dz, dy = self.embedding.backward(dh * self._e)
        return [dz, dy, (dh * self._embedded).sum(axis=1, keepdims=True)]


class LAGANDiscriminator(Layer):
    """D: forward([images (N, 25, 25, 1), c (N, 1), E (N, 1) GeV]) -> logits (N, 2); backward(d_logits (N, 2))
    returns [d_images, dc, dE] (the trainer uses d_images only: c and E are never functions of weights)."""

    def __init__(self, config: LAGANConfig, name: str = "discriminator"):
        super().__init__(name)
        self.config = config

    def _build(self, input_shapes, rng):
        cfg = self.config.architecture
        a, f, p = cfg.leaky_alpha, cfg.d_lc_filters, cfg.dropout

        def block(pad, kernel, stride):
            return [ZeroPad2D(pad), LocallyConnected2D(f, kernel, strides=stride), LeakyReLU(a),
                    BatchNorm(cfg.bn_momentum, cfg.bn_epsilon), Dropout(p)]

        self.stream = Sequential([Conv2D(cfg.d_conv_filters, 5, padding="same"), LeakyReLU(a), Dropout(p),
                                  *block(2, 5, 2), *block(2, 5, 1), *block(1, 3, 2),
                                  AveragePooling2D(2), Flatten()], name=f"{self.name}.stream")
        (n_features,) = self.stream.build((*IMAGE_SHAPE, 1), self.backend, rng)
        self.mbd = MinibatchDiscrimination(cfg.mbd_kernels, cfg.mbd_dim, name=f"{self.name}.mbd")
        self.mbd.build((n_features,), self.backend, rng)
        self.tanh = Tanh(name=f"{self.name}.tanh")
        self.tanh.build((cfg.mbd_kernels,), self.backend, rng)
        self.n_features = n_features
        width = n_features + cfg.mbd_kernels + 2
        self.real_fake = Dense(1, name=f"{self.name}.real_fake")
        self.auxiliary = Dense(1, name=f"{self.name}.auxiliary")
        for head in (self.real_fake, self.auxiliary):
            head.build((width,), self.backend, rng)
        return (2,)

    def sublayers(self):
        return [self.stream, self.mbd, self.tanh, self.real_fake, self.auxiliary]

    def set_update_statistics(self, flag: bool) -> None:
        for layer in self.walk():
            if isinstance(layer, BatchNorm):
                layer.update_statistics = flag

    def forward(self, inputs, training: bool = True):
        images, c, energy = inputs
        xp = self.backend.xp
        n = images.shape[0]
        seen = images
        if self.config.log_input is not None:  # log(1 + x / eps): cells far below the core stay visible
            eps = self.config.log_input.epsilon_mev / self.config.training.image_scale
            self._log_scale = 1.0 / (eps + xp.maximum(images, 0.0))  # retained: d log / d image
            seen = xp.log1p(xp.maximum(images, 0.0) / eps)
        features = self.stream.forward(seen, training)
        mbd = self.tanh.forward(self.mbd.forward(features, training), training)
        self._inv_energy = 1.0 / energy.reshape(n, 1)  # retained: d response / d image
        response = images.reshape(n, -1).sum(axis=1, keepdims=True) * self._inv_energy
        self._response = response  # retained: d response / dE = -response / E
        h = xp.concatenate([features, mbd, c.reshape(n, 1), response], axis=1)
        return xp.concatenate([self.real_fake.forward(h, training), self.auxiliary.forward(h, training)], axis=1)

    def backward(self, d_logits):
        dh = self.real_fake.backward(d_logits[:, :1]) + self.auxiliary.backward(d_logits[:, 1:])
        k, kernels = self.n_features, self.config.architecture.mbd_kernels
        d_features = dh[:, :k] + self.mbd.backward(self.tanh.backward(dh[:, k:k + kernels]))
        d_images = self.stream.backward(d_features)
        if self.config.log_input is not None:
            d_images = d_images * self._log_scale
        d_response = dh[:, -1:]  # (N, 1)
        d_images = d_images + (d_response * self._inv_energy).reshape(-1, 1, 1, 1)
        return [d_images, dh[:, -2:-1], -d_response * self._response * self._inv_energy]
