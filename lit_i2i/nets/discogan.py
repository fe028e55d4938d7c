"""DiscoGAN's encoder-decoder generator and feature-returning discriminator, following
``discogan/model.py`` of SKTBrain/DiscoGAN (``Generator(extra_layers=False)``, ``Discriminator``).

``DiscoGenerator`` (all kernels 4x4, stride 2, padding 1; ``n_down`` levels, 4 at 64x64)::

    encoder: conv in_ch -> ngf, LeakyReLU(0.2)                                 (no norm)
             conv ngf*2**(i-1) -> ngf*2**i, norm, LeakyReLU(0.2)     for i = 1 .. n_down-1
    decoder: convT ngf*2**i -> ngf*2**(i-1), norm, ReLU               for i = n_down-1 .. 1
             convT ngf -> out_ch, Tanh

At 64x64 the bottleneck is 4x4x512; there is no skip connection. ``DiscoDiscriminator``::

    conv in_ch -> ndf, stride 2, LeakyReLU(0.2)                                (no norm)
    conv ndf*2**(i-1) -> ndf*2**i, stride 2, norm, LeakyReLU(0.2)   for i = 1 .. n_layers-1
    conv -> 1, kernel 4, stride 1, padding 0                                   (1x1 at 64x64)

``forward`` returns the logit map; :meth:`DiscoDiscriminator.forward_features` returns it with the
activations after each normalised LeakyReLU (3 maps at 64x64: the official ``[relu2, relu3,
relu4]``), which DiscoGAN's feature-matching loss compares. Use :func:`discogan_depth` to get
``n_down`` / ``n_layers`` for an image size (log2(size) - 2: 4 at 64, 3 at 32), so that the
bottleneck and the discriminator's last input are 4x4 as in the paper's 64x64 setting.

Convs have a bias exactly when the norm is not BatchNorm (:func:`lit_i2i.nets.blocks.conv_bias`): with
the official ``norm="batch"`` no layer has one, as ``bias=False`` everywhere in the official code,
which gives 5,513,856 generator and 2,765,568 discriminator parameters at 64x64, ngf = ndf = 64.

Departures from the official code: Tanh output in [-1, 1] (the official generator ends in Sigmoid,
images in [0, 1]; the project's contract is [-1, 1]); the discriminator returns logits and the
sigmoid moves into the loss (BCE-with-logits: the same function, numerically safer); the widths are
parameters (ngf, ndf; the official code fixes 64) and the depth follows the image size (the
official code fixes 4 levels for its 64x64 images); ``extra_layers=True`` (an extra 4x4 conv to a
100-d code and back) is not built.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import conv_bias, norm_layer


def discogan_depth(image_size: int) -> int:
    """Stride-2 levels that bring ``image_size`` to 4x4 (the official 64x64 -> 4x4): log2(size) - 2."""
    if image_size < 16 or image_size & (image_size - 1):
        raise ValueError(f"DiscoGAN nets need an image size that is a power of 2 >= 16, got {image_size}")
    return image_size.bit_length() - 3


class DiscoGenerator(nn.Module):
    """Conv encoder -> deconv decoder, no skips; tanh output in [-1, 1]."""

    def __init__(self, in_ch: int = 3, out_ch: int = 3, ngf: int = 64, n_down: int = 4, norm: str = "batch"):
        super().__init__()
        if n_down < 2:
            raise ValueError(f"DiscoGenerator needs n_down >= 2, got {n_down}")
        self.in_ch, self.out_ch, self.ngf, self.n_down = in_ch, out_ch, ngf, n_down
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        layers: list[nn.Module] = [nn.Conv2d(in_ch, ngf, 4, 2, 1, bias=bias), nn.LeakyReLU(0.2, True)]
        for i in range(1, n_down):
            layers += [nn.Conv2d(ngf * 2 ** (i - 1), ngf * 2**i, 4, 2, 1, bias=bias), make_norm(ngf * 2**i),
                       nn.LeakyReLU(0.2, True)]
        for i in range(n_down - 1, 0, -1):
            layers += [nn.ConvTranspose2d(ngf * 2**i, ngf * 2 ** (i - 1), 4, 2, 1, bias=bias),
                       make_norm(ngf * 2 ** (i - 1)), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(ngf, out_ch, 4, 2, 1, bias=bias), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = 2**self.n_down
        if x.shape[-2] % f or x.shape[-1] % f:
            raise ValueError(f"DiscoGenerator with {self.n_down} levels needs height and width divisible by {f}, "
                             f"got {tuple(x.shape[-2:])}")
        return self.main(x)


class DiscoDiscriminator(nn.Module):
    """Strided-conv classifier; :meth:`forward_features` also returns its hidden activations."""

    def __init__(self, in_ch: int = 3, ndf: int = 64, n_layers: int = 4, norm: str = "batch"):
        super().__init__()
        if n_layers < 2:
            raise ValueError(f"DiscoDiscriminator needs n_layers >= 2, got {n_layers}")
        self.in_ch, self.ndf, self.n_layers = in_ch, ndf, n_layers
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        self.stem = nn.Sequential(nn.Conv2d(in_ch, ndf, 4, 2, 1, bias=bias), nn.LeakyReLU(0.2, True))
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(ndf * 2 ** (i - 1), ndf * 2**i, 4, 2, 1, bias=bias), make_norm(ndf * 2**i),
                          nn.LeakyReLU(0.2, True))
            for i in range(1, n_layers))
        self.head = nn.Conv2d(ndf * 2 ** (n_layers - 1), 1, 4, 1, 0, bias=bias)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(logits, [activation after each normalised block])."""
        feats = []
        h = self.stem(x)
        for block in self.blocks:
            h = block(h)
            feats.append(h)
        return self.head(h), feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]
