"""SinGAN-style pyramids as structural analogy builds them (rmokady/structural-analogy@95ddf63,
``models.py``, ``utils.py``, ``imresize.py``; itself based on tamarott/SinGAN).

- :func:`pyramid_sizes`: the official ``adjust_scales2image`` + ``size_arr``: the number of scales
  and the side of each (coarse to fine) from ``img_size``, ``min_size``, the initial scale factor and
  ``max_size``; 220 / 18 / 0.75 / 250 gives 11 scales, 19 ... 220, effective factor (18/220)^(1/10).
- :func:`scale_width`: the width of scale n, ``min(nfc * 2 ** (n // 4), max_nfc)`` (32, 64, 128 for
  the default pyramid; the official cap 128 is ``max_nfc``).
- :class:`ScaleGenerator`: 5 convs 3x3, stride 1, padding 1 (receptive field 11x11); the first four
  with BatchNorm and LeakyReLU 0.2, the last to the image channels with tanh. ``residual``: the
  output is added to a second input (the upsampled image of the coarser scales), as the official
  ``Generator``; else ``Generator_no_res``.
- :class:`ScaleCritic`: the same stack with padding 0 and a 1-channel linear last conv: the WGAN
  patch critic (``WDiscriminator``), one score per 11x11 patch.
- :func:`sa_init_`: the official ``weights_init``: conv weights N(0, 0.02) (their biases keep
  PyTorch's default init), BatchNorm scales N(1, 0.02) and shifts 0.
- :func:`upsample`: the official ``imresize2(x, 1 / scale_factor)`` between scales: each image is
  quantised to uint8 (truncated, as ``astype(np.uint8)``), resized by the MATLAB-style bicubic
  (``imresize_in``, no antialiasing when enlarging) to ``ceil(side / scale_factor)``, and mapped back
  to [-1, 1] with a clamp. The resize is a pair of fixed matrices (rows: output pixels) built by
  :func:`cubic_matrix`, so it runs on the GPU in float64 like the official NumPy code.

BatchNorm: the official code keeps every BatchNorm in train mode at batch size 1, also in the frozen
coarser scales and at inference (it never calls ``.eval()``); the running statistics are updated
but never read. :class:`BatchStatNorm2d` normalises with the statistics of each call in every mode
(``track_running_stats=False``), which is the same function without the dead buffers, and keeps it
when Lightning switches the module to eval for validation or inference. Parameter counts equal the
official layers' (conv bias and BN affine included).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import nn


def pyramid_sizes(img_size: int = 220, min_size: int = 18, scale_factor: float = 0.75,
                  max_size: int = 250) -> tuple[list[int], float]:
    """(sides coarse to fine, effective scale factor) as the official ``adjust_scales2image`` and
    ``size_arr`` compute them (``math.ceil`` of the float powers: 220 * f**10 = 18.000000000000004
    gives 19)."""
    if img_size < 1 or min_size < 1 or not 0 < scale_factor < 1:
        raise ValueError(f"need img_size, min_size >= 1 and 0 < scale_factor < 1 (got {img_size}, {min_size}, "
                         f"{scale_factor})")
    if min_size >= img_size:
        raise ValueError(f"min_size ({min_size}) must be smaller than img_size ({img_size})")
    num_scales = math.ceil(math.log(math.pow(min_size / img_size, 1), scale_factor)) + 1
    scale2stop = math.ceil(math.log(min(max_size, img_size) / img_size, scale_factor))
    stop_scale = num_scales - scale2stop
    factor = math.pow(min_size / img_size, 1 / stop_scale)
    sizes = [math.ceil(math.pow(factor, stop_scale - i) * img_size) for i in range(stop_scale + 1)]
    return sizes, factor


def scale_width(n: int, nfc: int = 32, max_nfc: int = 128) -> int:
    """Channels of scale n: doubled every 4 scales, capped (official train.py: cap 128)."""
    return min(nfc * 2 ** (n // 4), max_nfc)


class BatchStatNorm2d(nn.BatchNorm2d):
    """BatchNorm that always normalises with the current batch's statistics (see the module docstring)."""

    def __init__(self, num_features: int):
        super().__init__(num_features, track_running_stats=False)


class ConvBlock(nn.Sequential):
    def __init__(self, cin: int, cout: int, ker: int, pad: int):
        super().__init__()
        self.add_module("conv", nn.Conv2d(cin, cout, ker, stride=1, padding=pad))
        self.add_module("norm", BatchStatNorm2d(cout))
        self.add_module("LeakyRelu", nn.LeakyReLU(0.2, inplace=True))


def _stack(nc: int, nfc: int, min_nfc: int, num_layer: int, ker: int, pad: int) -> tuple[nn.Module, nn.Module, int]:
    """The official head + body: widths nfc, then max(nfc / 2**(i+1), min_nfc)."""
    head = ConvBlock(nc, nfc, ker, pad)
    body = nn.Sequential()
    n = nfc
    for i in range(num_layer - 2):
        n = int(nfc / 2 ** (i + 1))
        body.add_module(f"block{i + 1}", ConvBlock(max(2 * n, min_nfc), max(n, min_nfc), ker, pad))
    return head, body, max(n, min_nfc)


