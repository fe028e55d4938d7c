"""XGAN's networks (Royer et al. 2017): two encoders with shared high-level layers, two decoders with
shared low-level layers, the domain classifier on the embedding and the image discriminator.

The layer plan is the paper's as the reimplementation IAmigos/avatar-image-generator builds it (the
paper released no code), generalised to any square size that is a power of two:

- encoder ``e_X = shared ∘ front_X``: ``len(enc_channels)`` 3x3 stride-2 convs, each followed by ReLU
  and then BatchNorm (the reimplementation's order); the last ``n_shared_enc`` convs, a fully
  connected layer to ``emb_dim`` (ReLU, BatchNorm, dropout) and a second fully connected layer to
  ``emb_dim`` (linear: the embedding) are shared. 64x64 with (32, 64, 128, 256): 2 per-domain
  convs (32x32, 16x16), 2 shared (8x8, 4x4), FC 4096 -> 1024, FC 1024 -> 1024.
- decoder ``d_X = back_X ∘ shared``: the embedding as a 1x1 map, a 4x4 transposed conv to a 4x4 map
  of ``dec_channels[0]``, then 4x4 stride-2 transposed convs through ``dec_channels`` (ReLU, then
  BatchNorm) and one to the image with tanh; the first ``n_shared_dec`` transposed convs are shared.
  64x64 with (512, 256, 128, 64): shared 1x1 -> 4x4 (512), 8x8 (256); per domain 16x16 (128),
  32x32 (64), 64x64 (3).

``sharing`` (the paper's appendix compares them):

==============  ==========================================================================================
``partial``     the paper's model: the encoders' last layers and the decoders' first layers are one module
                object registered under both domains (``enc_A.shared is enc_B.shared``,
                ``dec_A.shared is dec_B.shared``: the same tensors, as ``lit_i2i.nets.vae``)
``none``        the same layout, every layer per domain (independently initialised copies)
``encoder``     one encoder for both domains (``enc_A is enc_B``); the decoders as ``partial``
==============  ==========================================================================================

The classes that hold the parts are :class:`lit_i2i.nets.vae.Encoder` / ``Decoder`` (``.front`` /
``.shared``, ``.shared`` / ``.back``), reused from UNIT.

Departures from the reimplementation: its per-domain transposed convs are 2x2 stride 2; here every
stride-2 transposed conv is 4x4 (padding 1), as the shared ones: the same sizes, overlapping kernels.
Its last fully connected layer is not documented as linear; here the embedding is the linear output
of the second FC layer (no ReLU/BatchNorm after it), so the domain classifier and the semantic
distance see an unclipped code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .blocks import norm_layer
from .vae import Decoder, Encoder

SHARING = ("partial", "none", "encoder")


def _norm1d(norm: str, n: int) -> nn.Module:
    return nn.BatchNorm1d(n) if norm == "batch" else nn.Identity()


@dataclass
class XGANSpec:
    """Layer plan of XGAN's encoders and decoders (see the module docstring)."""

    image_size: int = 64
    in_ch: int = 3
    enc_channels: tuple[int, ...] = (32, 64, 128, 256)
    n_shared_enc: int = 2
    emb_dim: int = 1024
    dec_channels: tuple[int, ...] = (512, 256, 128, 64)
    n_shared_dec: int = 2
    norm: str = "batch"
    dropout: float = 0.5

    def __post_init__(self):
        self.enc_channels, self.dec_channels = tuple(self.enc_channels), tuple(self.dec_channels)
        norm_layer(self.norm)  # validates
        if self.norm == "instance":
            raise ValueError("XGAN's nets take norm 'batch' or 'none' (the embedding is a vector: no instance norm)")
        s = self.image_size
        if s < 8 or s & (s - 1):
            raise ValueError(f"image_size must be a power of two >= 8, got {s}")
        if s % 2 ** len(self.enc_channels):
            raise ValueError(f"{len(self.enc_channels)} stride-2 encoder convs do not divide image_size {s}")
        if 4 * 2 ** len(self.dec_channels) != s:
            n = int(math.log2(s // 4))
            raise ValueError(f"image_size {s} needs {n} decoder widths (a 4x4 start doubled {n} times), "
                             f"got {len(self.dec_channels)}: {list(self.dec_channels)}")
        if not 0 <= self.n_shared_enc <= len(self.enc_channels):
            raise ValueError(f"n_shared_enc must be in 0..{len(self.enc_channels)}, got {self.n_shared_enc}")
        if not 1 <= self.n_shared_dec <= len(self.dec_channels):
            raise ValueError(f"n_shared_dec must be in 1..{len(self.dec_channels)}, got {self.n_shared_dec}")

    @property
    def final_size(self) -> int:
        return self.image_size // 2 ** len(self.enc_channels)

    def _bn(self, c: int) -> list[nn.Module]:
        return [norm_layer(self.norm)(c)]

    def _conv(self, i: int) -> list[nn.Module]:
        c_in = self.in_ch if i == 0 else self.enc_channels[i - 1]
        c = self.enc_channels[i]
        return [nn.Conv2d(c_in, c, 3, 2, 1), nn.ReLU(True), *self._bn(c)]

    def _deconv(self, i: int, out_ch: int) -> list[nn.Module]:
        """Decoder layer i: i = 0 maps the 1x1 embedding to 4x4; the last maps to the image (tanh)."""
        n = len(self.dec_channels)
        if i == n:
            return [nn.ConvTranspose2d(self.dec_channels[-1], out_ch, 4, 2, 1), nn.Tanh()]
        if i == 0:
            return [nn.ConvTranspose2d(self.emb_dim, self.dec_channels[0], 4, 1, 0), nn.ReLU(True),
                    *self._bn(self.dec_channels[0])]
        c_in, c = self.dec_channels[i - 1], self.dec_channels[i]
        return [nn.ConvTranspose2d(c_in, c, 4, 2, 1), nn.ReLU(True), *self._bn(c)]

    def front(self) -> nn.Sequential:
        n = len(self.enc_channels) - self.n_shared_enc
        return nn.Sequential(*[m for i in range(n) for m in self._conv(i)])

    def shared_encoder(self) -> nn.Sequential:
        n = len(self.enc_channels)
        layers = [m for i in range(n - self.n_shared_enc, n) for m in self._conv(i)]
        flat = self.enc_channels[-1] * self.final_size ** 2
        layers += [nn.Flatten(), nn.Linear(flat, self.emb_dim), nn.ReLU(True), _norm1d(self.norm, self.emb_dim)]
        if self.dropout:
            layers.append(nn.Dropout(self.dropout))
        layers.append(nn.Linear(self.emb_dim, self.emb_dim))
        return nn.Sequential(*layers)

    def shared_decoder(self) -> nn.Sequential:
        layers: list[nn.Module] = [nn.Unflatten(1, (self.emb_dim, 1, 1))]
        layers += [m for i in range(self.n_shared_dec) for m in self._deconv(i, -1)]
        return nn.Sequential(*layers)

    def back(self, out_ch: int) -> nn.Sequential:
        return nn.Sequential(*[m for i in range(self.n_shared_dec, len(self.dec_channels) + 1)
                               for m in self._deconv(i, out_ch)])


def xgan_autoencoders(spec: XGANSpec, a_ch: int = 3, b_ch: int = 3, sharing: str = "partial"
                      ) -> tuple[Encoder, Decoder, Encoder, Decoder]:
    """``(enc_A, dec_A, enc_B, dec_B)`` with the layer sharing ``sharing`` (module docstring)."""
    if sharing not in SHARING:
        raise ValueError(f"sharing must be one of {', '.join(SHARING)}, got {sharing!r}")
    if sharing == "encoder" and a_ch != b_ch:
        raise ValueError("sharing 'encoder' (one encoder for both domains) needs a_ch == b_ch")

    def spec_for(ch):
        return XGANSpec(**{**spec.__dict__, "in_ch": ch})

    sa, sb = spec_for(a_ch), spec_for(b_ch)
    enc_s, dec_s = spec.shared_encoder(), spec.shared_decoder()
    if sharing == "none":
        enc_A, enc_B = Encoder(sa.front(), enc_s), Encoder(sb.front(), spec.shared_encoder())
        dec_A, dec_B = Decoder(dec_s, sa.back(a_ch)), Decoder(spec.shared_decoder(), sb.back(b_ch))
        return enc_A, dec_A, enc_B, dec_B
    if sharing == "encoder":
        enc_A = enc_B = Encoder(sa.front(), enc_s)
    else:
        enc_A, enc_B = Encoder(sa.front(), enc_s), Encoder(sb.front(), enc_s)
    return enc_A, Decoder(dec_s, sa.back(a_ch)), enc_B, Decoder(dec_s, sb.back(b_ch))


def _codes(z: torch.Tensor) -> torch.Tensor:
    """``z`` if it is a batch of code vectors (N, D); images are refused (the CLI's size probe, which
    runs every top-level net on images, then leaves these nets alone)."""
    if z.ndim != 2:
        raise ValueError(f"expected a batch of codes (N, D), got shape {tuple(z.shape)}")
    return z


class CodeLinear(nn.Linear):
    """A linear map of code vectors (N, D) only (XGAN's teacher projection P)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return super().forward(_codes(z))


class DomainClassifier(nn.Module):
    """c_dann: an MLP on the embedding (Linear, ReLU, dropout per hidden layer) to ``n_classes``
    logits (1: the binary domain logit). The reimplementation: 1024 -> 512 -> 256 -> 128 -> 64 -> 32
    -> 16 -> 1, dropout 0.5. Put a gradient-reversal layer in front of it (the method does)."""

    def __init__(self, emb_dim: int = 1024, hidden: tuple[int, ...] = (512, 256, 128, 64, 32, 16),
                 n_classes: int = 1, dropout: float = 0.5):
        super().__init__()
        layers: list[nn.Module] = []
        c = emb_dim
        for h in hidden:
            layers += [nn.Linear(c, h), nn.ReLU(True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            c = h
        layers.append(nn.Linear(c, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(_codes(z))


class ImageDiscriminator(nn.Module):
    """The reimplementation's image discriminator: 3x3 stride-2 convs (16, 32, 32, 32), LeakyReLU 0.2
    (no norm), then a fully connected layer to one logit (the sigmoid is in the BCE loss)."""

    def __init__(self, in_ch: int = 3, image_size: int = 64, channels: tuple[int, ...] = (16, 32, 32, 32)):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_ch
        for w in channels:
            layers += [nn.Conv2d(c, w, 3, 2, 1), nn.LeakyReLU(0.2, True)]
            c = w
        size = image_size // 2 ** len(channels)
        if size < 1:
            raise ValueError(f"{len(channels)} stride-2 convs are too many for {image_size}x{image_size} images")
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c * size * size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))


def fixed_encoder(spec: str) -> nn.Module:
    """A pretrained embedding network, frozen and in eval mode: XGAN's teacher, DTN's f.

    ``spec``: a shipped or cached digit classifier by name (``street-digits``, ``digits``,
    ``colored-digits``, ``svhn``, ``mnist``, ...: :func:`lit_i2i.metrics.classifier.load_digit_classifier`;
    its ``features`` are the 64-d penultimate layer), or ``package.module:factory``, a callable
    returning a module with ``features(x)`` (x in [-1, 1], NCHW) and ``num_features`` (e.g. a face
    recognition network for the face experiments; a ``head`` is needed for DTN's fine-tuning
    cross-entropy only).
    """
    from lit_i2i.errors import UserError

    if ":" in spec:
        import importlib

        mod, _, name = spec.partition(":")
        try:
            net = getattr(importlib.import_module(mod), name)()
        except (ImportError, AttributeError) as e:
            raise UserError(f"cannot load the embedding network {spec!r}: {e}") from None
        if not hasattr(net, "features") or not hasattr(net, "num_features"):
            raise UserError(f"the embedding network {spec!r} needs a features(x) method and a num_features attribute")
        return net.eval().requires_grad_(False)
    from lit_i2i.metrics.classifier import load_digit_classifier

    return load_digit_classifier(spec).requires_grad_(False)
