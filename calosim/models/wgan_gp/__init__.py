"""A FastCaloGAN-style conditional WGAN-GP of dense layers on flattened voxels (reference section 6).

Works for any geometry (CaloGAN layers, CaloChallenge binnings): the showers are flattened by
``Geometry.flatten`` into V voxels. Notation: N batch, Z latent size, V voxels, c (N, 1) the condition.

Training units: x = voxel energy / incident energy (both in MeV) * ``voxel_scale``, i.e. the fraction of the
incident energy each voxel holds; ``generate`` multiplies back by E (MeV) / voxel_scale.
Condition: c = log(E / E_min) / log(E_max / E_min), (E_min, E_max) = energy_range (GeV), stored with the model.

Generator  G(z, c): concat[z (N, Z), c] -> Dense(50) -> LeakyReLU -> Dense(100) -> LeakyReLU -> Dense(200)
                    -> LeakyReLU -> Dense(V) -> ReLU (non-negative energies)      (widths: architecture.g_hidden)
Critic     D(x, c): concat[x (N, V), c] -> 3 x [Dense(V) -> ReLU] -> Dense(1)   (widths: architecture.d_hidden or V)

Losses (per critic step, one real batch x_r with its energies; fakes x_f = G(z, c) at the same energies):
    L_D = mean D(x_f) - mean D(x_r) + lambda mean_n (||d D(x_hat_n, c_n) / d x_hat_n||_2 - 1)^2,
    x_hat = eps x_r + (1 - eps) x_f, eps ~ U(0, 1) per shower, lambda = training.gp_weight (10).
The penalty is on the voxel part of the critic's input only (the condition is the same for x_r, x_f and x_hat
and is not interpolated), as in FastCaloGAN, whose critic takes the label as a separate input. Its weight
gradient is the hand-written double backward of calosim.layers.double_backward.
After every ``training.critic_steps`` (5) critic steps one generator step: L_G = -mean D(G(z, c), c), with the
energies of the current real batch. Adam 1e-4, beta1 0.55, batch 128.
Optional energy term (group ``response``, off in the FastCaloGAN config): L_G += response.weight *
mean_n |r(G(z_n, c_n)) - r_n|, r = sum of the cells (MeV) / E_inc (MeV) the response, r_n that of the real
shower at the same incident energy (CaloGAN's energy-conservation term as a response; the critic alone leaves
the total energy several per cent low), its gradient through the inverse transform.

Optional layer energies (group ``layer_energy``): L more generator outputs (and critic inputs)
t_l = (E_l / E_inc / s_l)^p, p = layer_energy.power (a root keeps a faint layer visible without the
exponential sensitivity of the voxels' log units), s_l the model's fitted ``layer_energy_scales`` (1 without
them; with layer_energy.scaled WGANGP.fit sets them to the training data's mean E_l / E_inc, so that every t is
of order 1: CaloGAN's layer 2 holds 0.2% of the energy, and unscaled its t was too small for the critic to
weigh). Generation rescales each layer's cells to sum s_l max(t_l, 0)^(1/p) E_inc: the voxels give the
shape, t the energies (through the log transform a shower's energy is only as good as its hottest voxels),
and t_l <= 0 is an empty layer (Geant4's e+ leave layer 2 empty in 2.6% of showers, 28% below 10 GeV). The
energy term then uses r = sum_l s_l max(t_l, 0)^(1/p). With layer_energy.leak > 0 the t outputs end in
a LeakyReLU of that slope instead of the voxels' ReLU: under a plain ReLU the faint layer 2's output died
early in training (t_2 = 0 for 97-100% of the showers).

Optional empty-layer head (group ``empty_layers``, with the layer energies): L more generator outputs, logits
k_l of P(layer l is empty | E), not seen by the critic. Trained by L_G += empty_layers.weight *
BCE(sigmoid(k), e), e_nl = 1 where the real shower n of the batch (same incident energy) has E_l = 0: with z
independent of the real shower, the optimum is P(empty | E). Generation draws the empty layers, u < sigmoid(k)
with u ~ U(0, 1) seeded by the latent vectors, and sets their t to 0. A critic cannot see a 2.6% point mass
at t = 0 next to a continuum of faint layers; the layer-2 energies at 1-10 GeV then never reached 0.

Optional per-energy-point schedule (group ``energy_points``): when the training data has a few discrete incident
energies, each epoch visits them in increasing order, all the batches of one energy point before the next
(calosim.data.dataset.energy_point_batches); with continuous energies it falls back to the usual shuffled order.

The package: config (the configurations in groups), model (the model contract of calosim.models.base), training
(the critic and generator steps).
"""

from calosim.models.wgan_gp.config import CONFIGS, WGANGPConfig
from calosim.models.wgan_gp.model import WGANGP
from calosim.models.wgan_gp.training import WGANGPTrainer

__all__ = ["CONFIGS", "WGANGP", "WGANGPConfig", "WGANGPTrainer"]
