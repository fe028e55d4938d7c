"""U-Net generator, following ``UnetGenerator`` and ``UnetSkipConnectionBlock`` in
``models/networks.py`` of junyanz/pytorch-CycleGAN-and-pix2pix.

The net is built recursively from the innermost block outwards::

    X ----------------------- identity ---------------------- X
      |-- downsampling -- |submodule| -- upsampling --|          (concatenated on channels)

- Downsampling: LeakyReLU(0.2), 4x4 conv stride 2 padding 1, norm. The outermost block has only
  the conv; the innermost has no norm after its conv.
- Upsampling: ReLU, 4x4 ConvTranspose stride 2 padding 1, norm. The outermost block ends with
  Tanh instead of a norm and its transposed conv always has a bias; the innermost block's
  transposed conv takes ``inner_nc`` channels (no skip below it), the others ``2 * inner_nc``.
- Widths: ngf, 2ngf, 4ngf, then 8ngf for every remaining level. The ``num_downs - 5`` intermediate
  8ngf blocks get Dropout(0.5) after their up-norm when ``use_dropout`` (pix2pix's noise source). So
  with ``num_downs == 5`` (``unet_32``) ``use_dropout`` has no effect, as in the official code; a
  ``UserWarning`` says so.
- Convs have a bias exactly when the norm is not BatchNorm (:func:`lit_i2i.nets.blocks.conv_bias`).
- The down-path LeakyReLU is in-place, as in the official code, so the skip connection of every
  non-outermost block carries the LeakyReLU'd activation. Kept on purpose: it is what the
  reference networks compute.

``num_downs`` downsamplings take a 2**num_downs image to 1x1 at the bottleneck: ``unet_256`` has 8,
``unet_128`` 7, ``unet_32`` 5 (minimum). Height and width must be divisible by ``2**num_downs``;
other sizes raise ``ValueError``.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from .blocks import conv_bias, norm_layer


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: ``cat([x, up(submodule(down(x)))])`` (outermost: no concatenation)."""

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "batch",
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        make_norm = norm_layer(norm)
        use_bias = conv_bias(norm)
        if input_nc is None:
            input_nc = outer_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        downrelu = nn.LeakyReLU(0.2, True)
        uprelu = nn.ReLU(True)

        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, uprelu, upconv, make_norm(outer_nc)]
        else:
            upconv = nn.ConvTranspose2d(
                inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias
            )
            model = [downrelu, downconv, make_norm(inner_nc), submodule, uprelu, upconv, make_norm(outer_nc)]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        if not innermost and submodule is None:
            raise ValueError("a non-innermost UnetSkipConnectionBlock needs a submodule")
        self.model = nn.Sequential(*model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """U-Net with ``num_downs`` stride-2 levels and a tanh output in [-1, 1]."""

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"UnetGenerator needs num_downs >= 5, got {num_downs}")
        if use_dropout and num_downs == 5:
            warnings.warn(
                "UnetGenerator with num_downs=5 has no intermediate 8*ngf blocks, so use_dropout has "
                "no effect (as in the official code)",
                UserWarning,
                stacklevel=2,
            )
        self.in_ch, self.out_ch, self.ngf, self.num_downs = in_ch, out_ch, ngf, num_downs
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, use_dropout=use_dropout)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(
            out_ch, ngf, input_nc=in_ch, submodule=block, outermost=True, norm=norm
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = 2**self.num_downs
        if x.shape[-2] % f or x.shape[-1] % f:
            raise ValueError(
                f"UnetGenerator with {self.num_downs} downsamplings needs height and width divisible "
                f"by {f}, got {tuple(x.shape[-2:])}"
            )
        return self.model(x)
