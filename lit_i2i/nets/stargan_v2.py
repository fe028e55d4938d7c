"""StarGAN v2's networks (Choi, Uh, Yoo, Ha, CVPR 2020), as ``core/model.py`` of clovaai/stargan-v2@875b70a.

Module and attribute names are the official ones (``from_rgb``, ``encode``, ``decode``, ``to_rgb``,
``hpf``; ``shared``/``unshared``; ``main``; ``conv1``, ``conv2``, ``norm1``, ``norm2``, ``conv1x1``,
``fc``), so the state-dict keys match the official checkpoints' (``*_nets_ema.ckpt`` stores each
network's ``state_dict`` without the DataParallel prefix).

Blocks
  - :class:`ResBlk`: pre-activation residual block: [IN(affine)] -> LeakyReLU 0.2 -> conv3x3 ->
    (avg-pool 2) -> [IN(affine)] -> LeakyReLU 0.2 -> conv3x3, plus the shortcut (a bias-free 1x1
    conv when the widths differ, then avg-pool 2 when downsampling); ``(shortcut + residual) / sqrt(2)``.
  - :class:`AdaIN`: ``(1 + gamma) * IN(x) + beta`` with ``(gamma, beta) = fc(s)`` split in two halves
    (gamma first); IN without affine, eps 1e-5.
  - :class:`AdainResBlk`: AdaIN -> LeakyReLU -> (2x nearest up) -> conv3x3 -> AdaIN -> LeakyReLU ->
    conv3x3; with ``w_hpf == 0`` plus the (upsampled, 1x1) shortcut and / sqrt(2); with ``w_hpf > 0``
    the residual branch alone (the official block still *builds* its 1x1 shortcut conv then, unused:
    it is kept so that parameter counts and checkpoints match).
  - :class:`HighPass`: the fixed 3x3 Laplacian ``[[-1,-1,-1],[-1,8,-1],[-1,-1,-1]] / w_hpf``, depthwise.

Networks (widths from ``dim_in = 2**14 // img_size``, doubling per level, capped at ``max_conv_dim``;
``base_dim`` overrides ``dim_in`` for small CPU models)
  - :class:`Generator`: 3x3 conv ``from_rgb``; ``log2(img_size) - 4`` (+1 with ``w_hpf > 0``)
    downsampling ResBlks (IN) and 2 bottleneck ResBlks; the mirror AdainResBlks; ``to_rgb`` = IN(affine),
    LeakyReLU, 1x1 conv. With ``w_hpf > 0`` and face ``masks`` (two heatmaps from the FAN landmark
    network, official ``core/wing.py``), encoder features at 32/64/128 px are masked, high-passed and
    added after the decoder block of that size; without masks the skips are off (as the official
    code with ``masks=None``).
  - :class:`MappingNetwork`: 4 shared Linear+ReLU layers (``latent_dim`` -> 512 -> ... -> 512), then
    one head per domain (3 x Linear 512 + ReLU, Linear to ``style_dim``); the head of ``y`` is taken.
  - :class:`StyleEncoder`: 3x3 conv, ``log2(img_size) - 2`` downsampling ResBlks (no norm),
    LeakyReLU, 4x4 conv, LeakyReLU; one Linear head per domain.
  - :class:`Discriminator`: the style encoder's trunk, then a 1x1 conv to one logit per domain; the
    logit of ``y`` is taken. (Not TUNIT's ``MultiTaskDiscriminator``: that one has FRN in its blocks
    and widths up to 1024, a different function.)

Parameter counts at the official defaults (256 px, style 64, latent 16, 512 channels; equal to the
official networks, tested from the layer definitions): generator 33,892,995 (w_hpf 0, AFHQ) and
43,467,395 (w_hpf 1, CelebA-HQ); mapping network 2,438,272 (2 domains) / 3,259,072 (3); style
encoder 20,916,928 / 20,949,760; discriminator 20,852,290 / 20,852,803.

Every head is evaluated and the selected one indexed out of the stack, as the official code does, so
the other domains' heads get zero (not absent) gradients, which Adam's weight decay acts on.

Departures: ``in_ch`` input/output channels (official 3); ``base_dim`` and the mapping network's
``hidden_dim`` (official: 2**14 // img_size and 512, the latter hard-coded although main.py has a
``--hidden_dim`` flag) can be set for small models; activations are separate modules (the official
blocks share one default ``LeakyReLU`` instance: no parameters, the same function).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lit_i2i.nets.content_style import kaiming_init_


def levels(img_size: int) -> int:
    """log2(img_size), checked to be a whole number (the networks halve the image down to 4 x 4)."""
    n = math.log2(img_size) if img_size > 0 else -1
    if n < 3 or n != int(n):
        raise ValueError(f"StarGAN v2 networks need a power-of-two img_size >= 8, got {img_size}")
    return int(n)


def select(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``out[i, y[i]]`` for every row of ``out`` (N, domains, ...)."""
    return out[torch.arange(out.shape[0], device=out.device), y.long().to(out.device)]


