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
    With the group log_input the stream sees log(1 + image / eps) instead of the image (the response feature
    stays linear): in linear units a diffuse 1% of the energy spread over the outer cells is invisible to D,
    yet it doubles the lateral width; images are >= 0 (the generator's ReLU), d log / d image = 1 / (eps + x).
Training (per real batch of B): D on concat[real, fake] (2B; fakes at the real batch's energies, labels drawn
uniformly), targets real 1 / fake 0 with ``training.label_flip`` (5%) of them flipped, auxiliary target the class;
then G on 2B fresh samples, target 1 and the sampled class (D's BatchNorm statistics not updated).
Loss = BCE(real/fake) + training.aux_weight * BCE(aux); Adam 2e-4, beta1 0.5, batch 100.

The package: config (the configurations in groups), networks (the generator, the discriminator), model (the model
contract of calosim.models.base), training (the iteration above and the additions' generator terms).
"""

from calosim.models.lagan.config import CONFIGS, LAGANConfig
from calosim.models.lagan.model import LAGAN
from calosim.models.lagan.networks import IMAGE_SHAPE, ClassEmbedding, LAGANDiscriminator, LAGANGenerator
from calosim.models.lagan.training import LAGANTrainer

__all__ = ["CONFIGS", "IMAGE_SHAPE", "LAGAN", "LAGANConfig", "LAGANDiscriminator", "LAGANGenerator", "LAGANTrainer",
           "ClassEmbedding"]
