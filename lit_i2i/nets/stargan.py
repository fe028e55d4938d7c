"""StarGAN's networks (yunjey/stargan@94dd002 ``model.py``), layer for layer.

- :class:`StarGenerator`: the target label tiled as ``c_dim`` extra input channels; 7x7 conv
  (``conv_dim``), two 4x4 stride-2 down-convs, ``repeat_num`` residual blocks (3x3 conv, IN, ReLU, 3x3
  conv, IN, + x), two 4x4 stride-2 transposed convs, 7x7 conv to 3 channels, tanh. No conv has a
  bias; every InstanceNorm is affine.
- :class:`StarDiscriminator`: PatchGAN of ``repeat_num`` 4x4 stride-2 convs (with biases, LeakyReLU
  0.01, no normalisation) from ``conv_dim`` doubling; a 3x3 source head (one map, no bias) and a
  classification head whose kernel covers the whole last map (``image_size / 2**repeat_num``, no bias)
  giving ``c_dim`` logits.

Initialisation: PyTorch's defaults, as the official code (it calls no init function).

**Departure (deliberate): InstanceNorm without running statistics.** The official layers are
``InstanceNorm2d(affine=True, track_running_stats=True)``. The official code never calls ``.eval()``
(training, sampling and ``test()`` all run the generator in train mode), so it always normalises each
image with its own statistics and never reads the running averages it accumulates; in ``.eval()`` those
averages replace the per-image statistics and the translations go wrong (stargan issue 102: "Disable
this line: model = model.eval()"). Lightning switches to eval mode for validation, and this suite's
evaluator and grids translate in eval mode, so the port builds ``track_running_stats=False``: eval and
train mode compute the same per-image normalisation, exactly what the official code computes
everywhere. The learnable parameters are the same (the running statistics are buffers, not
parameters); :func:`official_state_dict` drops the three buffers per layer so that an official
``*-G.ckpt`` loads with ``strict=True``.

Parameter counts at the defaults (CelebA 5 attributes, 128x128, conv_dim 64, 6 blocks): G 8,430,528,
D 44,762,048 (c_dim 8, RaFD: G 8,439,936, D 44,786,624); tested against the formula of the official
layers in ``tests/test_stargan.py``.
"""

from __future__ import annotations

import torch
from torch import nn


def _norm(c: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(c, affine=True, track_running_stats=False)


class ResidualBlock(nn.Module):
    """The official ``ResidualBlock``: x + IN(conv3x3(ReLU(IN(conv3x3(x)))))."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(dim_in, dim_out, kernel_size=3, stride=1, padding=1, bias=False), _norm(dim_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim_out, dim_out, kernel_size=3, stride=1, padding=1, bias=False), _norm(dim_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class StarGenerator(nn.Module):
    """``G(x, c)``: image (N, in_ch, H, W) in [-1, 1] and target label (N, c_dim) -> image; H, W multiples of 4."""

    def __init__(self, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6, in_ch: int = 3):
        super().__init__()
        self.c_dim = c_dim
        layers = [nn.Conv2d(in_ch + c_dim, conv_dim, kernel_size=7, stride=1, padding=3, bias=False), _norm(conv_dim),
                  nn.ReLU(inplace=True)]
        curr = conv_dim
        for _ in range(2):  # down-sampling
            layers += [nn.Conv2d(curr, curr * 2, kernel_size=4, stride=2, padding=1, bias=False), _norm(curr * 2),
                       nn.ReLU(inplace=True)]
            curr *= 2
        layers += [ResidualBlock(curr, curr) for _ in range(repeat_num)]  # bottleneck
        for _ in range(2):  # up-sampling
            layers += [nn.ConvTranspose2d(curr, curr // 2, kernel_size=4, stride=2, padding=1, bias=False),
                       _norm(curr // 2), nn.ReLU(inplace=True)]
            curr //= 2
        layers += [nn.Conv2d(curr, in_ch, kernel_size=7, stride=1, padding=3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        # the label replicated spatially and concatenated to the image (official comment: this conditioning
        # fails with reflection padding, because instance normalisation cancels the shift)
        c = c.to(x.dtype).view(c.size(0), c.size(1), 1, 1).expand(-1, -1, x.size(2), x.size(3))
        return self.main(torch.cat([x, c], dim=1))


class StarDiscriminator(nn.Module):
    """``D(x) -> (out_src (N, 1, H/2**r, W/2**r), out_cls (N, c_dim))``; x must be ``image_size`` square."""

    def __init__(self, image_size: int = 128, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6, in_ch: int = 3):
        super().__init__()
        if image_size % 2 ** repeat_num:
            raise ValueError(f"StarDiscriminator: image_size {image_size} is not a multiple of 2**repeat_num "
                             f"= {2 ** repeat_num} (the classification head's kernel is image_size / 2**repeat_num)")
        self.image_size = image_size
        layers = [nn.Conv2d(in_ch, conv_dim, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.01)]
        curr = conv_dim
        for _ in range(1, repeat_num):
            layers += [nn.Conv2d(curr, curr * 2, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.01)]
            curr *= 2
        kernel = image_size // 2 ** repeat_num
        self.main = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(curr, 1, kernel_size=3, stride=1, padding=1, bias=False)
        self.conv2 = nn.Conv2d(curr, c_dim, kernel_size=kernel, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"StarDiscriminator takes {self.image_size}x{self.image_size} images (its classification "
                             f"head covers the whole map), got {x.shape[-1]}x{x.shape[-2]}")
        h = self.main(x)
        out_cls = self.conv2(h)
        return self.conv1(h), out_cls.view(out_cls.size(0), out_cls.size(1))


def official_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An official ``*-G.ckpt`` / ``*-D.ckpt`` state dict without the InstanceNorm running statistics
    (``running_mean``, ``running_var``, ``num_batches_tracked``), which the official code never uses:
    ``StarGenerator().load_state_dict(official_state_dict(torch.load(path)))`` (the layer names match)."""
    drop = ("running_mean", "running_var", "num_batches_tracked")
    return {k: v for k, v in state.items() if not k.endswith(drop)}
