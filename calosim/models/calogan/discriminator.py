"""The CaloGAN discriminator D([images], E) -> logits (N, 1) (the package docstring has the architecture)."""

from __future__ import annotations

import numpy as np

from calosim.layers import (
    BatchNorm,
    Conv2D,
    Dense,
    Flatten,
    Layer,
    LeakyReLU,
    LocallyConnected2D,
    MinibatchDiscrimination,
    Sequential,
    Tanh,
    ZeroPad2D,
)
from calosim.models.calogan.config import CaloGANConfig

WELL_THRESHOLD_GEV = 5.0  # the discriminator's "energy too far off" step

def _discriminator_stream(shape, cfg: CaloGANConfig, name: str) -> Sequential:
    cfg = cfg.architecture
    f1, f2, f3 = cfg.d_lc_filters
    layers: list[Layer] = [Conv2D(cfg.d_conv_filters, 2, padding="same"), LeakyReLU(cfg.leaky_alpha)]
    for filters, kernel, stride in ((f1, 3, (1, 2)), (f2, 2, 1), (f3, 2, (1, 2))):
        layers += [ZeroPad2D(1), LocallyConnected2D(filters, kernel, strides=stride), LeakyReLU(cfg.leaky_alpha),
                   BatchNorm(cfg.bn_momentum, cfg.bn_epsilon)]
    layers.append(Flatten())
    return Sequential(layers, name=name)


