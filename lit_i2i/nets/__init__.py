"""Network building blocks and named reference architectures.

Follows ``models/networks.py`` of junyanz/pytorch-CycleGAN-and-pix2pix: ``define_G`` / ``define_D``
build the named generators (``resnet_9blocks``, ``resnet_6blocks``, ``resnet``, ``unet_256``,
``unet_128``, ``unet_32``, ...) and discriminators (``basic``, ``n_layers``, ``pixel``) with the
official layer layouts and parameter counts; ``init_weights`` and ``norm_layer`` are the official
``init_weights`` and ``get_norm_layer``. DiscoGAN's encoder-decoder generator and feature-returning
discriminator (``discogan.py``) are built directly, not by name: their discriminator's extra output
(the features) does not fit ``define_D``'s contract. See each submodule's docstring for the details and the few
departures.
"""

from .blocks import ResnetBlock, conv_bias, count_params, norm_layer, receptive_field
from .discogan import DiscoDiscriminator, DiscoGenerator, discogan_depth
from .init import init_weights
from .patchgan import NLayerDiscriminator, PixelDiscriminator, patchgan_receptive_field
from .registry import D_NAMES, G_NAMES, define_D, define_G
from .resnet import ResnetGenerator
from .unet import UnetGenerator, UnetSkipConnectionBlock

__all__ = [
    "D_NAMES",
    "DiscoDiscriminator",
    "DiscoGenerator",
    "G_NAMES",
    "NLayerDiscriminator",
    "PixelDiscriminator",
    "ResnetBlock",
    "ResnetGenerator",
    "UnetGenerator",
    "UnetSkipConnectionBlock",
    "conv_bias",
    "count_params",
    "define_D",
    "define_G",
    "discogan_depth",
    "init_weights",
    "norm_layer",
    "patchgan_receptive_field",
    "receptive_field",
]
