"""CaloGAN (arXiv:1705.02355): a conditional generator and discriminator for layered calorimeter images.

The package: config (the configurations), generator, discriminator, model (the model contract of
calosim.models.base), training (the step of reference section 4), inference (the folded sampler).

Built from calosim.layers for any layered geometry (one stream per layer); reference sections 2-3.

Notation: N batch, L layers, layer l an image (R_l, C_l); Z latent size; images are channels-last
(N, R_l, C_l, 1) in training units (GeV = MeV / config.image_scale); E the incident energy (N,) in GeV.

Generator  G(z, E) -> [(N, R_l, C_l, 1)]:
    h = z * (E / 100)   [config g_energy_scaled_output: h = [z (E / 100)^p, log(E / 100)], p config
                         g_latent_energy_power, and out_l below times E / 100]
    stream_l(h) = Dense((R+2)(C+2) F) -> Reshape(R+2, C+2, F) -> Conv2D(f, 2x2, same, he_uniform) -> LeakyReLU
                  -> BatchNorm -> LC2D(g, 2x2, he_uniform) -> LeakyReLU -> LC2D(1, 2x2, no bias, glorot_normal)
    x_l = attention(stream_l(h), carry_l(x_{l-1}))  for l >= 1 where the shapes relate (else x_l = stream_l(h))
    out_l = ReLU(x_l)   [config g_output_knee k > 0: x_l^2 / (x_l + k) where x_l > 0, 0 elsewhere]
carry_l = AveragePool(p) o UpSample(u): per axis, u = R_l / R_{l-1} if that divides, or p = R_{l-1} / R_l;
in the CaloGAN geometry (3, 96) -> (12, 12) is UpSample(4, 1) then AveragePool(1, 8) and (12, 12) -> (12, 6)
is AveragePool(1, 2), as in the paper. The carry is taken from x_{l-1} after its attention, before the ReLU.

Discriminator  D([images], E) -> logits (N, 1) (the sigmoid lives in the BCE-with-logits loss):
    per layer: s_l = Flatten(stream: Conv2D(c, 2x2, same) -> LeakyReLU -> 3 x [ZeroPad(1) -> LC2D -> LeakyReLU
               -> BatchNorm] with (16, 3x3, stride (1, 2)), (8, 2x2), (8, 2x2, stride (1, 2)))
               features s_l, tanh(MBD(s_l)), sparsity_l (fraction of cells > 0), tanh(MBD(sparsity_l))
    global:    E_l / 10, E_tot / 100, tanh(MBD(E_l)), |E_tot - E|, 10 [|E_tot - E| > 5 GeV]
               (E_l = sum of layer l's cells, E_tot = sum_l E_l, all in GeV)
    -> concat -> Dense(1).
Gradients: the sparsity and the step 10 [. > 5] are piecewise constant (zero gradient); gradients reach the
images through the streams, E_l, E_tot and |E_tot - E|. ``backward`` returns dL/d(images), which the trainer
chains into the generator's backward.
"""

from calosim.models.calogan.config import CONFIGS, CaloGANConfig
from calosim.models.calogan.discriminator import CaloGANDiscriminator
from calosim.models.calogan.generator import CaloGANGenerator
from calosim.models.calogan.model import CaloGAN, build_calogan

__all__ = ["CONFIGS", "CaloGAN", "CaloGANConfig", "CaloGANDiscriminator", "CaloGANGenerator", "build_calogan"]
