"""FUNIT's networks (NVlabs/FUNIT@198f430 ``networks.py``, ``blocks.py``), built from the shared
content/style blocks of :mod:`lit_i2i.nets.content_style` (the same blocks as TUNIT's generator).

  - :class:`FewShotGenerator`: :class:`~lit_i2i.nets.content_style.AdaINGenerator` (content encoder,
    AdaIN decoder, MLP) at FUNIT's settings (residual branches not scaled, InstanceNorm in the
    upsampling convs, AdaIN in the residual blocks only) plus the class-model encoder, which is
    MUNIT's style encoder (:class:`~lit_i2i.nets.content_style.StyleEncoder`: 7x7 conv, 2 stride-2
    4x4 convs doubling the width, ``n_downs_class - 2`` more at that width, global average pooling, a
    1x1 conv to the class code; no normalisation, ReLU, reflect padding). The K-shot class code is
    the mean of the K references' codes (:meth:`FewShotGenerator.class_code`).
  - :class:`GPPatchMcResDis`: 7x7 conv, ``n_res_blks / 2`` stages of two pre-activation residual
    blocks (LeakyReLU 0.2, no normalisation, the width doubling up to 1024 in the second block), a
    reflect-padded 3x3 stride-2 average pool between stages, then LeakyReLU and a 1x1 conv to one
    patch map per class. ``forward(x, y)`` returns the map of each image's class and the features
    (the input of the 1x1 head, after its LeakyReLU: see below) that feature matching compares.

The official blocks apply their first LeakyReLU *in place* (``inplace=True``, ``activation_first``).
Where a residual block's shortcut is the identity, the shortcut tensor is the input itself, so the
official block computes ``lrelu(x) + F(x)``, not ``x + F(x)``; the head's in-place LeakyReLU likewise
turns the returned features into ``lrelu(features)``. :class:`PreActResBlock` and
:class:`GPPatchMcResDis` compute that function (``official_inplace=True``, the default;
``False`` gives the textbook ``x + F(x)`` and the pre-activation features).

Parameter counts at the official default (``configs/funit_animals.yaml``: nf 64, MLP 256 x 3 layers,
class code 64, 3 content / 4 class downsamplings, 2 residual blocks; D nf 64, 10 blocks, 119
classes): generator 29,866,435 (content encoder 12,202,112, decoder 13,749,891, MLP 1,135,104 making
4,096 AdaIN values, class-model encoder 2,779,328), discriminator 54,252,599 (the arithmetic is in
``tests/test_funit.py``). Init: Kaiming (fan-in) for every conv and linear weight, zero biases (the
official ``weights_init('kaiming')``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lit_i2i.nets.content_style import (
    AdaINGenerator,
    Conv2dBlock,
    StyleEncoder,
    kaiming_init_,
)


class FewShotGenerator(AdaINGenerator):
    """FUNIT's ``FewShotGen``: ``encode(x)`` (content), ``class_code(refs, k)``, ``decode(content, code)``."""

    def __init__(self, in_ch: int = 3, nf: int = 64, nf_mlp: int = 256, latent_dim: int = 64, n_mlp_blks: int = 3,
                 n_downs_content: int = 3, n_downs_class: int = 4, n_res_blks: int = 2):
        # AdaINGenerator counts its downsamplings as log2(img_size / content_size)
        super().__init__(img_size=2 ** n_downs_content, style_dim=latent_dim, nf=nf, n_res=n_res_blks, content_size=1,
                         in_ch=in_ch, out_ch=in_ch, mlp_dim=nf_mlp, mlp_blocks=n_mlp_blks, res_scale=1.0, up_norm="in")
        self.enc_class_model = kaiming_init_(StyleEncoder(in_ch, nf, latent_dim, n_downs_class), "fan_in")

    def class_code(self, refs: torch.Tensor, k: int = 1) -> torch.Tensor:
        """(N * k, C, H, W) references -> (N, latent_dim) codes, the mean over each group of ``k``
        consecutive references (the official ``translate_k_shot`` / ``compute_k_style``)."""
        codes = self.enc_class_model(refs).flatten(1)
        if len(codes) % k:
            raise ValueError(f"{len(codes)} references are not groups of k = {k}")
        return codes.reshape(len(codes) // k, k, -1).mean(1)

    def forward(self, x: torch.Tensor, refs: torch.Tensor, k: int = 1) -> torch.Tensor:
        return self.decode(self.encode(x), self.class_code(refs, k))


class PreActResBlock(nn.Module):
    """FUNIT ``ActFirstResBlock``: ``shortcut(x) + conv(lrelu(conv(lrelu(x))))`` with reflect-padded 3x3
    convs (hidden width min(fin, fout)) and a bias-free 1x1 shortcut when the widths differ. With
    ``official_inplace`` an identity shortcut carries ``lrelu(x)`` (the official in-place activation)."""

    def __init__(self, fin: int, fout: int, official_inplace: bool = True):
        super().__init__()
        hid = min(fin, fout)
        self.conv_0 = nn.Sequential(nn.LeakyReLU(0.2), Conv2dBlock(fin, hid, 3, 1, 1, norm="none", act="none",
                                                                   pad="reflect"))
        self.conv_1 = nn.Sequential(nn.LeakyReLU(0.2), Conv2dBlock(hid, fout, 3, 1, 1, norm="none", act="none",
                                                                   pad="reflect"))
        self.conv_s = nn.Conv2d(fin, fout, 1, 1, 0, bias=False) if fin != fout else None
        self.official_inplace = official_inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv_s is not None:
            shortcut = self.conv_s(x)
        else:
            shortcut = F.leaky_relu(x, 0.2) if self.official_inplace else x
        return shortcut + self.conv_1(self.conv_0(x))


class GPPatchMcResDis(nn.Module):
    """Patch discriminator with one output map per class; ``forward(x, y) -> (map of class y, features)``."""

    def __init__(self, in_ch: int = 3, nf: int = 64, n_res_blks: int = 10, num_classes: int = 119,
                 max_dim: int = 1024, official_inplace: bool = True):
        super().__init__()
        if n_res_blks < 2 or n_res_blks % 2:
            raise ValueError(f"n_res_blks must be an even number >= 2, got {n_res_blks}")
        layers: list[nn.Module] = [Conv2dBlock(in_ch, nf, 7, 1, 3, norm="none", act="none", pad="reflect")]
        for i in range(n_res_blks // 2):
            nf_out = min(nf * 2, max_dim)
            layers += [PreActResBlock(nf, nf, official_inplace), PreActResBlock(nf, nf_out, official_inplace)]
            if i < n_res_blks // 2 - 1:
                layers += [nn.ReflectionPad2d(1), nn.AvgPool2d(3, 2)]
            nf = nf_out
        self.cnn_f = nn.Sequential(*layers)
        self.cnn_c = nn.Conv2d(nf, num_classes, 1, 1, 0)
        self.num_classes, self.official_inplace = num_classes, official_inplace
        kaiming_init_(self, "fan_in")

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.cnn_f(x)
        act = F.leaky_relu(feat, 0.2)
        out = self.cnn_c(act)  # (N, num_classes, H', W')
        idx = y.long().to(out.device).reshape(-1, 1, 1, 1).expand(-1, 1, *out.shape[2:])
        return out.gather(1, idx).squeeze(1), act if self.official_inplace else feat
