"""The Wolf-lab content-transfer skeleton, shared by Press et al. (ICLR 2019), DIDD (ICCV 2019) and
MBU (ICLR 2020): one implementation of their encoders, decoders and latent discriminator.

Follows ``models.py`` of oripress/ContentDisentanglement (d3de059), ``models/models.py`` of
sagiebenaim/DomainIntersectionDifference (13a492d) and ``mask_models.py`` of
rmokady/mbu-content-tansfer (df703c6). Every layer of those files is a 4x4 stride-2 (transposed)
convolution with padding 1, so each encoder layer halves the resolution and each decoder layer
doubles it; at 128x128 the six layers reach a 2x2 code. ``depth`` makes the same skeleton work at
other sizes (``image_size / 2**depth`` is the code's side: 4 layers take the 32x32 built-in digits
to 2x2).

Channel rules (they reproduce the official widths at ``depth=6, ngf=32, dim=512, sep=25``):

====================  =================================================  ==========================
net                   widths                                             official (128x128)
====================  =================================================  ==========================
common encoder        ngf*2^i (i < depth-2), then dim-sep, dim-n*sep     Press/MBU e1: 32 64 128 256
                      (n = number of separate encoders)                  487 487 (1948 dims); DIDD
                                                                         E^c: ... 256 487 462 (1848)
separate encoder      min(ngf*2^i, max_ch) (i < depth-1), then sep       Press/MBU e2 (max 128): 32
                                                                         64 128 128 128 25 (100
                                                                         dims); DIDD E^s (max 512):
                                                                         32 64 128 256 512 25
decoder               input dim, then min(ngf*2^(depth-2-i), dim)        512 -> 512 256 128 64 32
                      (i < depth-1), then out_ch                         -> 3 (tanh), or 4 (MBU D_B)
latent discriminator  Linear(code, hidden), LeakyReLU 0.2, Linear(., 1)  hidden 512
====================  =================================================  ==========================

Every encoder layer: conv, norm, LeakyReLU(0.2), the last one included. Every decoder layer but the
last: transposed conv, norm, ReLU (Press, DIDD) or LeakyReLU(0.2) (MBU); the last is a bare
transposed conv followed by tanh (:class:`ConvDecoder`) or by the mask/content split
(:class:`MaskDecoder`: sigmoid of channel 0 is the mask m, tanh of channels 1-3 the content c).
``norm`` is ``instance`` (non-affine InstanceNorm, Press and DIDD) or ``batch`` (BatchNorm, MBU), as
:func:`lit_i2i.nets.blocks.norm_layer`. Convolutions keep their bias under BatchNorm too, and the
default initialisation is PyTorch's, both as the official code (``init_type`` can change it).

Codes are kept spatial, (N, C, h, w). The official code flattens each code and concatenates the flat
vectors before ``view(-1, 512, h, w)``; since every channel is h*w contiguous values, that is exactly
the channel concatenation :func:`torch.cat` (dim=1) used here.

Departures from the official code:
  - The latent discriminator returns logits and the methods use BCE-with-logits (the official code
    ends in a sigmoid and uses ``BCELoss``): the same loss, numerically safer.
  - Spectral norm (DIDD) is ``torch.nn.utils.parametrizations.spectral_norm`` with one power
    iteration and ``dim=0`` for the transposed convolutions too, which is the reshape DIDD's own
    ``SpectralNorm`` uses (``w.view(w.shape[0], -1)``); PyTorch's version updates its power
    iteration only in training mode, DIDD's on every forward pass, evaluation included.
  - DIDD's separate encoders give their last two InstanceNorms swapped channel arguments; both are
    non-affine, so the correct counts are used here with no change in the function computed. DIDD's
    common encoder has no InstanceNorm after its second conv (the norm is appended to the already
    built first block): reproduced with ``no_norm=(1,)``, which the DIDD module passes by default.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from lit_i2i.nets.blocks import norm_layer
from lit_i2i.nets.init import init_weights


# ---------------------------------------------------------------------------------------- widths
def common_channels(depth: int = 6, ngf: int = 32, dim: int = 512, sep: int = 25, n_separate: int = 1) -> list[int]:
    """Output widths of the common encoder's layers (see the module table)."""
    _check(depth, ngf, dim, sep, n_separate)
    return [min(ngf * 2 ** i, dim) for i in range(depth - 2)] + [dim - sep, dim - n_separate * sep]


