"""Named architectures: ``define_G`` / ``define_D``, following the functions of the same names in
``models/networks.py`` of junyanz/pytorch-CycleGAN-and-pix2pix (minus the GPU / DataParallel part,
which Lightning owns).

Generators (``define_G``), all ending in tanh:

==================== =============================================================================
name                 network
==================== =============================================================================
``resnet_9blocks``   ResnetGenerator, 9 blocks, 2 downsamplings (CycleGAN default, 256x256)
``resnet_6blocks``   ResnetGenerator, 6 blocks, 2 downsamplings (128x128)
``resnet_<k>blocks`` ResnetGenerator with k blocks (not in the official code)
``resnet``           ResnetGenerator with ``n_blocks`` (default 6) and ``n_down`` given; for small
                     CPU runs, e.g. ``ngf=32, n_blocks=3, n_down=2`` on 32x32 images
``unet_256``         UnetGenerator, 8 downsamplings (pix2pix default)
``unet_128``         UnetGenerator, 7 downsamplings
``unet_<size>``      UnetGenerator with log2(size) downsamplings, size a power of 2 >= 32
                     (``unet_32``: 5, for the built-in 32x32 digits; not in the official code)
==================== =============================================================================

As in the official code the trailing number of ``unet_*`` is the image size the net brings to 1x1,
not the number of downsamplings. ``n_down`` applies to the ResNet generators only; ``n_blocks``
may be given with ``resnet_<k>blocks`` only if it equals k, and not at all with ``unet_*``.

Discriminators (``define_D``), all returning raw logits ``(N, 1, h, w)``: ``basic`` (PatchGAN,
n_layers 3, 70x70 patches), ``n_layers`` (PatchGAN with ``n_layers``), ``pixel`` (1x1 PixelGAN).

Every net is initialised with :func:`lit_i2i.nets.init.init_weights` (``init_type``,
``init_gain``). Unknown names raise ``ValueError`` listing the valid ones.
"""

from __future__ import annotations

import re

from torch import nn

from .init import init_weights
from .patchgan import NLayerDiscriminator, PixelDiscriminator
from .resnet import ResnetGenerator
from .unet import UnetGenerator

G_NAMES = ("resnet_9blocks", "resnet_6blocks", "resnet_<k>blocks", "resnet", "unet_256", "unet_128", "unet_32", "unet_<size>")
D_NAMES = ("basic", "n_layers", "pixel")

_RESNET_RE = re.compile(r"^resnet_(\d+)blocks$")
_UNET_RE = re.compile(r"^unet_(\d+)$")


def _unknown_g(name: str) -> ValueError:
    return ValueError(
        f"unknown generator {name!r}; valid names: {', '.join(G_NAMES)} "
        "(size a power of 2 >= 32)"
    )


def define_G(
    name: str,
    in_ch: int = 3,
    out_ch: int = 3,
    ngf: int = 64,
    norm: str = "instance",
    use_dropout: bool = False,
    init_type: str = "normal",
    init_gain: float = 0.02,
    n_blocks: int | None = None,
    n_down: int = 2,
    padding_type: str = "reflect",
) -> nn.Module:
    """Build and initialise the named generator (see the module docstring for the names)."""
    net: nn.Module
    m = _RESNET_RE.match(name)
    if m or name == "resnet":
        k = int(m.group(1)) if m else None
        if k is not None and n_blocks is not None and n_blocks != k:
            raise ValueError(f"generator {name!r} has {k} blocks but n_blocks={n_blocks} was given")
        blocks = k if k is not None else (6 if n_blocks is None else n_blocks)
        net = ResnetGenerator(
            in_ch, out_ch, ngf, norm=norm, use_dropout=use_dropout, n_blocks=blocks, n_down=n_down,
            padding_type=padding_type,
        )
    elif (m := _UNET_RE.match(name)) is not None:
        size = int(m.group(1))
        if size < 32 or size & (size - 1):
            raise _unknown_g(name)
        if n_blocks is not None:
            raise ValueError(f"n_blocks applies to ResNet generators only, not {name!r}")
        net = UnetGenerator(in_ch, out_ch, size.bit_length() - 1, ngf, norm=norm, use_dropout=use_dropout)
    else:
        raise _unknown_g(name)
    return init_weights(net, init_type, init_gain)


def define_D(
    name: str,
    in_ch: int = 3,
    ndf: int = 64,
    n_layers: int = 3,
    norm: str = "instance",
    init_type: str = "normal",
    init_gain: float = 0.02,
) -> nn.Module:
    """Build and initialise the named discriminator: ``basic``, ``n_layers`` or ``pixel``.

    ``basic`` ignores ``n_layers`` (always 3), as the official code.
    """
    net: nn.Module
    if name == "basic":
        net = NLayerDiscriminator(in_ch, ndf, n_layers=3, norm=norm)
    elif name == "n_layers":
        net = NLayerDiscriminator(in_ch, ndf, n_layers=n_layers, norm=norm)
    elif name == "pixel":
        net = PixelDiscriminator(in_ch, ndf, norm=norm)
    else:
        raise ValueError(f"unknown discriminator {name!r}; valid names: {', '.join(D_NAMES)}")
    return init_weights(net, init_type, init_gain)
