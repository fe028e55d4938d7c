"""MUNIT's networks (NVlabs/MUNIT@a82e222 ``networks.py``), built from the shared content/style blocks.

:class:`MUNITGenerator` is the official ``AdaINGen``: a style encoder, a content encoder and an AdaIN
decoder whose AdaIN parameters a 3-layer MLP makes from the style code. It is
:class:`~lit_i2i.nets.content_style.AdaINGenerator` (FUNIT/TUNIT's content encoder + AdaIN decoder +
MLP, the same blocks) with MUNIT's settings, plus a style encoder:

  - content encoder: 7x7 conv ``dim``, ``n_down`` 4x4 stride-2 convs doubling the width, ``n_res``
    residual blocks; InstanceNorm (no affine), ReLU, reflect padding everywhere;
  - style encoder (:class:`~lit_i2i.nets.content_style.StyleEncoder`): 7x7 conv, 4 stride-2 convs
    (the first two double the width: 64 -> 128 -> 256 -> 256 -> 256), global average pooling, 1x1 conv
    to ``style_dim`` (8); no norm;
  - decoder: ``n_res`` residual blocks with AdaIN in both convs, then ``n_down`` x [2x nearest
    upsample + 5x5 conv with MUNIT's LayerNorm + ReLU] halving the width, a 7x7 conv and tanh;
  - MLP: style_dim -> 256 -> 256 -> (number of AdaIN values), ReLU between; the residual connection
    is the plain sum (``res_scale`` 1; TUNIT scales it by 0.1).

:func:`munit_discriminator` is the official ``MsImageDis`` with MUNIT's config (``n_layer`` 4, ``dim``
64, ``num_scales`` 3, norm none, LeakyReLU 0.2, reflect padding): per scale 4x4 stride-2 convs
(64, 128, 256, 512) and a 1x1 conv to a logit map; between scales 3x3 stride-2 average pooling that
excludes the padding. That is the UNIT master discriminator already in the suite
(:func:`~lit_i2i.nets.vae.master_dis_net` in :class:`~lit_i2i.nets.vae.MultiScaleDiscriminator` with
``avgpool``): reflect padding 1 + a 4x4 stride-2 conv is ``Conv2d(..., padding=1,
padding_mode="reflect")``, and MUNIT downsampling after each scale (the last one unused) gives the
same maps as downsampling before each scale but the first.

Parameter counts at the official default config (3-channel images; arithmetic in tests/test_munit.py):
generator 15,026,187 (style encoder 2,764,936, content encoder 5,385,856, decoder 5,754,627, MLP
1,120,768 making 4,096 AdaIN values); discriminator 8,271,171 (3 x 2,757,057).

Departures: the style code is (N, style_dim) (official: (N, style_dim, 1, 1); the MLP flattens it
either way); AdaIN has no running-statistics buffers (never used by the official layer either, see
``content_style``); the discriminator supports MUNIT's ``norm: none`` only (every official config).
"""

from __future__ import annotations

import torch

from lit_i2i.nets.content_style import AdaINGenerator, StyleEncoder
from lit_i2i.nets.vae import MultiScaleDiscriminator, master_dis_net


class MUNITGenerator(AdaINGenerator):
    """MUNIT's ``AdaINGen`` for one domain: ``codes(x) -> (content, style)``, ``decode(content,
    style)``; ``forward(x)`` reconstructs ``x`` from its own codes, ``forward(x, style)`` decodes its
    content with another style."""

    def __init__(self, in_ch: int = 3, dim: int = 64, style_dim: int = 8, n_down: int = 2, n_res: int = 4,
                 mlp_dim: int = 256, n_down_style: int = 4):
        # AdaINGenerator sizes its encoder from img_size / content_size: 2**n_down / 1 gives n_down
        super().__init__(img_size=2 ** n_down, style_dim=style_dim, nf=dim, n_res=n_res, content_size=1, in_ch=in_ch,
                         out_ch=in_ch, mlp_dim=mlp_dim, mlp_blocks=3, res_scale=1.0, up_norm="ln")
        self.enc_style = StyleEncoder(in_ch, dim, style_dim, n_down_style, "none", "relu", "reflect")
        self.style_dim = style_dim

    def style(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc_style(x)

    def codes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The official ``encode``: (content map, style code)."""
        return self.encode(x), self.enc_style(x)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(x), self.enc_style(x) if style is None else style)


def munit_discriminator(in_ch: int = 3, dim: int = 64, n_layer: int = 4, num_scales: int = 3) -> MultiScaleDiscriminator:
    """MUNIT's ``MsImageDis`` (norm none, LeakyReLU 0.2, reflect padding): a list of ``num_scales`` logit maps."""
    return MultiScaleDiscriminator([master_dis_net(in_ch, dim, n_layer) for _ in range(num_scales)], "avgpool")
