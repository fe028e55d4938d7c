"""Fader networks' attribute-conditioned decoder, latent discriminator and patch discriminator,
following ``src/model.py`` of facebookresearch/FaderNetworks (cdd9e50: ``build_layers``,
``AutoEncoder``, ``LatentDiscriminator``, ``PatchDiscriminator``). The encoder is the Wolf-lab
content skeleton's :class:`lit_i2i.nets.content.ConvEncoder` (the same layers: 4x4 stride-2 convs
with bias, norm, LeakyReLU 0.2), built by :func:`fader_encoder` with Fader's widths and no norm on
its first layer.

Widths: ``ch[i] = min(init_fm * 2**i, max_fm)`` for the ``n_layers`` encoder layers (official
256x256: 32 64 128 256 512 512, a 512 x 4 x 4 code). ``n_attr`` = the number of categories summed
over the attributes (one binary attribute: 2, its one-hot [1 - a, a]).

:class:`FaderDecoder`: for i = n_layers - 1 .. 0 (the mirror of encoder layer i), the input is the
previous output, the attribute vector tiled over its h x w, and (for the ``n_skip`` layers after the
first) encoder output i; a bias-free 4x4 stride-2 transposed conv (``deconv_method`` ``convtranspose``;
or nearest upsampling + 3x3 conv, or a 3x3 conv to 4x the channels + pixel shuffle) to ``ch[i - 1]``
channels (``img_fm`` for i = 0), then norm, [dropout ``dec_dropout`` in the three deepest layers],
ReLU, except the last layer, which ends in tanh. Official 256x256, one binary attribute: encoder
6,985,568 + decoder 7,014,944 = 14,000,512 parameters.

:class:`FaderLatentDiscriminator`: encoder-like layers i = n_layers - n_skip .. log2(img_sz) - 1
(conv, norm, LeakyReLU, Dropout(``dropout``), down to 1 x 1), then Linear(ch, hid_dim), LeakyReLU
0.2, Linear(hid_dim, n_attr): logits per category. Official 256x256: 8,655,362 parameters (two conv
layers 4 -> 2 -> 1); 128x128 with 6 layers: 4,459,522.

:class:`FaderPatchDiscriminator`: conv(img_fm, init_fm, 4, 2, 1), LeakyReLU, then three conv-BN-LeakyReLU
layers doubling the width (strides 2, 2, 1), conv to 1 channel, sigmoid; the output is the mean of
the patch probabilities per image, (N,) in (0, 1) (695,137 parameters at init_fm 32). It is
trained with label smoothing (``smooth_label``) in :class:`lit_i2i.methods.fader.FaderNetworks`.

``norm`` is ``batch`` (BatchNorm with affine parameters and running statistics, the official default
``--instance_norm False``). The official ``--instance_norm True`` (InstanceNorm *with* affine
parameters) is not offered: the suite's ``instance`` norm has none. PyTorch's default
initialisation, as the official code (it calls no init).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from .blocks import norm_layer
from .content import ConvEncoder

DECONV_METHODS = ("convtranspose", "upsampling", "pixelshuffle")


def fader_widths(n_layers: int, init_fm: int = 32, max_fm: int = 512) -> list[int]:
    """Output widths of the encoder's layers: ``min(init_fm * 2**i, max_fm)``."""
    if init_fm > max_fm or n_layers < 1:
        raise ValueError(f"Fader widths need 1 <= n_layers and init_fm <= max_fm, got {n_layers}, {init_fm}, {max_fm}")
    return [min(init_fm * 2 ** i, max_fm) for i in range(n_layers)]


def _check_size(img_sz: int, n_layers: int) -> int:
    depth = int(round(math.log2(img_sz))) if img_sz > 0 else -1
    if img_sz < 2 or 2 ** depth != img_sz or n_layers > depth:
        raise ValueError(f"Fader networks need a power-of-2 image size with n_layers <= log2(size); got size {img_sz}, "
                         f"n_layers {n_layers}")
    return depth


def fader_encoder(img_sz: int = 256, n_layers: int = 6, init_fm: int = 32, max_fm: int = 512, img_fm: int = 3,
                  norm: str = "batch") -> ConvEncoder:
    """The official encoder as a :class:`ConvEncoder` (no norm on layer 0)."""
    _check_size(img_sz, n_layers)
    return ConvEncoder(fader_widths(n_layers, init_fm, max_fm), img_fm, norm, no_norm=(0,))


def encoder_outputs(encoder: ConvEncoder, x: torch.Tensor) -> list[torch.Tensor]:
    """[x, output of layer 0, ..., output of layer n-1] (the official ``AutoEncoder.encode``)."""
    outs = [x]
    h = x
    for module in encoder.net:
        h = module(h)
        if isinstance(module, nn.LeakyReLU):  # each layer ends in its LeakyReLU
            outs.append(h)
    return outs


