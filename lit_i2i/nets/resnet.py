"""ResNet generator, following ``ResnetGenerator`` in ``models/networks.py`` of
junyanz/pytorch-CycleGAN-and-pix2pix (itself after Johnson et al.'s fast-neural-style network).

Layout (``n_down`` = 2 in the official code; configurable here for small images)::

    ReflectionPad(3), 7x7 conv in_ch -> ngf, norm, ReLU
    n_down x [3x3 conv stride 2 padding 1, channels x2, norm, ReLU]
    n_blocks x ResnetBlock(ngf * 2**n_down)
    n_down x [3x3 ConvTranspose stride 2 padding 1 output_padding 1, channels /2, norm, ReLU]
    ReflectionPad(3), 7x7 conv ngf -> out_ch (with bias), Tanh

Every conv but the last has a bias exactly when its norm is not BatchNorm (see
:func:`lit_i2i.nets.blocks.conv_bias`). Named configurations: ``resnet_9blocks`` (CycleGAN default,
256x256) and ``resnet_6blocks`` (128x128), both with ``n_down=2``. Height and width must be
divisible by ``2**n_down`` so the output has the input's size; other sizes raise ``ValueError``.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ResnetBlock, conv_bias, norm_layer


class ResnetGenerator(nn.Module):
    """Encoder / residual blocks / decoder generator with a tanh output in [-1, 1]."""

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 3,
        ngf: int = 64,
        norm: str = "instance",
        use_dropout: bool = False,
        n_blocks: int = 9,
        n_down: int = 2,
        padding_type: str = "reflect",
    ) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        if n_down < 0:
            raise ValueError(f"n_down must be >= 0, got {n_down}")
        self.in_ch, self.out_ch, self.ngf = in_ch, out_ch, ngf
        self.n_blocks, self.n_down = n_blocks, n_down
        make_norm = norm_layer(norm)
        use_bias = conv_bias(norm)

        model: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_ch, ngf, kernel_size=7, padding=0, bias=use_bias),
            make_norm(ngf),
            nn.ReLU(True),
        ]
        for i in range(n_down):
            c = ngf * 2**i
            model += [
                nn.Conv2d(c, c * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                make_norm(c * 2),
                nn.ReLU(True),
            ]
        dim = ngf * 2**n_down
        for _ in range(n_blocks):
            model.append(
                ResnetBlock(dim, padding_type=padding_type, norm=norm, use_dropout=use_dropout, use_bias=use_bias)
            )
        for i in range(n_down):
            c = ngf * 2 ** (n_down - i)
            model += [
                nn.ConvTranspose2d(
                    c, c // 2, kernel_size=3, stride=2, padding=1, output_padding=1, bias=use_bias
                ),
                make_norm(c // 2),
                nn.ReLU(True),
            ]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = 2**self.n_down
        if x.shape[-2] % f or x.shape[-1] % f:
            raise ValueError(
                f"ResnetGenerator with n_down={self.n_down} needs height and width divisible by {f}, "
                f"got {tuple(x.shape[-2:])}"
            )
        return self.model(x)
