"""DualGAN's critic at the WGAN-era commit of duxingren14/DualGAN (``model.py`` ``discriminator`` and
``ops.py`` at fabe044, identical at 3b9f60f and the merge 9bd544e; the code the paper's WGAN settings
come from).

``DualCritic`` (all convs 5x5 with TF 'SAME' padding and a bias; LeakyReLU 0.2)::

    h0 = lrelu(conv in_ch -> ndf,    stride 2)                      (no norm)
    h1 = lrelu(BN(conv ndf -> 2 ndf,   stride 2))
    h2 = lrelu(BN(conv 2 ndf -> 4 ndf, stride 2))
    h3 = lrelu(BN(conv 4 ndf -> 8 ndf, stride 1))
    out = linear(flatten(h3) -> 1)                                  (one score per image)

It is a *global* critic: the last layer is fully connected over the (size/8)^2 x 8 ndf map, so its
parameter count depends on the image size (4,832,641 at 256x256, ndf 64, 3 channels; 1,083,073 at
32x32, ndf 32). The later code (3139ecf, d7ee5b8) replaced the linear layer by a 5x5 stride-1 conv to
one channel (a patch critic); the head (915116c) offers both (``--disc_type globalgan`` default, or
``patchgan``) with five convs, 3x3 kernels after the first and per-image normalisation.

Exactly as the official code:
  - 'SAME' padding: stride-2 5x5 convs pad 1 before and 2 after each spatial axis (TF puts the odd
    pixel at the end), stride-1 ones 2 and 2; so every output sits where TF's does.
  - ``BN`` is ``tf.contrib.layers.batch_norm(decay=0.9, epsilon=1e-5, scale=True)`` called with its
    default ``is_training=True``: batch statistics always (the moving averages it keeps are never
    used), learned scale (init 1) and offset (init 0): here ``BatchNorm2d(track_running_stats=False)``.
    At the official batch size 1 this is a per-image, per-channel normalisation.
  - Init: conv weights truncated normal (std 0.02, cut at 2 std), linear weights normal (std 0.02),
    all biases 0.
Departure: PyTorch's NCHW flatten order before the linear layer (TF flattens NHWC): the same function
family, weights would need permuting to load a TF checkpoint.
"""

from __future__ import annotations

import torch
from torch import nn


def _same_pad(kernel: int, stride: int) -> nn.ZeroPad2d:
    """TF 'SAME' padding for an input size divisible by ``stride``: total kernel - stride, extra at the end."""
    total = max(kernel - stride, 0)
    before = total // 2
    return nn.ZeroPad2d((before, total - before, before, total - before))


class DualCritic(nn.Module):
    """The WGAN-era DualGAN critic: four 5x5 convs (strides 2, 2, 2, 1), BatchNorm on the last three, a
    fully connected layer to one raw score per image (no sigmoid: a WGAN critic). Input: ``image_size``."""

    def __init__(self, in_ch: int = 3, ndf: int = 64, image_size: int = 256):
        super().__init__()
        if image_size < 8 or image_size % 8:
            raise ValueError(f"DualCritic needs an image size divisible by 8, got {image_size}")
        self.in_ch, self.ndf, self.image_size = in_ch, ndf, image_size
        layers: list[nn.Module] = []
        chans = [in_ch, ndf, ndf * 2, ndf * 4, ndf * 8]
        for i, stride in enumerate((2, 2, 2, 1)):
            layers += [_same_pad(5, stride), nn.Conv2d(chans[i], chans[i + 1], 5, stride, 0, bias=True)]
            if i > 0:
                layers.append(nn.BatchNorm2d(chans[i + 1], eps=1e-5, affine=True, track_running_stats=False))
            layers.append(nn.LeakyReLU(0.2, True))
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(ndf * 8 * (image_size // 8) ** 2, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official initialisers (see the module docstring)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.trunc_normal_(m.weight, 0.0, 0.02, -0.04, 0.04)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"DualCritic was built for {self.image_size}x{self.image_size} images "
                             f"(its last layer is fully connected), got {tuple(x.shape[-2:])}")
        return self.fc(self.features(x).flatten(1))
