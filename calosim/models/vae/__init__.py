"""A conditional variational autoencoder of dense layers on flattened voxels (the FastCaloGAN team's VAE idea).

Notation: N batch, V voxels, Z latent size, c (N, 1) the condition log(E / E_min) / log(E_max / E_min).
Training units as the WGAN-GP's: x = voxel energy / incident energy (MeV / MeV) * ``voxel_scale``.

Encoder  q(z | x, c): concat[x (N, V), c] -> Dense(h_1) -> LeakyReLU -> ... -> Dense(h_k) -> LeakyReLU
                      -> Dense(2 Z) = [mu, log sigma^2]                                  (widths: architecture.hidden)
Decoder  p(x | z, c): concat[z (N, Z), c] -> Dense(h_k) -> LeakyReLU -> ... -> Dense(h_1) -> LeakyReLU
                      -> Dense(V) -> ReLU (non-negative energies)
Reparameterisation: z = mu + exp(log sigma^2 / 2) * eps, eps ~ N(0, 1); its gradient
    dL/dmu = dL/dz,  dL/dlog sigma^2 = dL/dz * eps * exp(log sigma^2 / 2) / 2.
Loss (mean over the batch):
    L = sum_v (x_hat_v - x_v)^2 / (2 recon_sigma^2)  +  kl_weight * KL  +  response.weight * (r_hat - r)^2,
    KL = -1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2)        (against the N(0, 1) prior)
    r = sum_v cell_v / E_inc, the response, with cells = training_to_voxels(x) in MeV (the same for x_hat):
    the MSE on log-transformed cells alone under-estimates the summed energy (errors of a log average out,
    those of the energy do not), which the response term corrects. Its gradient is taken through the
    inverse transform (zero where the cell cap binds). With the group prior_response the loss also has
    prior_response.weight * (r_prior - r)^2, r_prior the response of the decoder at z ~ N(0, 1) (the generation
    path) and the batch's condition: the reconstruction path alone leaves the prior's decodes free to carry
    another energy when the posterior does not cover the prior (this term trains the decoder, and the
    learned prior's network when there is one).
i.e. a Gaussian likelihood of fixed width ``recon_sigma`` (in training units) on the normalised voxels; the
MSE keeps the loss defined for exact zeros, which a BCE on fractions would too but with a worse scale for
voxels far below 1. Generation samples z from the prior N(0, 1) and runs the decoder alone.

Learned prior (group ``conditional_prior``): the energy is visible in x, so the encoder puts energy information
into z and decodes of z ~ N(0, 1) at a given c lose it (a prior hole). With a learned conditional prior
p(z | c) = N(mu_p(c), sigma_p(c)^2), a third network c -> Dense(hidden) -> LeakyReLU -> Dense(2 Z)
(output initialised to zero: N(0, 1) at the start), the KL term is KL(q(z | x, c) || p(z | c)) and generation
maps z ~ N(0, 1) to mu_p(c) + sigma_p(c) z.

Occupancy head (group ``occupancy_head``): most Geant4 cells are empty or tiny (a mean-regression decoder smears
them into too few or too many non-zero cells), so the decoder's last Dense has 2 V outputs, amounts a (N, V)
and occupancy logits l (N, V), a hurdle likelihood: m = [x > 0] (per voxel),
    recon = sum_v m_v (a_v - x_v)^2 / (2 recon_sigma^2) + occupancy_head.weight * sum_v BCE(sigmoid(l_v), m_v)
(the amount is fitted on occupied voxels only), and the response terms use the amounts in the real
shower's occupied voxels, r = sum_v m_v cell(a_v) / E_inc (for the prior's decodes too: the occupancy is
left to the BCE, whose probabilities stay calibrated). Generation keeps voxel v with probability sigmoid(l_v):
u_v < sigmoid(l_v), u ~ U(0, 1) from ``rng`` (default: a Generator seeded by the bytes of the batch's
latent vectors, so the same latent vectors give the same showers).

Layer-energy head (group ``layer_energy``): the per-shower energy of a decode of log-like units is
only as good as its hottest cells (an error of 0.03 in x is 35% in a cell), so L more outputs predict
t_l = log(E_l / E_inc + delta) with a Gaussian likelihood of width ``sigma`` (added to recon),
and generation rescales each layer's cells to sum (exp(t_l) - delta) E_inc: the cells give the shape,
the head the layer energies.

The package: config (the configurations in groups), latent (the reparameterisation and the KL terms), model (the
model contract of calosim.models.base and the loss), training (the Adam step).
"""

from calosim.models.vae.config import CONFIGS, VAEConfig
from calosim.models.vae.latent import kl_divergence, kl_divergence_gaussians, reparameterise, reparameterise_backward
from calosim.models.vae.model import VAE
from calosim.models.vae.training import VAETrainer

__all__ = ["CONFIGS", "VAE", "VAEConfig", "VAETrainer", "kl_divergence", "kl_divergence_gaussians",
           "reparameterise", "reparameterise_backward"]