class ResBlk(nn.Module):
    def __init__(self, dim_in: int, dim_out: int, normalize: bool = False, downsample: bool = False):
        super().__init__()
        self.normalize, self.downsample, self.learned_sc = normalize, downsample, dim_in != dim_out
        self.actv = nn.LeakyReLU(0.2)
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        if normalize:
            self.norm1 = nn.InstanceNorm2d(dim_in, affine=True)
            self.norm2 = nn.InstanceNorm2d(dim_in, affine=True)
        if self.learned_sc:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.learned_sc:
            x = self.conv1x1(x)
        return F.avg_pool2d(x, 2) if self.downsample else x

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            x = self.norm1(x)
        x = self.conv1(self.actv(x))
        if self.downsample:
            x = F.avg_pool2d(x, 2)
        if self.normalize:
            x = self.norm2(x)
        return self.conv2(self.actv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self._shortcut(x) + self._residual(x)) / math.sqrt(2)


class AdaIN(nn.Module):
    def __init__(self, style_dim: int, num_features: int):
        super().__init__()
        self.norm = nn.InstanceNorm2d(num_features, affine=False)
        self.fc = nn.Linear(style_dim, num_features * 2)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        h = self.fc(s)[:, :, None, None]
        gamma, beta = h.chunk(2, dim=1)
        return (1 + gamma) * self.norm(x) + beta


class AdainResBlk(nn.Module):
    def __init__(self, dim_in: int, dim_out: int, style_dim: int = 64, w_hpf: float = 0, upsample: bool = False):
        super().__init__()
        self.w_hpf, self.upsample, self.learned_sc = w_hpf, upsample, dim_in != dim_out
        self.actv = nn.LeakyReLU(0.2)
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, 1, 1)
        self.norm1 = AdaIN(style_dim, dim_in)
        self.norm2 = AdaIN(style_dim, dim_out)
        if self.learned_sc:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv1x1(x) if self.learned_sc else x

    def _residual(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        x = self.actv(self.norm1(x, s))
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv1(x)
        return self.conv2(self.actv(self.norm2(x, s)))

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        out = self._residual(x, s)
        if self.w_hpf == 0:
            out = (out + self._shortcut(x)) / math.sqrt(2)
        return out


class HighPass(nn.Module):
    def __init__(self, w_hpf: float):
        super().__init__()
        k = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]])
        self.register_buffer("filter", k / w_hpf)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.filter[None, None].repeat(x.shape[1], 1, 1, 1).to(x.dtype)
        return F.conv2d(x, f, padding=1, groups=x.shape[1])


