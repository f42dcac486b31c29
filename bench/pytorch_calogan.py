"""The `calogan` networks and training iteration in plain PyTorch: the yardstick the speed issue quotes
(PyTorch on the CPU running the same architecture), measured in the same run as calosim.

Not part of calosim and not one of its dependencies: the benchmarks that use it skip unless torch is installed
(`pip install torch`, the CPU build). The layers follow calosim.models.calogan shape for shape (reference
sections 2-4); weights are drawn from torch's own initialisers, since only the time is compared.
LocallyConnected2D is the usual PyTorch formulation: unfold, then one batched product over the output
positions. The training iteration is written as a PyTorch user would write it for speed: the fake batch of the
discriminator step under no_grad, the discriminator's weights frozen in the generator steps, fused Adam.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LEAK = 0.3
BN = {"eps": 1e-3, "momentum": 0.01}  # Keras momentum 0.99
SHAPES = ((3, 96), (12, 12), (12, 6))


class LocallyConnected2D(nn.Module):
    """Unshared k x k filters per output position; NCHW in and out."""

    def __init__(self, in_shape, filters: int, kernel: int, stride=(1, 1), bias: bool = True):
        super().__init__()
        channels, rows, cols = in_shape
        self.kernel, self.stride = kernel, stride
        self.out_shape = (filters, (rows - kernel) // stride[0] + 1, (cols - kernel) // stride[1] + 1)
        positions, fan_in = self.out_shape[1] * self.out_shape[2], channels * kernel * kernel
        self.weight = nn.Parameter(torch.randn(positions, fan_in, filters) * math.sqrt(2.0 / fan_in))
        self.bias = nn.Parameter(torch.zeros(positions, 1, filters)) if bias else None

    def forward(self, x):
        columns = F.unfold(x, self.kernel, stride=self.stride).permute(2, 0, 1).contiguous()  # (P, N, fan_in)
        y = torch.bmm(columns, self.weight) if self.bias is None else torch.baddbmm(self.bias, columns, self.weight)
        return y.permute(1, 2, 0).reshape(x.shape[0], *self.out_shape)


def same_conv(x, conv):
    """Keras 'same' for a 2x2 kernel: one row and column of zeros at the bottom and right."""
    return conv(F.pad(x, (0, 1, 0, 1)))


class GeneratorStream(nn.Module):
    def __init__(self, shape, latent: int = 1024, dense_channels: int = 36):
        super().__init__()
        rows, cols = shape
        self.grid = (dense_channels, rows + 2, cols + 2)
        self.dense = nn.Linear(latent, dense_channels * (rows + 2) * (cols + 2))
        self.conv = nn.Conv2d(dense_channels, 16, 2)
        self.norm = nn.BatchNorm2d(16, **BN)
        self.local1 = LocallyConnected2D((16, rows + 2, cols + 2), 6, 2)
        self.local2 = LocallyConnected2D((6, rows + 1, cols + 1), 1, 2, bias=False)

    def forward(self, h):
        x = self.dense(h).view(h.shape[0], *self.grid)
        x = self.norm(F.leaky_relu(same_conv(x, self.conv), LEAK))
        return self.local2(F.leaky_relu(self.local1(x), LEAK))


class Attention(nn.Module):
    """CaloGAN's in-painting: per-cell softmax weights of the layer's own image and the previous one's."""

    def __init__(self, shape):
        super().__init__()
        self.local = LocallyConnected2D((2, shape[0] + 2, shape[1] + 2), 2, 3)

    def forward(self, own, carried):
        w = torch.softmax(self.local(F.pad(torch.cat([own, carried], 1), (1, 1, 1, 1))), dim=1)
        return w[:, 0:1] * own + w[:, 1:2] * carried


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.streams = nn.ModuleList(GeneratorStream(s) for s in SHAPES)
        self.attention = nn.ModuleList(Attention(s) for s in SHAPES[1:])

    def forward(self, z, energy):
        h = z * (energy / 100.0).view(-1, 1)
        xs = [stream(h) for stream in self.streams]
        carried = F.avg_pool2d(F.interpolate(xs[0], scale_factor=(4, 1)), (1, 8))  # (3, 96) -> (12, 12)
        xs[1] = self.attention[0](xs[1], carried)
        xs[2] = self.attention[1](xs[2], F.avg_pool2d(xs[1], (1, 2)))  # (12, 12) -> (12, 6)
        return [F.relu(x) for x in xs]