class ScaleGenerator(nn.Module):
    """One scale's generator: ``G(x)`` or, residual, ``G(x, y) = conv_stack(x) + y``."""

    def __init__(self, nc: int = 3, nfc: int = 32, min_nfc: int = 32, num_layer: int = 5, ker: int = 3,
                 residual: bool = True):
        super().__init__()
        self.residual = residual
        self.head, self.body, last = _stack(nc, nfc, min_nfc, num_layer, ker, ker // 2)
        self.tail = nn.Sequential(nn.Conv2d(last, nc, ker, stride=1, padding=ker // 2), nn.Tanh())

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        out = self.tail(self.body(self.head(x)))
        if not self.residual:
            return out
        if y is None:
            raise ValueError("a residual scale generator needs the image to add its output to")
        ind = (y.shape[2] - out.shape[2]) // 2  # 0 with 'same' padding, as the official crop
        return out + y[:, :, ind:y.shape[2] - ind, ind:y.shape[3] - ind]


class ScaleCritic(nn.Module):
    """One scale's WGAN patch critic (no padding: an (H-10) x (W-10) map of scores for 5 layers)."""

    def __init__(self, nc: int = 3, nfc: int = 32, min_nfc: int = 32, num_layer: int = 5, ker: int = 3,
                 pad: int = 0):
        super().__init__()
        self.head, self.body, last = _stack(nc, nfc, min_nfc, num_layer, ker, pad)
        self.tail = nn.Conv2d(last, 1, ker, stride=1, padding=pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.body(self.head(x)))


@torch.no_grad()
def sa_init_(module: nn.Module) -> nn.Module:
    """The official ``weights_init`` applied to every submodule."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.normal_(0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.normal_(1.0, 0.02)
            m.bias.fill_(0)
    return module


# ---------------------------------------------------------------------------------- upsampling
def _cubic(x: np.ndarray) -> np.ndarray:
    a = np.abs(x)
    return ((1.5 * a ** 3 - 2.5 * a ** 2 + 1) * (a <= 1)
            + (-0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2) * ((1 < a) & (a <= 2)))


@lru_cache(maxsize=256)
def cubic_matrix(in_len: int, scale: float) -> np.ndarray:
    """The (ceil(in_len * scale), in_len) float64 matrix of the official bicubic resize along one axis
    for ``scale`` >= 1 (kernel width 4, no antialiasing).

    Output pixel i (1-based) sits at input coordinate i / scale + (1 - 1 / scale) / 2; it takes the
    cubic weights of the 6 input pixels around it, normalised to sum 1. Past the last pixel the
    indices are mirrored; before the first one the official code casts the negative indices to
    unsigned integers, which makes their distances huge and their weights 0 (x86 NumPy), so those
    taps are dropped before the normalisation rather than mirrored. Both are reproduced here.
    """
    if scale < 1:
        raise ValueError("cubic_matrix enlarges only (scale >= 1); the pyramid's reals are resized bilinearly")
    out_len = int(math.ceil(in_len * scale))
    match = np.arange(1, out_len + 1) / scale + 0.5 * (1 - 1.0 / scale)
    left = np.floor(match - 2.0)
    taps = left[:, None] + np.arange(6) - 1  # 0-based input indices (kernel width 4, + 2)
    w = _cubic(match[:, None] - taps - 1)
    w[taps < 0] = 0.0
    s = w.sum(1, keepdims=True)
    s[s == 0] = 1.0
    w = w / s
    idx = np.mod(taps, 2 * in_len).astype(np.int64)
    idx = np.where(idx >= in_len, 2 * in_len - 1 - idx, idx)
    m = np.zeros((out_len, in_len))
    for j in range(taps.shape[1]):
        np.add.at(m, (np.arange(out_len), idx[:, j]), w[:, j])
    return m


def _matrix(in_len: int, scale: float, device) -> torch.Tensor:
    return torch.from_numpy(cubic_matrix(in_len, scale)).to(device)


def upsample(x: torch.Tensor, scale: float, size: tuple[int, int] | None = None) -> torch.Tensor:
    """``imresize2(x, scale)`` then the official top-left crop to ``size``: x in [-1, 1], NCHW, no
    gradient (the official code resizes detached uint8 images)."""
    x = x.detach()
    q = torch.floor(255 * ((x + 1) / 2).clamp(0, 1)).double()  # torch2uint8
    mh, mw = _matrix(x.shape[2], float(scale), x.device), _matrix(x.shape[3], float(scale), x.device)
    out = torch.einsum("oh,nchw,pw->ncop", mh, q, mw)
    out = ((out / 255).to(x.dtype) - 0.5) * 2  # np2torch: /255, float32, norm
    out = out.clamp(-1, 1)
    if size is not None:
        out = out[:, :, :size[0], :size[1]]
    return out