class Generator(nn.Module):
    def __init__(self, img_size: int = 256, style_dim: int = 64, max_conv_dim: int = 512, w_hpf: float = 1,
                 in_ch: int = 3, base_dim: int | None = None):
        super().__init__()
        dim_in = base_dim or 2 ** 14 // img_size
        self.img_size, self.w_hpf = img_size, w_hpf
        self.from_rgb = nn.Conv2d(in_ch, dim_in, 3, 1, 1)
        self.encode, self.decode = nn.ModuleList(), nn.ModuleList()
        self.to_rgb = nn.Sequential(nn.InstanceNorm2d(dim_in, affine=True), nn.LeakyReLU(0.2),
                                    nn.Conv2d(dim_in, in_ch, 1, 1, 0))
        repeat = levels(img_size) - 4 + (1 if w_hpf > 0 else 0)
        if repeat < 1:
            raise ValueError(f"the StarGAN v2 generator needs img_size >= 32, got {img_size}")
        dim_out = dim_in
        for _ in range(repeat):  # down in the encoder, the mirror up-block first in the decoder
            dim_out = min(dim_in * 2, max_conv_dim)
            self.encode.append(ResBlk(dim_in, dim_out, normalize=True, downsample=True))
            self.decode.insert(0, AdainResBlk(dim_out, dim_in, style_dim, w_hpf=w_hpf, upsample=True))
            dim_in = dim_out
        for _ in range(2):  # bottleneck
            self.encode.append(ResBlk(dim_out, dim_out, normalize=True))
            self.decode.insert(0, AdainResBlk(dim_out, dim_out, style_dim, w_hpf=w_hpf))
        if w_hpf > 0:
            self.hpf = HighPass(w_hpf)

    def forward(self, x: torch.Tensor, s: torch.Tensor, masks: tuple[torch.Tensor, torch.Tensor] | None = None):
        x = self.from_rgb(x)
        cache = {}
        for block in self.encode:
            if masks is not None and x.shape[2] in (32, 64, 128):
                cache[x.shape[2]] = x
            x = block(x)
        for block in self.decode:
            x = block(x, s)
            if masks is not None and x.shape[2] in (32, 64, 128):
                mask = masks[0] if x.shape[2] == 32 else masks[1]
                mask = F.interpolate(mask, size=x.shape[2], mode="bilinear")
                x = x + self.hpf(mask * cache[x.shape[2]])
        return self.to_rgb(x)


class MappingNetwork(nn.Module):
    def __init__(self, latent_dim: int = 16, style_dim: int = 64, num_domains: int = 2, hidden_dim: int = 512):
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(latent_dim, hidden_dim), nn.ReLU()]
        for _ in range(3):
            layers += [nn.Linear(hidden_dim, hidden_dim), nn.ReLU()]
        self.shared = nn.Sequential(*layers)
        self.unshared = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
                          nn.Linear(hidden_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, style_dim))
            for _ in range(num_domains))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.shared(z)
        return select(torch.stack([head(h) for head in self.unshared], dim=1), y)


def _trunk(img_size: int, max_conv_dim: int, in_ch: int, base_dim: int | None) -> tuple[list[nn.Module], int]:
    """The style encoder's and the discriminator's shared layers (up to the last LeakyReLU) and their width."""
    dim_in = base_dim or 2 ** 14 // img_size
    blocks: list[nn.Module] = [nn.Conv2d(in_ch, dim_in, 3, 1, 1)]
    dim_out = dim_in
    for _ in range(levels(img_size) - 2):
        dim_out = min(dim_in * 2, max_conv_dim)
        blocks.append(ResBlk(dim_in, dim_out, downsample=True))
        dim_in = dim_out
    blocks += [nn.LeakyReLU(0.2), nn.Conv2d(dim_out, dim_out, 4, 1, 0), nn.LeakyReLU(0.2)]
    return blocks, dim_out


class StyleEncoder(nn.Module):
    def __init__(self, img_size: int = 256, style_dim: int = 64, num_domains: int = 2, max_conv_dim: int = 512,
                 in_ch: int = 3, base_dim: int | None = None):
        super().__init__()
        blocks, dim_out = _trunk(img_size, max_conv_dim, in_ch, base_dim)
        self.shared = nn.Sequential(*blocks)
        self.unshared = nn.ModuleList(nn.Linear(dim_out, style_dim) for _ in range(num_domains))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.shared(x).flatten(1)
        return select(torch.stack([head(h) for head in self.unshared], dim=1), y)


class Discriminator(nn.Module):
    def __init__(self, img_size: int = 256, num_domains: int = 2, max_conv_dim: int = 512, in_ch: int = 3,
                 base_dim: int | None = None):
        super().__init__()
        blocks, dim_out = _trunk(img_size, max_conv_dim, in_ch, base_dim)
        self.main = nn.Sequential(*blocks, nn.Conv2d(dim_out, num_domains, 1, 1, 0))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The logit of each image's domain ``y`` (N,); ``y=None``: every domain's (N, num_domains)."""
        out = self.main(x).flatten(1)
        return out if y is None else select(out, y)


def he_init_(*nets: nn.Module) -> None:
    """The official ``utils.he_init`` (Kaiming-normal fan-in weights, zero biases of every conv and
    linear layer; norms keep 1 / 0), applied to the trained networks only."""
    for net in nets:
        kaiming_init_(net, "fan_in")
