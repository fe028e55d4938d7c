"""PatchGAN and PixelGAN discriminators, following ``NLayerDiscriminator`` and
``PixelDiscriminator`` in ``models/networks.py`` of junyanz/pytorch-CycleGAN-and-pix2pix.

``NLayerDiscriminator`` (all kernels 4x4, padding 1, LeakyReLU 0.2)::

    conv in_ch -> ndf, stride 2 (bias, no norm), LeakyReLU
    for n in 1 .. n_layers-1: conv ndf*min(2**(n-1), 8) -> ndf*min(2**n, 8), stride 2, norm, LeakyReLU
    conv -> ndf*min(2**n_layers, 8), stride 1, norm, LeakyReLU
    conv -> 1, stride 1 (bias)

With ``n_layers=3`` (``netD basic``) each output logit sees a 70x70 input patch, and a 256x256 image
gives a 30x30 map. ``PixelDiscriminator`` (``netD pixel``, 1x1 PixelGAN): 1x1 convs in_ch -> ndf
(bias), LeakyReLU, ndf -> 2ndf, norm, LeakyReLU, 2ndf -> 1 (the last two convs follow the bias
rule below, as the official code).

Both return raw logits ``(N, 1, h, w)``: the official ``use_sigmoid`` option is left out; the GAN
losses take logits (BCE-with-logits for ``vanilla``, MSE for ``lsgan``) as the newer official
code does. Middle convs have a bias exactly when the norm is not BatchNorm
(:func:`lit_i2i.nets.blocks.conv_bias`).
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import conv_bias, norm_layer


def patchgan_receptive_field(n_layers: int) -> int:
    """Analytic receptive field (pixels) of :class:`NLayerDiscriminator` with ``n_layers``.

    n_layers stride-2 4x4 convs, then two stride-1 4x4 convs: 1 -> 4 -> 7 -> then x2 + 2 per
    stride-2 layer going back; 3 layers give 70, 1 gives 16, 5 gives 286.
    """
    rf = 1
    for stride in [1, 1] + [2] * n_layers:  # walk from the output back to the input
        rf = (rf - 1) * stride + 4
    return rf


class NLayerDiscriminator(nn.Module):
    """PatchGAN: a fully convolutional classifier of overlapping image patches."""

    def __init__(self, in_ch: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance") -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.in_ch, self.ndf, self.n_layers = in_ch, ndf, n_layers
        make_norm = norm_layer(norm)
        use_bias = conv_bias(norm)
        kw, padw = 4, 1
        seq: list[nn.Module] = [
            nn.Conv2d(in_ch, ndf, kernel_size=kw, stride=2, padding=padw),
            nn.LeakyReLU(0.2, True),
        ]
        nf_mult = 1
        for n in range(1, n_layers):
            nf_prev, nf_mult = nf_mult, min(2**n, 8)
            seq += [
                nn.Conv2d(ndf * nf_prev, ndf * nf_mult, kernel_size=kw, stride=2, padding=padw, bias=use_bias),
                make_norm(ndf * nf_mult),
                nn.LeakyReLU(0.2, True),
            ]
        nf_prev, nf_mult = nf_mult, min(2**n_layers, 8)
        seq += [
            nn.Conv2d(ndf * nf_prev, ndf * nf_mult, kernel_size=kw, stride=1, padding=padw, bias=use_bias),
            make_norm(ndf * nf_mult),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * nf_mult, 1, kernel_size=kw, stride=1, padding=padw),
        ]
        self.model = nn.Sequential(*seq)

    @property
    def receptive_field(self) -> int:
        return patchgan_receptive_field(self.n_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PixelGAN: classifies every pixel on its own."""

    def __init__(self, in_ch: int = 3, ndf: int = 64, norm: str = "instance") -> None:
        super().__init__()
        self.in_ch, self.ndf = in_ch, ndf
        make_norm = norm_layer(norm)
        use_bias = conv_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, ndf, kernel_size=1, stride=1, padding=0),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, kernel_size=1, stride=1, padding=0, bias=use_bias),
            make_norm(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, kernel_size=1, stride=1, padding=0, bias=use_bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