def separate_channels(depth: int = 6, ngf: int = 32, sep: int = 25, max_ch: int = 128) -> list[int]:
    """Output widths of a separate encoder's layers; ``max_ch`` caps its capacity (Press: 128)."""
    if depth < 2 or ngf < 1 or sep < 1 or max_ch < 1:
        raise ValueError(f"separate encoder needs depth >= 2 and positive widths, got depth={depth}, ngf={ngf}, "
                         f"sep={sep}, max_ch={max_ch}")
    return [min(ngf * 2 ** i, max_ch) for i in range(depth - 1)] + [sep]


def decoder_channels(depth: int = 6, ngf: int = 32, dim: int = 512) -> list[int]:
    """Output widths of the decoder's layers before its output layer (input width: ``dim``)."""
    return [min(ngf * 2 ** (depth - 2 - i), dim) for i in range(depth - 1)]


def _check(depth: int, ngf: int, dim: int, sep: int, n_separate: int) -> None:
    if depth < 3:
        raise ValueError(f"depth must be at least 3 (the common encoder ends in two code layers), got {depth}")
    if ngf < 1 or sep < 1:
        raise ValueError(f"ngf and sep must be positive, got ngf={ngf}, sep={sep}")
    if dim - n_separate * sep < 1:
        raise ValueError(f"dim={dim} leaves no common channels after {n_separate} x sep={sep}")


def code_size(image_size: int, depth: int) -> int:
    """Side of the code map: ``image_size / 2**depth`` (an error unless it divides exactly)."""
    side, rem = divmod(image_size, 2 ** depth)
    if rem or side < 1:
        raise ValueError(f"image_size {image_size} is not a multiple of 2**depth = {2 ** depth} (depth {depth}); "
                         "the encoders halve the resolution at every layer")
    return side


def _layer(layer: nn.Module, spectral: bool, init_type: str, init_gain: float) -> nn.Module:
    """Initialise ``layer`` (before any spectral norm, so the init reaches the raw weight), then wrap it."""
    init_weights(layer, init_type, init_gain)
    return _sn(layer, n_power_iterations=1, dim=0) if spectral else layer