class FaderDecoder(nn.Module):
    def __init__(self, n_layers: int = 6, init_fm: int = 32, max_fm: int = 512, img_fm: int = 3, n_attr: int = 2,
                 n_skip: int = 0, deconv_method: str = "convtranspose", norm: str = "batch", dec_dropout: float = 0.0):
        super().__init__()
        if not 0 <= n_skip <= n_layers - 1:
            raise ValueError(f"n_skip must be in 0..n_layers-1, got {n_skip}")
        if deconv_method not in DECONV_METHODS:
            raise ValueError(f"deconv_method must be one of {DECONV_METHODS}, got {deconv_method!r}")
        if not 0 <= dec_dropout < 1:
            raise ValueError(f"dec_dropout must be in [0, 1), got {dec_dropout}")
        self.n_layers, self.n_attr, self.n_skip = n_layers, n_attr, n_skip
        ch = fader_widths(n_layers, init_fm, max_fm)
        make_norm = norm_layer(norm)
        layers = []
        for i in reversed(range(n_layers)):
            n_out, n_in = ch[i], (img_fm if i == 0 else ch[i - 1])
            skip = n_layers - (n_skip + 1) <= i < n_layers - 1
            c_in = n_out + n_attr + (n_out if skip else 0)
            if deconv_method == "convtranspose":
                block: list[nn.Module] = [nn.ConvTranspose2d(c_in, n_in, 4, 2, 1, bias=False)]
            elif deconv_method == "upsampling":
                block = [nn.UpsamplingNearest2d(scale_factor=2), nn.Conv2d(c_in, n_in, 3, 1, 1)]
            else:
                block = [nn.Conv2d(c_in, n_in * 4, 3, 1, 1), nn.PixelShuffle(2)]
            if i > 0:
                block.append(make_norm(n_in))
                if dec_dropout > 0 and i >= n_layers - 3:
                    block.append(nn.Dropout(dec_dropout))
                block.append(nn.ReLU(inplace=True))
            else:
                block.append(nn.Tanh())
            layers.append(nn.Sequential(*block))
        self.layers = nn.ModuleList(layers)  # deepest first, as the official dec_layers

    def forward(self, enc_outputs: Sequence[torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        """Decode ``enc_outputs`` (:func:`encoder_outputs`) with attribute vectors ``y`` (N, n_attr)."""
        if len(enc_outputs) != self.n_layers + 1:
            raise ValueError(f"FaderDecoder expects {self.n_layers + 1} encoder outputs, got {len(enc_outputs)}")
        h = enc_outputs[-1]
        if y.shape != (h.shape[0], self.n_attr):
            raise ValueError(f"attribute vectors must be ({h.shape[0]}, {self.n_attr}), got {tuple(y.shape)}")
        y = y.to(h.dtype)[:, :, None, None]
        for i, layer in enumerate(self.layers):
            parts = [h, y.expand(-1, -1, h.shape[2], h.shape[3])]
            if 0 < i <= self.n_skip:
                parts.append(enc_outputs[-1 - i])
            h = layer(torch.cat(parts, 1))
        return h


class FaderLatentDiscriminator(nn.Module):
    def __init__(self, img_sz: int = 256, n_layers: int = 6, n_skip: int = 0, init_fm: int = 32, max_fm: int = 512,
                 hid_dim: int = 512, dropout: float = 0.3, n_attr: int = 2, norm: str = "batch"):
        super().__init__()
        n_dis = _check_size(img_sz, n_layers)
        ch = fader_widths(n_dis, init_fm, max_fm)
        start = n_layers - n_skip
        if start < 1:
            raise ValueError(f"n_skip {n_skip} leaves no encoder layer before the latent discriminator")
        make_norm = norm_layer(norm)
        layers: list[nn.Module] = []
        for i in range(start, n_dis):
            layers += [nn.Conv2d(ch[i - 1], ch[i], 4, 2, 1), make_norm(ch[i]), nn.LeakyReLU(0.2, inplace=True)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        self.conv_layers = nn.Sequential(*layers)
        self.in_shape = (ch[start - 1], img_sz // 2 ** start, img_sz // 2 ** start)
        self.proj_layers = nn.Sequential(nn.Linear(ch[-1], hid_dim), nn.LeakyReLU(0.2, inplace=True),
                                         nn.Linear(hid_dim, n_attr))

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        if tuple(code.shape[1:]) != self.in_shape:
            raise ValueError(f"latent discriminator expects codes of shape {self.in_shape}, got {tuple(code.shape[1:])}")
        return self.proj_layers(self.conv_layers(code).flatten(1))


class FaderPatchDiscriminator(nn.Module):
    def __init__(self, img_fm: int = 3, init_fm: int = 32, max_fm: int = 512, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(img_fm, init_fm, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        n_in, n_out = init_fm, min(2 * init_fm, max_fm)
        for n in range(n_layers):
            layers += [nn.Conv2d(n_in, n_out, 4, 1 if n == n_layers - 1 else 2, 1), nn.BatchNorm2d(n_out),
                       nn.LeakyReLU(0.2, inplace=True)]
            if n < n_layers - 1:
                n_in, n_out = n_out, min(2 * n_out, max_fm)
        layers += [nn.Conv2d(n_out, 1, 4, 1, 1), nn.Sigmoid()]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mean patch probability of "real" per image, (N,)."""
        return self.layers(x).flatten(1).mean(1)
