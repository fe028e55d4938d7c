"""Anti-aliased ResNet generator and PatchGAN, following ``models/networks.py`` of
taesungp/contrastive-unpaired-translation (b3ac297): ``Downsample``, ``Upsample``, ``ResnetGenerator``
and ``NLayerDiscriminator`` with their default ``no_antialias=False`` / ``no_antialias_up=False``
(Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019: blur, then subsample).

``BlurDownsample`` (the official ``Downsample``, filter 3): reflection pad 1, then a depthwise conv
with the normalised binomial filter [1, 2, 1] x [1, 2, 1] / 16 at stride 2. ``BlurUpsample`` (the
official ``Upsample``, filter 4): replication pad 1, a depthwise transposed conv with [1, 3, 3, 1] x
[1, 3, 3, 1] / 64 * 4 at stride 2 and padding 2, then the first row/column and (even filter) the
last one are cut: H -> 2H. Both filters are fixed buffers, not parameters.

:class:`AntialiasResnetGenerator` (the official layout; ``n_down`` = 2 there)::

    0 ReflectionPad(3)   1 conv 7x7 in_ch -> ngf   2 norm   3 ReLU
    n_down x [conv 3x3 stride 1, channels x2, norm, ReLU, BlurDownsample]      (4 modules each)
    n_blocks x ResnetBlock(ngf * 2**n_down)
    n_down x [BlurUpsample, conv 3x3 stride 1, channels / 2, norm, ReLU]       (4 modules each)
    ReflectionPad(3), conv 7x7 ngf -> out_ch (bias), Tanh

so the module indices are the official ones and CUT's ``nce_layers`` 0, 4, 8, 12, 16 name the same
tensors: the padded input, the first and second stride-1 downsampling convs (before their norm),
and the outputs of residual blocks 1 and 5. With ``antialias=False`` the downsampling is a stride-2
conv and with ``antialias_up=False`` the upsampling a stride-2 transposed conv (the official
``--no_antialias`` / ``--no_antialias_up``; 3 modules each, so the indices shift as in the official
code). The parameters are those of the CycleGAN generator of the same size: the blur filters have
none and the 3x3 conv replacing each transposed conv has as many weights (resnet_9blocks, ngf 64,
InstanceNorm: 11,378,179). :meth:`AntialiasResnetGenerator.features` runs the net up to the last
requested layer and returns those layers' outputs (the official ``forward(x, layers, encode_only=True)``);
:meth:`AntialiasResnetGenerator.layer_channels` gives their channel counts without running anything.

:class:`AntialiasNLayerDiscriminator`: the PatchGAN with every stride-2 4x4 conv replaced by a
stride-1 4x4 conv followed (after its norm and LeakyReLU) by ``BlurDownsample`` (``basic``, ndf 64,
InstanceNorm: 2,764,737 parameters, as the CycleGAN PatchGAN).

Convs have a bias exactly when the norm is not BatchNorm (:func:`lit_i2i.nets.blocks.conv_bias`; the
official rule for instance/batch). Initialise with :func:`lit_i2i.nets.init.init_weights` (CUT's
default: ``xavier`` with gain 0.02).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ResnetBlock, conv_bias, norm_layer


def binomial_filter(size: int) -> torch.Tensor:
    """The normalised 2-D binomial filter of ``size`` (1 to 7 taps): outer product of a row of
    Pascal's triangle with itself, divided by its sum (the official ``get_filter``)."""
    if not 1 <= size <= 7:
        raise ValueError(f"blur filter size must be 1..7, got {size}")
    row = torch.tensor([float(math.comb(size - 1, k)) for k in range(size)])
    f = row[:, None] * row[None, :]
    return f / f.sum()


