"""LAGAN (arXiv:1701.05927) for one 25 x 25 layer: locally connected generator and discriminator (reference
section 5), conditioned on the incident energy and on a class label.

Notation: N batch, Z latent size, K classes (1 or 2), images channels-last (N, 25, 25, 1) in training units
(MeV / image_scale, i.e. GeV for the default 1000); E the incident energy (N,) GeV; c (N, 1) the condition
log(E / E_min) / log(E_max / E_min); y (N, K) one-hot labels.

Generator  G(z, y, E):
    h = z * (y @ Embedding (K, Z)) * E / E_max           (class embedding multiplied into z, energy scale)
    Dense(7*7*128) -> Reshape(7, 7, 128) -> Conv2D(64, 5x5, same) -> LeakyReLU -> BatchNorm -> UpSample(2)
    -> ZeroPad(2) -> LC2D(6, 5x5) -> LeakyReLU -> BatchNorm -> UpSample(2) -> LC2D(6, 3x3) -> LeakyReLU
    -> LC2D(1, 2x2, no bias) -> (25, 25, 1) -> ReLU                      (7 -> 14 -> 18 -> 14 -> 28 -> 26 -> 25)
Discriminator  D(image, c, E) -> logits (N, 2): [real/fake, auxiliary (the class)]
    Conv2D(32, 5x5, same) -> LeakyReLU -> Dropout(0.2) -> ZeroPad(2) -> LC2D(8, 5x5, stride 2) -> LeakyReLU
    -> BatchNorm -> Dropout -> ZeroPad(2) -> LC2D(8, 5x5) -> LeakyReLU -> BatchNorm -> Dropout -> ZeroPad(1)
    -> LC2D(8, 3x3, stride 2) -> LeakyReLU -> BatchNorm -> Dropout -> AvgPool(2) -> Flatten   (25 -> 13 -> 13 -> 7 -> 3)
    features f (72); concat[f, tanh(MBD(f), 20 kernels x 10), c, sum(image) / E] -> Dense(1), Dense(1)
    The condition and the response sum(image) / E (about 1 for a calorimeter in GeV units) are this
    implementation's addition for the energy conditioning; the sigmoids live in the BCE-with-logits losses.
    With d_log_epsilon_mev > 0 the stream sees log(1 + image / eps) instead of the image (the response feature
    stays linear): in linear units a diffuse 1% of the energy spread over the outer cells is invisible to D,
    yet it doubles the lateral width; images are >= 0 (the generator's ReLU), d log / d image = 1 / (eps + x).
Training (per real batch of B): D on concat[real, fake] (2B; fakes at the real batch's energies, labels drawn
uniformly), targets real 1 / fake 0 with ``label_flip`` (5%) of them flipped, auxiliary target the class;
then G on 2B fresh samples, target 1 and the sampled class (D's BatchNorm statistics not updated).
Loss = BCE(real/fake) + aux_weight * BCE(aux); Adam 2e-4, beta1 0.5, batch 100.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calosim.errors import ConfigError
from calosim.geometry import single_layer_geometry
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
from calosim.losses import bce_with_logits
from calosim.models.base import ConfigMixin, ShowerModel, Trainer, check_finite, check_unique_names
from calosim.optim import Adam

IMAGE_SHAPE = (25, 25)


@dataclass(frozen=True)
class LAGANConfig(ConfigMixin):
    name: str = "lagan"
    latent_dim: int = 200
    n_classes: int = 1  # 1 (calorimeter showers) or 2 (e.g. signal / background jets)
    g_dense_channels: int = 128
    g_conv_filters: int = 64
    g_lc_filters: int = 6
    d_conv_filters: int = 32
    d_lc_filters: int = 8
    dropout: float = 0.2
    mbd_kernels: int = 20
    mbd_dim: int = 10
    leaky_alpha: float = 0.3  # Keras' LeakyReLU default, as LAGAN used it
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 100
    epochs: int = 50
    label_flip: float = 0.05
    real_label: float = 1.0  # one-sided label smoothing: the discriminator's target for real images
    aux_weight: float = 1.0
    energy_weight: float = 0.0  # generator only: energy_weight * mean |sum(fake) - sum(real)| / E (see below)
    g_output_gain: float = 1.0  # the generator's last LC2D kernel is initialised times this
    image_scale: float = 1000.0  # MeV per training unit
    d_log_epsilon_mev: float = 0.0  # > 0: the discriminator's stream sees log(1 + image / this) (see below)
    mean_image_weight: float = 0.0  # generator only: weight of the mean-image term (see mean_image_loss)
    energy_range: tuple[float, float] | None = None

    def __post_init__(self):
        self._check_common()
        if self.n_classes not in (1, 2):
            raise ConfigError(f"config {self.name!r}: n_classes must be 1 or 2 (one sigmoid auxiliary output)")
        if not 0.0 <= self.label_flip < 0.5 or self.image_scale <= 0:
            raise ConfigError(f"config {self.name!r}: 0 <= label_flip < 0.5 and image_scale > 0")
        if self.d_log_epsilon_mev < 0 or self.mean_image_weight < 0:
            raise ConfigError(f"config {self.name!r}: d_log_epsilon_mev >= 0, mean_image_weight >= 0")
        if not 0.5 < self.real_label <= 1.0 or self.energy_weight < 0 or self.g_output_gain <= 0:
            raise ConfigError(f"config {self.name!r}: 0.5 < real_label <= 1, energy_weight >= 0, g_output_gain > 0")


CONFIGS = {
    "lagan": LAGANConfig(),
    # log input for D and the mean-image term: on CaloGAN's layer 1 padded to 25 x 25 (3200 Geant4 e+, 15
    # epochs) the lateral widths and centroids beat the untrained state for seeds 0 and 1 (without: not)
    "small": LAGANConfig(name="small", latent_dim=32, g_dense_channels=16, g_conv_filters=8, g_lc_filters=4,
                         d_conv_filters=8, d_lc_filters=4, mbd_kernels=5, mbd_dim=5, batch_size=50, epochs=15,
                         lr_d=5e-5, real_label=0.9, energy_weight=10.0, g_output_gain=0.1, bn_momentum=0.9,
                         d_log_epsilon_mev=1.0, mean_image_weight=10.0),
}


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
        cfg = self.config
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
        if cfg.g_output_gain != 1.0:
            kernel = self.body.layers[-2].params["kernel"]
            kernel.value *= cfg.g_output_gain
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
        cfg = self.config
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
        if self.config.d_log_epsilon_mev > 0:  # log(1 + x / eps): cells far below the core stay visible
            eps = self.config.d_log_epsilon_mev / self.config.image_scale
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
        k = self.n_features
        d_features = dh[:, :k] + self.mbd.backward(self.tanh.backward(dh[:, k:k + self.config.mbd_kernels]))
        d_images = self.stream.backward(d_features)
        if self.config.d_log_epsilon_mev > 0:
            d_images = d_images * self._log_scale
        d_response = dh[:, -1:]  # (N, 1)
        d_images = d_images + (d_response * self._inv_energy).reshape(-1, 1, 1, 1)
        return [d_images, dh[:, -2:-1], -d_response * self._response * self._inv_energy]


class LAGAN(ShowerModel):
    model_type = "lagan"
    description = "LAGAN for one 25 x 25 layer, conditioned on energy and class"
    config_class = LAGANConfig
    configs = CONFIGS
    reference_config = "lagan"

    def __init__(self, config: LAGANConfig, geometry, generator: LAGANGenerator, discriminator: LAGANDiscriminator,
                 backend, particle="unknown", energy_range=(1.0, 100.0)):
        super().__init__(config, geometry, backend, particle, energy_range)
        self.generator = generator
        self.discriminator = discriminator

    @classmethod
    def build(cls, config: LAGANConfig, geometry, backend, rng: np.random.Generator, particle="unknown",
              energy_range=(1.0, 100.0), fitted: dict | None = None) -> LAGAN:
        _check_geometry(geometry)
        generator = LAGANGenerator(config)
        generator.build([(config.latent_dim,), (config.n_classes,), (1,)], backend, rng)
        discriminator = LAGANDiscriminator(config)
        discriminator.build([(*IMAGE_SHAPE, 1), (1,), (1,)], backend, rng)
        model = cls(config, geometry, generator, discriminator, backend, particle, energy_range)
        check_unique_names(model.networks())
        return model

    @classmethod
    def default_geometry(cls):
        return single_layer_geometry(*IMAGE_SHAPE)

    @property
    def n_classes(self) -> int:
        return self.config.n_classes

    def networks(self) -> dict:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def one_hot(self, labels):
        """(N,) integer labels (NumPy) -> (N, K) backend array."""
        labels = np.zeros(0, np.int64) if labels is None else np.asarray(labels, np.int64)
        out = np.zeros((len(labels), self.config.n_classes))
        out[np.arange(len(labels)), labels] = 1.0
        return self.backend.asarray(out)

    def sample_labels(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(0, self.config.n_classes, size=n)

    def generator_forward(self, z, labels, energy, training: bool = True):
        """Images (N, 25, 25, 1) in training units for z (N, Z), labels (N,) NumPy ints, E (N,) GeV."""
        e = (energy / self.energy_range[1]).reshape(-1, 1)
        return self.generator.forward([z, self.one_hot(labels), e], training)

    def generate(self, z, energy, labels=None, training: bool = False) -> list:
        """[(N, 25, 25)] MeV for z (N, Z), E (N,) GeV (backend arrays) and labels (N,) (default class 0)."""
        n = z.shape[0]
        labels = np.zeros(n, np.int64) if labels is None else labels
        images = self.generator_forward(z, labels, energy, training)
        return [(images * self.config.image_scale).reshape(n, *IMAGE_SHAPE)]


    def export_onnx(self, graph) -> None:
        """:meth:`generate` on an ONNX graph (ShowerModel.export_onnx); two-class models take the input label."""
        z, energy = graph.latent(self.latent_dim), graph.energy()
        table = np.asarray(self.backend.to_numpy(self.generator.embedding.params["embedding"].value), np.float32)
        rows = graph.class_rows(table) if self.n_classes > 1 else table[0]  # y @ W of one-hot y (exact)
        images = graph.layer(self.generator.body, z * rows * (energy / self.energy_range[1]))
        graph.showers(self.geometry, [images * self.config.image_scale])


class LAGANTrainer(Trainer):
    """The LAGAN iteration on one real batch (NumPy: [(B, 25, 25)] MeV, (B,) GeV, labels (B,) or None)."""

    loss_names = ("d_loss", "d_aux", "g_loss", "g_aux", "g_energy", "g_mean_image")

    def __init__(self, model: LAGAN, rng: np.random.Generator):
        cfg = model.config
        super().__init__(model, rng)
        be = self.backend
        self.optimizers = {
            "generator": Adam(model.generator.parameters(), cfg.lr_g, cfg.beta1, cfg.beta2, backend=be),
            "discriminator": Adam(model.discriminator.parameters(), cfg.lr_d, cfg.beta1, cfg.beta2, backend=be),
        }

    def d_loss(self, images, energy, real_fake, aux, training: bool = True):
        """(loss, bce real/fake, bce aux, dloss/dlogits) of D against targets real_fake (N,) and aux (N,)."""
        model, xp = self.model, self.backend.xp
        logits = model.discriminator.forward([images, model.condition(energy), energy.reshape(-1, 1)], training)
        b1, d1 = bce_with_logits(logits[:, :1], real_fake.reshape(-1, 1), xp)
        b2, d2 = bce_with_logits(logits[:, 1:], aux.reshape(-1, 1), xp)
        w = model.config.aux_weight
        return b1 + w * b2, b1, b2, xp.concatenate([d1, w * d2], axis=1)

    def train_step(self, layers_mev, energy_gev, labels=None) -> dict[str, float]:
        model, be, cfg, rng = self.model, self.backend, self.model.config, self.rng
        n = len(energy_gev)
        labels = np.zeros(n, np.int64) if labels is None else np.asarray(labels, np.int64)
        real = be.asarray(np.asarray(layers_mev[0], np.float64).reshape(n, *IMAGE_SHAPE, 1) / cfg.image_scale)
        energy = np.asarray(energy_gev, np.float64)
        # discriminator on real + fake
        fake_labels = model.sample_labels(rng, n)
        z = be.asarray(model.sample_latent(rng, n))
        e = be.asarray(energy)
        fake = model.generator_forward(z, fake_labels, e, True)
        targets = np.concatenate([np.full(n, cfg.real_label), np.zeros(n)])
        flip = rng.random(2 * n) < cfg.label_flip
        targets[flip] = 1.0 - targets[flip]
        aux = np.concatenate([labels, fake_labels]).astype(np.float64)
        xp = be.xp
        d_total, d_bce, d_aux, dl = self.d_loss(xp.concatenate([real, fake]), xp.concatenate([e, e]),
                                                be.asarray(targets), be.asarray(aux))
        check_finite(d_total, "discriminator")
        model.discriminator.backward(dl)
        self.optimizers["discriminator"].step()
        # generator on 2B fresh samples (energies: the real batch's, twice)
        g_labels = model.sample_labels(rng, 2 * n)
        z = be.asarray(model.sample_latent(rng, 2 * n))
        e2 = be.asarray(np.concatenate([energy, energy]))
        images = model.generator_forward(z, g_labels, e2, True)
        d = model.discriminator
        d.set_update_statistics(False)
        try:
            g_total, g_bce, g_aux, dl = self.d_loss(images, e2, xp.ones(2 * n, dtype=images.dtype),
                                                    be.asarray(g_labels.astype(np.float64)))
        finally:
            d.set_update_statistics(True)
        d_images = d.backward(dl)[0]
        losses = {"d_loss": d_bce, "d_aux": d_aux, "g_loss": g_bce, "g_aux": g_aux}
        if cfg.energy_weight > 0:
            energy_loss, d_energy = self.energy_loss(images, xp.concatenate([real, real]), e2)
            g_total += cfg.energy_weight * energy_loss
            d_images = d_images + cfg.energy_weight * d_energy
            losses["g_energy"] = energy_loss
        if cfg.mean_image_weight > 0:
            mean_loss, d_mean = self.mean_image_loss(images, real, e2, e)
            g_total += cfg.mean_image_weight * mean_loss
            d_images = d_images + cfg.mean_image_weight * d_mean
            losses["g_mean_image"] = mean_loss
        check_finite(g_total, "generator")
        model.generator.backward(d_images)
        self.optimizers["generator"].step()
        return losses

    def mean_image_loss(self, fake, real, fake_energy, real_energy):
        """Feature matching on the first moment of the images: sum_p |m_fake,p - m_real,p|, m the batch mean of
        image / E (per pixel p, E in GeV: training units for image_scale 1000 are GeV). A batch statistic, so it
        leaves each shower free; it pulls the diffuse energy a linear-unit discriminator cannot see out of the
        outer cells (a few per cent of it there double the lateral width). Returns (loss, dloss/dfake)."""
        xp = self.backend.xp
        nf = fake.shape[0]
        inv_f = (1.0 / fake_energy).reshape(-1, 1, 1, 1)
        diff = (fake * inv_f).mean(axis=0) - (real * (1.0 / real_energy).reshape(-1, 1, 1, 1)).mean(axis=0)
        grad = (xp.sign(diff)[None] * inv_f / nf).astype(fake.dtype)
        return float(xp.abs(diff).sum()), grad

    def energy_loss(self, fake, real, energy):
        """CaloGAN's energy-conservation term for one layer: mean_i |sum(fake_i) - sum(real_i)| / E_i over pairs
        generated at the real shower's incident energy E_i (GeV, training units = GeV for image_scale 1000),
        i.e. the L1 distance of the responses; its minimum puts each energy's generated sum at the median of the
        real sums. (CaloGAN's |sum - E_in| assumes all layers; one layer or a jet image carries only part of E.)
        Returns (loss, dloss/dfake)."""
        xp, n = self.backend.xp, fake.shape[0]
        scale = self.model.config.image_scale / 1000.0
        inv = (scale / energy).reshape(n, 1)
        diff = (fake.reshape(n, -1).sum(axis=1, keepdims=True) - real.reshape(n, -1).sum(axis=1, keepdims=True)) * inv
        grad = (xp.sign(diff) * inv / n).astype(fake.dtype)
        return float(xp.abs(diff).mean()), xp.broadcast_to(grad.reshape(n, 1, 1, 1), fake.shape)


LAGAN.trainer_class = LAGANTrainer  # defined after the model it trains
