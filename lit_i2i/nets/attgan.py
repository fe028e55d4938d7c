"""AttGAN's and STGAN's networks: LynnHo/AttGAN-Tensorflow@f1231fc ``module.py`` (``UNetGenc``,
``UNetGdec``, ``ConvD``) and csmliu/STGAN@8a206ad ``models.py`` (``Genc``, ``Gstu`` / ``ConvGRUCell``,
``Gdec``, ``D``), ported from TF-slim layer for layer.

- :class:`AttEncoder`: ``n_layers`` 4x4 stride-2 convs (``dim`` doubling, capped at 1024), each BatchNorm
  and LeakyReLU(0.2); returns every layer's output (the U-Net skips). STGAN's ``multi_inputs`` (off
  by default) concatenates the bicubically resized image to the input of layers 1 .. multi_inputs-1.
- :class:`AttDecoder`: the attribute vector tiled and concatenated to the bottleneck; ``n_layers - 1``
  4x4 stride-2 transposed convs (capped at 1024, from ``dim * 2**(n_layers-1)`` down), each BatchNorm and
  ReLU, after the first ``shortcut_layers`` of them the encoder's (or the STUs') feature of that size
  concatenated, after the first ``inject_layers`` the attribute vector again; a last 4x4 stride-2
  transposed conv to the image (with bias), tanh. AttGAN: shortcut 1, inject 1; STGAN: 4 and 4.
  STGAN's ``one_more_conv`` (off by default) adds a transposed conv to ``dim // 4`` and a k x k output conv.
- :class:`SelectiveTransfer` (STGAN's ``Gstu``): a chain of selective transfer units
  (:class:`ConvGRUCell`) from the deepest skip up. Its state starts as the bottleneck with the
  (difference) attribute vector; each unit upsamples the state with a 4x4 stride-2 transposed conv
  (``state_``), computes reset and update gates (3x3 convs, sigmoid) from [skip, state_], the new
  state r * state_, the new information tanh(conv3x3([skip, new state])), and outputs
  (1 - u) * state_ + u * info, which replaces that skip; the state passed up is the new state (``stu``),
  the output (``gru``) or ``state_`` (``direct``), with the attribute vector concatenated for the
  first ``inject_layers`` units. Unit widths ``dim * 2**(n_layers-1-i)``. No normalisation by default
  (``norm``: ``bn`` / ``in`` as the official option).
- :class:`AttDiscriminator` (AttGAN's ``ConvD``, STGAN's ``D``): ``n_layers`` 4x4 stride-2 convs, each
  InstanceNorm (affine) and LeakyReLU(0.2); flattened; two heads, each fc(``fc_dim``) - LeakyReLU(0.2)
  - fc: one adversarial logit and ``n_atts`` attribute logits.

TF-slim semantics kept: 'SAME' padding (1 pixel per side for the 4x4 stride-2 layers on even sizes, 3x3
stride-1 convs padded 1); a conv followed by a normaliser has no bias, the others have one;
``slim.batch_norm(scale=True)`` = ``BatchNorm2d(eps=1e-3, momentum=1e-3)`` (decay 0.999, its moving averages
used at test time, as the official ``training=False`` sampling); ``slim.instance_norm`` =
``InstanceNorm2d(affine=True, eps=1e-6)``; weights ``xavier_initializer`` (Glorot uniform), biases zero,
norm scales one (:func:`tf_slim_init`); the flatten before the fully connected layers is in NHWC order
(H, W, C), as ``slim.flatten`` of a TF tensor, so TF weights map one to one.

Departures: STGAN's ``multi_inputs`` resizes with PyTorch's bicubic (half-pixel centres), TF1's
``resize_bicubic`` uses corner alignment off without half-pixel centres (only with ``multi_inputs > 1``,
off by default). The STU chain takes the deepest skips (``zs[-2 - i]``); the official indexes
``zs[stu_layers - 1 - i]``, the same layers for its only working setting (``stu_layers = enc_layers - 1``;
others fail there with a shape error), so fewer units are supported here as "the deepest ones".
Encoder and decoder have one depth ``n_layers`` (the official ``enc_layers``/``dec_layers`` default to 5 both).

Parameter counts at the defaults (128x128, the 13 official attributes): AttGAN G 43,459,203
(encoder 11,148,160 + decoder 32,311,043), D 44,718,990; STGAN G 74,998,771 (encoder 11,148,160 +
STUs 30,145,280 + decoder 33,705,331), D 44,718,990; ``tests/test_attgan_stgan.py`` computes them from
the official layer definitions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MAX_DIM = 1024
STU_NORMS = ("none", "bn", "in")
STU_STATES = ("stu", "gru", "direct")


def batch_norm(c: int) -> nn.BatchNorm2d:
    """``slim.batch_norm(scale=True)``: decay 0.999 (momentum 0.001), epsilon 0.001."""
    return nn.BatchNorm2d(c, eps=1e-3, momentum=1e-3)


def instance_norm(c: int) -> nn.InstanceNorm2d:
    """``slim.instance_norm``: center and scale, epsilon 1e-6, no running statistics."""
    return nn.InstanceNorm2d(c, affine=True, eps=1e-6, track_running_stats=False)


def tile_concat(z: torch.Tensor, *vectors: torch.Tensor) -> torch.Tensor:
    """``utils.tile_concat``: (N, K) vectors tiled to z's size and concatenated after z's channels."""
    h, w = z.shape[-2:]
    return torch.cat([z, *(v.to(z.dtype).view(*v.shape, 1, 1).expand(-1, -1, h, w) for v in vectors)], 1)


def tf_slim_init(module: nn.Module) -> nn.Module:
    """TF-slim's defaults: Glorot-uniform weights and zero biases for convs, transposed convs and fully
    connected layers; scale 1 and offset 0 for the normalisers (PyTorch's own norm init)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def encoder_channels(dim: int, n_layers: int) -> list[int]:
    return [min(dim * 2 ** i, MAX_DIM) for i in range(n_layers)]


class AttEncoder(nn.Module):
    def __init__(self, dim: int = 64, n_layers: int = 5, in_ch: int = 3, multi_inputs: int = 1):
        super().__init__()
        self.in_ch, self.multi_inputs = in_ch, multi_inputs
        self.channels = encoder_channels(dim, n_layers)
        layers, cin = [], in_ch
        for i, d in enumerate(self.channels):
            cin += in_ch if 0 < i < multi_inputs else 0
            layers.append(nn.Sequential(nn.Conv2d(cin, d, 4, 2, 1, bias=False), batch_norm(d), nn.LeakyReLU(0.2)))
            cin = d
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h, w = x.shape[-2:]
        z, zs = x, []
        for i, layer in enumerate(self.layers):
            if 0 < i < self.multi_inputs:
                small = F.interpolate(x, size=(h // 2 ** i, w // 2 ** i), mode="bicubic", align_corners=False)
                z = torch.cat([z, small], 1)
            z = layer(z)
            zs.append(z)
        return zs


class AttDecoder(nn.Module):
    """``dec(zs, v)``: the skips ``zs`` (shallow to deep; only the deepest ``shortcut_layers + 1`` are read)
    and the attribute vector ``v`` (N, n_atts) -> image in [-1, 1]."""

    def __init__(self, skip_channels: list[int], n_atts: int, dim: int = 64, n_layers: int = 5,
                 shortcut_layers: int = 1, inject_layers: int = 1, out_ch: int = 3, one_more_conv: int = 0):
        super().__init__()
        if one_more_conv not in (0, 1, 3):
            raise ValueError(f"one_more_conv must be 0, 1 or 3 (the official choices), got {one_more_conv}")
        self.shortcut = min(shortcut_layers, n_layers - 1)
        self.inject = min(inject_layers, n_layers - 1)
        blocks, cin = [], skip_channels[-1] + n_atts
        for i in range(n_layers - 1):
            d = min(dim * 2 ** (n_layers - 1 - i), MAX_DIM)
            blocks.append(nn.Sequential(nn.ConvTranspose2d(cin, d, 4, 2, 1, bias=False), batch_norm(d), nn.ReLU()))
            cin = d + (skip_channels[-2 - i] if self.shortcut > i else 0) + (n_atts if self.inject > i else 0)
        self.blocks = nn.ModuleList(blocks)
        if one_more_conv:
            self.extra = nn.Sequential(nn.ConvTranspose2d(cin, dim // 4, 4, 2, 1, bias=False), batch_norm(dim // 4),
                                       nn.ReLU())
            self.last = nn.ConvTranspose2d(dim // 4, out_ch, one_more_conv, 1, (one_more_conv - 1) // 2)
        else:
            self.extra = None
            self.last = nn.ConvTranspose2d(cin, out_ch, 4, 2, 1)

    def forward(self, zs: list[torch.Tensor], v: torch.Tensor) -> torch.Tensor:
        z = tile_concat(zs[-1], v)
        for i, block in enumerate(self.blocks):
            z = block(z)
            if self.shortcut > i:
                z = torch.cat([z, zs[-2 - i]], 1)
            if self.inject > i:
                z = tile_concat(z, v)
        if self.extra is not None:
            z = self.extra(z)
        return torch.tanh(self.last(z))


class ConvGRUCell(nn.Module):
    """One selective transfer unit (STGAN's ``ConvGRUCell``): ``(skip, state) -> (output, state passed on)``."""

    def __init__(self, in_ch: int, state_ch: int, out_ch: int, kernel_size: int = 3, norm: str = "none",
                 pass_state: str = "stu"):
        super().__init__()
        if norm not in STU_NORMS:
            raise ValueError(f"stu_norm must be one of {', '.join(STU_NORMS)}, got {norm!r}")
        if pass_state not in STU_STATES:
            raise ValueError(f"stu_state must be one of {', '.join(STU_STATES)}, got {pass_state!r}")
        if kernel_size % 2 == 0:
            raise ValueError(f"stu_kernel_size must be odd ('SAME' padding is symmetric then), got {kernel_size}")
        self.pass_state = pass_state
        self.up = nn.ConvTranspose2d(state_ch, out_ch, 4, 2, 1)  # upsample the state to the skip's size and width

        def conv(act):
            layers = [nn.Conv2d(in_ch + out_ch, out_ch, kernel_size, 1, kernel_size // 2, bias=norm == "none")]
            if norm != "none":
                layers.append(batch_norm(out_ch) if norm == "bn" else instance_norm(out_ch))
            return nn.Sequential(*layers, act)

        self.reset_gate, self.update_gate, self.info = conv(nn.Sigmoid()), conv(nn.Sigmoid()), conv(nn.Tanh())

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        state_ = self.up(state)
        xs = torch.cat([x, state_], 1)
        r, u = self.reset_gate(xs), self.update_gate(xs)
        new_state = r * state_
        info = self.info(torch.cat([x, new_state], 1))
        out = (1 - u) * state_ + u * info
        return out, {"gru": out, "direct": state_, "stu": new_state}[self.pass_state]


class SelectiveTransfer(nn.Module):
    """STGAN's ``Gstu``: ``(zs, v) -> zs_``, the deepest ``n_layers`` skips replaced by STU outputs."""

    def __init__(self, enc_channels: list[int], n_atts: int, dim: int = 64, n_layers: int = 4, inject_layers: int = 4,
                 kernel_size: int = 3, norm: str = "none", pass_state: str = "stu"):
        super().__init__()
        if not 1 <= n_layers <= len(enc_channels) - 1:
            raise ValueError(f"stu_layers must be in 1..{len(enc_channels) - 1} (one unit per skip), got {n_layers}")
        self.inject = inject_layers
        cells, state_ch = [], enc_channels[-1] + n_atts
        for i in range(n_layers):
            d = min(dim * 2 ** (n_layers - 1 - i), MAX_DIM)
            cells.append(ConvGRUCell(enc_channels[-2 - i], state_ch, d, kernel_size, norm, pass_state))
            state_ch = d + (n_atts if inject_layers > i else 0)
        self.cells = nn.ModuleList(cells)
        self.out_channels = list(enc_channels)
        for i in range(n_layers):
            self.out_channels[-2 - i] = min(dim * 2 ** (n_layers - 1 - i), MAX_DIM)

    def forward(self, zs: list[torch.Tensor], v: torch.Tensor) -> list[torch.Tensor]:
        out = list(zs)
        state = tile_concat(zs[-1], v)
        for i, cell in enumerate(self.cells):
            o, s = cell(zs[-2 - i], state)
            out[-2 - i] = o
            state = tile_concat(s, v) if self.inject > i else s
        return out


class AttGenerator(nn.Module):
    """Encoder, optional selective transfer units, decoder: ``G(x, v)``; ``encode`` / ``decode`` separately.
    ``dim``: the encoder's width (``enc_dim``), ``dec_dim``: the decoder's (default: ``dim``)."""

    def __init__(self, n_atts: int, dim: int = 64, n_layers: int = 5, shortcut_layers: int = 1, inject_layers: int = 1,
                 in_ch: int = 3, multi_inputs: int = 1, one_more_conv: int = 0, use_stu: bool = False,
                 stu_dim: int = 64, stu_layers: int = 4, stu_inject_layers: int = 4, stu_kernel_size: int = 3,
                 stu_norm: str = "none", stu_state: str = "stu", dec_dim: int | None = None):
        super().__init__()
        self.enc = AttEncoder(dim, n_layers, in_ch, multi_inputs)
        self.stu = SelectiveTransfer(self.enc.channels, n_atts, stu_dim, stu_layers, stu_inject_layers, stu_kernel_size,
                                     stu_norm, stu_state) if use_stu else None
        skips = self.stu.out_channels if self.stu is not None else self.enc.channels
        self.dec = AttDecoder(skips, n_atts, dec_dim or dim, n_layers, shortcut_layers, inject_layers, in_ch,
                              one_more_conv)
        self.stride = 2 ** n_layers
        tf_slim_init(self)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.shape[-1] % self.stride or x.shape[-2] % self.stride:
            raise ValueError(f"the generator needs heights and widths that are multiples of {self.stride}, "
                             f"got {x.shape[-1]}x{x.shape[-2]}")
        return self.enc(x)

    def decode(self, zs: list[torch.Tensor], v: torch.Tensor) -> torch.Tensor:
        return self.dec(self.stu(zs, v) if self.stu is not None else zs, v)

    def forward(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x), v)


class AttDiscriminator(nn.Module):
    """``D(x) -> (adversarial logit (N, 1), attribute logits (N, n_atts))``; x must be ``image_size`` square."""

    def __init__(self, n_atts: int, image_size: int = 128, dim: int = 64, fc_dim: int = 1024, n_layers: int = 5,
                 in_ch: int = 3):
        super().__init__()
        if image_size % 2 ** n_layers:
            raise ValueError(f"AttDiscriminator: image_size {image_size} is not a multiple of 2**n_layers "
                             f"= {2 ** n_layers}")
        self.image_size = image_size
        layers, cin = [], in_ch
        for d in encoder_channels(dim, n_layers):
            layers += [nn.Conv2d(cin, d, 4, 2, 1, bias=False), instance_norm(d), nn.LeakyReLU(0.2)]
            cin = d
        self.convs = nn.Sequential(*layers)
        flat = cin * (image_size // 2 ** n_layers) ** 2
        self.gan = nn.Sequential(nn.Linear(flat, fc_dim), nn.LeakyReLU(0.2), nn.Linear(fc_dim, 1))
        self.att = nn.Sequential(nn.Linear(flat, fc_dim), nn.LeakyReLU(0.2), nn.Linear(fc_dim, n_atts))
        tf_slim_init(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"AttDiscriminator takes {self.image_size}x{self.image_size} images (fully connected "
                             f"heads), got {x.shape[-1]}x{x.shape[-2]}")
        h = self.convs(x).permute(0, 2, 3, 1).flatten(1)  # NHWC order, as slim.flatten
        return self.gan(h), self.att(h)