# ---------------------------------------------------------------------------------------- nets
class ConvEncoder(nn.Module):
    """``len(channels)`` blocks of Conv(4, stride 2, pad 1) [spectral norm], norm, LeakyReLU(0.2).

    ``no_norm``: indices of blocks without their norm (DIDD's common encoder: block 1).
    Output: the code map (N, channels[-1], H / 2**depth, W / 2**depth).
    """

    def __init__(self, channels: Sequence[int], in_ch: int = 3, norm: str = "instance", spectral: bool = False,
                 no_norm: Sequence[int] = (), init_type: str = "none", init_gain: float = 0.02):
        super().__init__()
        make_norm = norm_layer(norm)
        layers: list[nn.Module] = []
        prev = in_ch
        for i, c in enumerate(channels):
            layers.append(_layer(nn.Conv2d(prev, c, 4, 2, 1), spectral, init_type, init_gain))
            if i not in no_norm:
                layers.append(init_weights(make_norm(c), init_type, init_gain))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            prev = c
        self.net = nn.Sequential(*layers)
        self.out_channels = prev
        self.depth = len(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """Transposed-conv decoder: ``in_ch`` -> ``channels`` (each ConvT(4, 2, 1) [SN], norm, act) ->
    a bare ConvT to ``out_ch`` (never spectral-normed, as DIDD), then tanh unless ``tanh=False``."""

    def __init__(self, in_ch: int, channels: Sequence[int], out_ch: int = 3, norm: str = "instance",
                 act: str = "relu", spectral: bool = False, tanh: bool = True, init_type: str = "none",
                 init_gain: float = 0.02):
        super().__init__()
        if act not in ("relu", "lrelu"):
            raise ValueError(f"decoder activation must be 'relu' or 'lrelu', got {act!r}")
        make_norm = norm_layer(norm)
        layers: list[nn.Module] = []
        prev = in_ch
        for c in channels:
            layers += [_layer(nn.ConvTranspose2d(prev, c, 4, 2, 1), spectral, init_type, init_gain),
                       init_weights(make_norm(c), init_type, init_gain),
                       nn.ReLU(inplace=True) if act == "relu" else nn.LeakyReLU(0.2, inplace=True)]
            prev = c
        layers.append(_layer(nn.ConvTranspose2d(prev, out_ch, 4, 2, 1), False, init_type, init_gain))
        if tanh:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        self.in_channels = in_ch

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return self.net(code)


class MaskDecoder(ConvDecoder):
    """MBU's D_B: the decoder trunk with 4 raw output channels; returns ``(mask, content)``.

    ``mask`` = sigmoid(channel 0), (N, 1, H, W) in [0, 1]; ``content`` = tanh(channels 1-3).
    The official code repeats the mask to 3 channels; broadcasting gives the same composite and losses.
    """

    def __init__(self, in_ch: int, channels: Sequence[int], out_ch: int = 3, norm: str = "batch",
                 act: str = "lrelu", spectral: bool = False, init_type: str = "none", init_gain: float = 0.02):
        super().__init__(in_ch, channels, out_ch + 1, norm, act, spectral, False, init_type, init_gain)

    def forward(self, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(code)
        return torch.sigmoid(out[:, :1]), torch.tanh(out[:, 1:])


def composite(mask: torch.Tensor, content: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """MBU's output ``m * c + (1 - m) * y``."""
    return mask * content + (1 - mask) * background


class LatentDiscriminator(nn.Module):
    """Linear(code -> hidden), LeakyReLU(0.2), Linear(hidden -> 1): one logit per code (N,).

    Takes the spatial code (N, C, h, w) or its flattening; ``in_features`` = C*h*w.
    """

    def __init__(self, in_features: int, hidden: int = 512, init_type: str = "none", init_gain: float = 0.02):
        super().__init__()
        self.in_features = in_features
        self.net = init_weights(nn.Sequential(nn.Linear(in_features, hidden), nn.LeakyReLU(0.2, inplace=True),
                                              nn.Linear(hidden, 1)), init_type, init_gain)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        flat = code.flatten(1)
        if flat.shape[1] != self.in_features:
            raise ValueError(f"latent discriminator expects codes of {self.in_features} values, got {flat.shape[1]} "
                             "(does the model's image_size match the data's crop size?)")
        return self.net(flat).view(-1)


class SeparateCodeBank(nn.Module):
    """A FIFO of recent separate codes (buffers, so checkpointed), used as the reference when a
    translation needs one and none is given (``translate(x, "AtoB")`` from metrics or inference):
    item i of a batch takes the code ``i mod filled`` of the bank, a fixed, deterministic choice."""

    def __init__(self, size: int, code_shape: Sequence[int]):
        super().__init__()
        self.size = size
        self.register_buffer("codes", torch.zeros(size, *code_shape))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def push(self, codes: torch.Tensor) -> None:
        if self.size == 0:
            return
        codes = codes.detach()[-self.size:].to(self.codes.dtype)
        n = codes.shape[0]
        idx = (self.ptr + torch.arange(n, device=codes.device)) % self.size
        self.codes[idx] = codes
        self.ptr.copy_((self.ptr + n) % self.size)
        self.filled.copy_(torch.clamp(self.filled + n, max=self.size))

    def sample(self, n: int) -> torch.Tensor:
        """``n`` codes (zeros while the bank is empty, i.e. before any training step)."""
        filled = int(self.filled)
        if filled == 0:
            return self.codes.new_zeros(n, *self.codes.shape[1:])
        return self.codes[torch.arange(n, device=self.codes.device) % filled]


def build_encoder(kind: str, depth: int = 6, ngf: int = 32, dim: int = 512, sep: int = 25, n_separate: int = 1,
                  max_ch: int = 128, norm: str = "instance", spectral: bool = False, no_norm: Sequence[int] = (),
                  init_type: str = "none", init_gain: float = 0.02) -> ConvEncoder:
    """``kind="common"`` or ``"separate"`` encoder with the widths of the module table."""
    if kind == "common":
        ch = common_channels(depth, ngf, dim, sep, n_separate)
    elif kind == "separate":
        ch = separate_channels(depth, ngf, sep, max_ch)
    else:
        raise ValueError(f"encoder kind must be 'common' or 'separate', got {kind!r}")
    return ConvEncoder(ch, 3, norm, spectral, no_norm, init_type, init_gain)


def build_decoder(depth: int = 6, ngf: int = 32, dim: int = 512, norm: str = "instance", act: str = "relu",
                  spectral: bool = False, mask: bool = False, init_type: str = "none",
                  init_gain: float = 0.02) -> ConvDecoder:
    """The plain decoder (tanh image) or, with ``mask=True``, MBU's mask decoder."""
    ch = decoder_channels(depth, ngf, dim)
    if mask:
        return MaskDecoder(dim, ch, 3, norm, act, spectral, init_type, init_gain)
    return ConvDecoder(dim, ch, 3, norm, act, spectral, True, init_type, init_gain)