class MinibatchDiscrimination(nn.Module):
    """L1 exponential kernel over the batch, 10 kernels of dimension 10."""

    def __init__(self, n_in: int, kernels: int = 10, dim: int = 10):
        super().__init__()
        self.kernels, self.dim = kernels, dim
        self.tensor = nn.Parameter(torch.randn(n_in, kernels * dim) * 0.05)

    def forward(self, x):
        m = (x @ self.tensor).view(-1, self.kernels, self.dim)
        distances = (m.unsqueeze(1) - m.unsqueeze(0)).abs().sum(-1)  # (N, N, K)
        return torch.exp(-distances).sum(1)


class DiscriminatorStream(nn.Module):
    def __init__(self, shape):
        super().__init__()
        rows, cols = shape
        self.conv = nn.Conv2d(1, 64, 2)
        blocks, in_shape = [], (64, rows + 2, cols + 2)
        for filters, kernel, stride in ((16, 3, (1, 2)), (8, 2, (1, 1)), (8, 2, (1, 2))):
            local = LocallyConnected2D(in_shape, filters, kernel, stride)
            blocks += [local, nn.BatchNorm2d(filters, **BN)]
            in_shape = (filters, local.out_shape[1] + 2, local.out_shape[2] + 2)
        self.blocks = nn.ModuleList(blocks)
        self.features = filters * (in_shape[1] - 2) * (in_shape[2] - 2)

    def forward(self, x):
        x = F.leaky_relu(same_conv(x, self.conv), LEAK)
        for local, norm in zip(self.blocks[::2], self.blocks[1::2]):
            x = norm(F.leaky_relu(local(F.pad(x, (1, 1, 1, 1))), LEAK))
        return x.flatten(1)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.streams = nn.ModuleList(DiscriminatorStream(s) for s in SHAPES)
        self.feature_mbd = nn.ModuleList(MinibatchDiscrimination(s.features) for s in self.streams)
        self.sparsity_mbd = nn.ModuleList(MinibatchDiscrimination(1) for _ in SHAPES)
        self.energy_mbd = MinibatchDiscrimination(len(SHAPES))
        width = sum(s.features + 21 for s in self.streams) + len(SHAPES) + 13
        self.output = nn.Linear(width, 1)

    def forward(self, images, energy):
        pieces, layer_energies = [], []
        for x, stream, mbd, smbd in zip(images, self.streams, self.feature_mbd, self.sparsity_mbd):
            features = stream(x)
            sparsity = (x > 0).flatten(1).float().mean(1, keepdim=True)
            pieces += [features, torch.tanh(mbd(features)), sparsity, torch.tanh(smbd(sparsity))]
            layer_energies.append(x.flatten(1).sum(1))
        e_layers = torch.stack(layer_energies, 1)
        e_tot = e_layers.sum(1, keepdim=True)
        well = (e_tot - energy.view(-1, 1)).abs()
        pieces += [e_layers / 10.0, e_tot / 100.0, torch.tanh(self.energy_mbd(e_layers)), well,
                   10.0 * (well > 5.0).float()]
        return self.output(torch.cat(pieces, 1))


class TrainingIteration:
    """One CaloGAN iteration (reference section 4): D on real, D on fake, two generator steps."""

    def __init__(self, seed: int = 0):
        torch.manual_seed(seed)
        self.generator, self.discriminator = Generator(), Discriminator()
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=True)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=2e-5, betas=(0.5, 0.999), fused=True)

    def inputs(self, n: int):
        return torch.randn(n, 1024), torch.empty(n).uniform_(1.0, 100.0)

    def d_step(self, images, energy, target: float) -> float:
        self.opt_d.zero_grad(set_to_none=True)
        logits = self.discriminator(images, energy)
        loss = F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))
        loss.backward()
        self.opt_d.step()
        return loss.item()

    def __call__(self, real_images, real_energy) -> None:
        n = real_energy.shape[0]
        self.d_step(real_images, real_energy, 1.0)
        z, energy = self.inputs(n)
        with torch.no_grad():
            fake = self.generator(z, energy)
        self.d_step(fake, energy, 0.0)
        self.discriminator.requires_grad_(False)
        for _ in range(2):
            z, energy = self.inputs(n)
            self.opt_g.zero_grad(set_to_none=True)
            images = self.generator(z, energy)
            logits = self.discriminator(images, energy)
            total = sum(x.flatten(1).sum(1) for x in images)
            loss = (F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
                    + 0.05 * (total - energy).abs().mean())
            loss.backward()
            self.opt_g.step()
        self.discriminator.requires_grad_(True)


def real_batch(n: int, seed: int = 0):
    """Sparse positive images (N, 1, R, C) and energies, like the benchmarks' calosim batch."""
    g = torch.Generator().manual_seed(seed)
    images = [torch.empty(n, 1, *s).exponential_(100.0, generator=g) * (torch.rand(n, 1, *s, generator=g) < 0.5)
              for s in SHAPES]
    return images, torch.empty(n).uniform_(1.0, 100.0, generator=g)