class BlurDownsample(nn.Module):
    """Anti-aliased stride-2 subsampling: reflection pad, depthwise blur, stride 2."""

    def __init__(self, channels: int, filt_size: int = 3, stride: int = 2):
        super().__init__()
        self.channels, self.stride, self.filt_size = channels, stride, filt_size
        lo, hi = (filt_size - 1) // 2, filt_size // 2  # the official pad sizes: floor / ceil of (k - 1) / 2
        self.pad = nn.ReflectionPad2d((lo, hi, lo, hi))
        self.register_buffer("filt", binomial_filter(filt_size)[None, None].repeat(channels, 1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.filt_size == 1:
            return x[:, :, ::self.stride, ::self.stride]
        return F.conv2d(self.pad(x), self.filt.to(x.dtype), stride=self.stride, groups=x.shape[1])


class BlurUpsample(nn.Module):
    """Anti-aliased x2 upsampling: replication pad 1, depthwise transposed blur at stride 2, crop."""

    def __init__(self, channels: int, filt_size: int = 4, stride: int = 2):
        super().__init__()
        self.channels, self.stride, self.filt_size = channels, stride, filt_size
        self.pad_size = (filt_size - 1) // 2
        self.pad = nn.ReplicationPad2d(1)
        self.register_buffer("filt", (binomial_filter(filt_size) * stride ** 2)[None, None].repeat(channels, 1, 1, 1),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv_transpose2d(self.pad(x), self.filt.to(x.dtype), stride=self.stride, padding=1 + self.pad_size,
                                 groups=x.shape[1])[:, :, 1:, 1:]
        return out if self.filt_size % 2 else out[:, :, :-1, :-1]


class AntialiasResnetGenerator(nn.Module):
    """CUT's ResNet generator (see the module docstring); tanh output in [-1, 1]."""

    def __init__(self, in_ch: int = 3, out_ch: int = 3, ngf: int = 64, norm: str = "instance",
                 use_dropout: bool = False, n_blocks: int = 9, n_down: int = 2, padding_type: str = "reflect",
                 antialias: bool = True, antialias_up: bool = True):
        super().__init__()
        if n_blocks < 0 or n_down < 0:
            raise ValueError(f"n_blocks and n_down must be >= 0, got {n_blocks}, {n_down}")
        self.in_ch, self.out_ch, self.ngf, self.n_blocks, self.n_down = in_ch, out_ch, ngf, n_blocks, n_down
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, ngf, 7, padding=0, bias=bias),
                                   make_norm(ngf), nn.ReLU(True)]
        channels = [in_ch, ngf, ngf, ngf]  # output channels of each module, by index
        for i in range(n_down):
            c = ngf * 2 ** i
            if antialias:
                layers += [nn.Conv2d(c, 2 * c, 3, stride=1, padding=1, bias=bias), make_norm(2 * c), nn.ReLU(True),
                           BlurDownsample(2 * c)]
                channels += [2 * c] * 4
            else:
                layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=bias), make_norm(2 * c), nn.ReLU(True)]
                channels += [2 * c] * 3
        dim = ngf * 2 ** n_down
        for _ in range(n_blocks):
            layers.append(ResnetBlock(dim, padding_type=padding_type, norm=norm, use_dropout=use_dropout, use_bias=bias))
            channels.append(dim)
        for i in range(n_down):
            c = ngf * 2 ** (n_down - i)
            if antialias_up:
                layers += [BlurUpsample(c), nn.Conv2d(c, c // 2, 3, stride=1, padding=1, bias=bias), make_norm(c // 2),
                           nn.ReLU(True)]
                channels += [c, c // 2, c // 2, c // 2]
            else:
                layers += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                           make_norm(c // 2), nn.ReLU(True)]
                channels += [c // 2] * 3
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7, padding=0), nn.Tanh()]
        channels += [ngf, out_ch, out_ch]
        self.model = nn.Sequential(*layers)
        self._channels = channels

    def layer_channels(self, layers: Sequence[int]) -> list[int]:
        """Channel counts of the outputs of modules ``layers`` (indices into ``self.model``)."""
        n = len(self._channels)
        bad = [i for i in layers if not 0 <= i < n]
        if bad:
            raise ValueError(f"layer indices {bad} are outside the generator's 0..{n - 1}")
        return [self._channels[i] for i in layers]

    def _check(self, x: torch.Tensor) -> None:
        f = 2 ** self.n_down
        if x.shape[-2] % f or x.shape[-1] % f:
            raise ValueError(f"AntialiasResnetGenerator with n_down={self.n_down} needs height and width divisible by "
                             f"{f}, got {tuple(x.shape[-2:])}")

    def features(self, x: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
        """Outputs of modules ``layers`` (ascending indices), stopping after the last one."""
        self._check(x)
        self.layer_channels(layers)
        wanted, last, feats = set(layers), max(layers), []
        for i, layer in enumerate(self.model):
            x = layer(x)
            if i in wanted:
                feats.append(x)
            if i == last:
                break
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self.model(x)


class AntialiasNLayerDiscriminator(nn.Module):
    """CUT's PatchGAN (see the module docstring): raw logits (N, 1, h, w)."""

    def __init__(self, in_ch: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance",
                 antialias: bool = True):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.in_ch, self.ndf, self.n_layers = in_ch, ndf, n_layers
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        if antialias:
            seq: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, stride=1, padding=1), nn.LeakyReLU(0.2, True),
                                    BlurDownsample(ndf)]
        else:
            seq = [nn.Conv2d(in_ch, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            if antialias:
                seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=bias), make_norm(ndf * mult),
                        nn.LeakyReLU(0.2, True), BlurDownsample(ndf * mult)]
            else:
                seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=bias), make_norm(ndf * mult),
                        nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=bias), make_norm(ndf * mult),
                nn.LeakyReLU(0.2, True), nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