class CaloGANDiscriminator(Layer):
    """D([images], E) -> logits (N, 1); built with ``build([(R_l, C_l, 1) ...], backend, rng)``.

    forward([img_0, ..., img_{L-1}, E]) with images (N, R_l, C_l, 1) in training units (GeV) and E (N,) GeV;
    backward(d_logits (N, 1)) returns [d img_l] (no gradient for E, which is never a function of weights).
    """

    def __init__(self, config: CaloGANConfig, shapes, name: str = "discriminator"):
        super().__init__(name)
        self.config = config
        self.shapes = [tuple(int(v) for v in s) for s in shapes]
        self.update_statistics = True

    def _build(self, input_shapes, rng):
        cfg = self.config
        expected = [(*s, 1) for s in self.shapes]
        if [tuple(s) for s in input_shapes] != expected:
            raise ValueError(f"{self.name}: input shapes must be {expected}, got {input_shapes}")
        k, d = cfg.architecture.mbd_kernels, cfg.architecture.mbd_dim
        self.streams, self.feature_mbd, self.feature_tanh, self.sparsity_mbd, self.sparsity_tanh = [], [], [], [], []
        widths = []  # widths of the pieces of the final concatenation, in order
        for index, shape in enumerate(expected):
            stream = _discriminator_stream(shape, cfg, f"{self.name}.stream{index}")
            (n_features,) = stream.build(shape, self.backend, rng)
            mbd = MinibatchDiscrimination(k, d, name=f"{self.name}.mbd_features{index}")
            mbd.build((n_features,), self.backend, rng)
            smbd = MinibatchDiscrimination(k, d, name=f"{self.name}.mbd_sparsity{index}")
            smbd.build((1,), self.backend, rng)
            tanhs = [Tanh(name=f"{self.name}.tanh_{what}{index}") for what in ("features", "sparsity")]
            for t in tanhs:
                t.build((k,), self.backend, rng)
            self.streams.append(stream)
            self.feature_mbd.append(mbd)
            self.sparsity_mbd.append(smbd)
            self.feature_tanh.append(tanhs[0])
            self.sparsity_tanh.append(tanhs[1])
            widths += [n_features, k, 1, k]
        n_layers = len(expected)
        self.energy_mbd = MinibatchDiscrimination(k, d, name=f"{self.name}.mbd_energies")
        self.energy_mbd.build((n_layers,), self.backend, rng)
        self.energy_tanh = Tanh(name=f"{self.name}.tanh_energies")
        self.energy_tanh.build((k,), self.backend, rng)
        widths += [n_layers, 1, k, 1, 1]  # E_l / 10, E_tot / 100, tanh(MBD(E_l)), |E_tot - E|, step
        self.widths = widths
        self.output = Dense(1, name=f"{self.name}.output")
        self.output.build((sum(widths),), self.backend, rng)
        return (1,)

    def sublayers(self):
        return [*self.streams, *self.feature_mbd, *self.feature_tanh, *self.sparsity_mbd, *self.sparsity_tanh,
                self.energy_mbd, self.energy_tanh, self.output]

    def set_input_gradient(self, flag: bool) -> None:
        """Whether backward returns dL/d(images) (off in the discriminator's own steps, which only need the
        weight gradients: the first convolution's data gradient is then skipped)."""
        self.input_grad = flag
        for stream in self.streams:
            stream.layers[0].input_grad = flag

    def set_update_statistics(self, flag: bool) -> None:
        """Whether training-mode forwards update the BatchNorm moving statistics (off in the generator step)."""
        for layer in self.walk():
            if isinstance(layer, BatchNorm):
                layer.update_statistics = flag

    def forward(self, inputs, training: bool = True):
        *images, energy = inputs
        xp = self.backend.xp
        if len(images) != len(self.shapes):
            raise ValueError(f"{self.name}: expected {len(self.shapes)} images and the energy, "
                             f"got {len(inputs)} inputs")
        n = energy.shape[0]
        pieces = []
        layer_energies = []
        for index, x in enumerate(images):
            features = self.streams[index].forward(x, training)
            pieces.append(features)
            mbd = self.feature_mbd[index].forward(features, training)
            pieces.append(self.feature_tanh[index].forward(mbd, training))
            sparsity = (x > 0).reshape(n, -1).mean(axis=1, keepdims=True).astype(x.dtype)
            pieces.append(sparsity)
            pieces.append(self.sparsity_tanh[index].forward(self.sparsity_mbd[index].forward(sparsity, training),
                                                            training))
            layer_energies.append(x.reshape(n, -1).sum(axis=1))
        e_layers = xp.stack(layer_energies, axis=1)  # (N, L) GeV
        e_tot = e_layers.sum(axis=1, keepdims=True)  # (N, 1)
        deviation = e_tot - energy.reshape(n, 1)
        self._deviation_sign = xp.sign(deviation)  # retained: d|E_tot - E| / dE_tot
        well = xp.abs(deviation)
        pieces += [e_layers / 10.0, e_tot / 100.0,
                   self.energy_tanh.forward(self.energy_mbd.forward(e_layers, training), training),
                   well, 10.0 * (well > WELL_THRESHOLD_GEV).astype(well.dtype)]
        self._image_shapes = [x.shape for x in images]  # retained: the shapes of the image gradients
        return self.output.forward(xp.concatenate(pieces, axis=1), training)

    def backward(self, d_logits):
        dp = self.output.backward(d_logits)
        bounds = np.cumsum(self.widths)[:-1]
        parts = np.split(np.arange(dp.shape[1]), bounds)
        d = [dp[:, p[0]:p[-1] + 1] for p in parts]
        n_layers = len(self.shapes)
        d_e_layers, d_e_tot, d_mbd_e, d_well, _ = d[4 * n_layers:]
        d_e_layers = d_e_layers / 10.0 + self.energy_mbd.backward(self.energy_tanh.backward(d_mbd_e))
        d_e_tot = d_e_tot / 100.0 + d_well * self._deviation_sign  # (N, 1); the step has no gradient
        d_e_layers = d_e_layers + d_e_tot
        d_images = []
        for index in range(n_layers):
            d_features, d_mbd, _, d_smbd = d[4 * index: 4 * index + 4]
            d_features = d_features + self.feature_mbd[index].backward(self.feature_tanh[index].backward(d_mbd))
            if self.sparsity_mbd[index].param_grads:  # its input (the occupancy) has no gradient: weights only
                self.sparsity_mbd[index].backward(self.sparsity_tanh[index].backward(d_smbd))
            dx = self.streams[index].backward(d_features)
            if self.input_grad:
                d_images.append(dx + d_e_layers[:, index].reshape(-1, 1, 1, 1))
        return d_images if self.input_grad else None
