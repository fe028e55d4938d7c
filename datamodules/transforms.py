"""Preprocessing as users of the reference code (junyanz/pytorch-CycleGAN-and-pix2pix) expect it.

Built on torchvision transforms v2 over uint8 tensors. One call of the returned transform may take
several images: they get the *same* random crop/flip/rotation (the paired case), because each
input is wrapped as a ``tv_tensors.Image``.

``preprocess``:
  - ``resize_and_crop``: resize to ``load_size`` x ``load_size``, random crop ``crop_size``
  - ``scale_width``: resize so the width is ``load_size`` (keeps aspect ratio; the height is at least
    ``crop_size``, as the reference's ``__scale_width``)
  - ``scale_width_and_crop``: the above, then crop ``crop_size``
  - ``crop``: crop only
  - ``resize``: resize to ``crop_size`` x ``crop_size`` (no crop)
  - ``center_crop_resize``: center-crop ``center_crop`` (CelebA: 178) then resize to ``crop_size``
  - ``center_crop_resize_and_crop``: center-crop ``center_crop``, resize to ``load_size``, random crop
    ``crop_size`` (UNIT's CelebA: 178 -> 132 -> 128)
  - ``none``: keep the size but round height and width to a multiple of ``stride`` (the network's
    total downsampling factor) instead of failing inside the network

At evaluation (``train=False``) the crop is central and, as the reference's ``TestOptions``
(``load_size`` defaults to ``crop_size`` there), the ``*_and_crop`` resizes go to ``crop_size``
itself: the whole image is resized to the crop size instead of a centre part being cut out.
Resizing is bicubic with antialiasing, as the reference's ``BICUBIC`` (PIL); the reference's random
crop at test time of ``scale_width_and_crop`` is a centre crop here.

All outputs are float tensors in [-1, 1] (mean 0.5, std 0.5), with ``channels`` channels.
"""

from __future__ import annotations

import math

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from lit_i2i.errors import UserError

PREPROCESS = ("resize_and_crop", "scale_width", "scale_width_and_crop", "crop", "resize",
              "center_crop_resize", "center_crop_resize_and_crop", "none")
BICUBIC = v2.InterpolationMode.BICUBIC


def _resize(img, size):
    return v2.functional.resize(img, size, interpolation=BICUBIC, antialias=True)


class _ScaleWidth(torch.nn.Module):
    def __init__(self, width: int, min_height: int = 0):
        super().__init__()
        self.width, self.min_height = width, min_height

    def forward(self, *imgs):
        h, w = imgs[0].shape[-2:]
        if w == self.width and h >= self.min_height:
            return imgs if len(imgs) > 1 else imgs[0]
        nh = max(int(self.width * h / w), self.min_height)  # the reference: int(max(target * oh / ow, crop))
        out = tuple(_resize(i, [nh, self.width]) for i in imgs)
        return out if len(out) > 1 else out[0]


class _MultipleOf(torch.nn.Module):
    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, *imgs):
        h, w = imgs[0].shape[-2:]
        s = self.stride
        nh, nw = max(s, int(round(h / s)) * s), max(s, int(round(w / s)) * s)
        if (nh, nw) != (h, w):
            imgs = tuple(_resize(i, [nh, nw]) for i in imgs)
        return imgs if len(imgs) > 1 else imgs[0]


class Blur3x3(torch.nn.Module):
    """OpenCV's ``GaussianBlur(img, (3, 3), 0)`` on uint8 images: the fixed kernel [1, 2, 1] / 4 in each
    direction, reflected borders (OpenCV's default BORDER_REFLECT_101), rounded back to uint8 (UNIT's
    ``dataset_blur_image`` blurs SYNTHIA so)."""

    def forward(self, *imgs):
        k = torch.tensor([0.25, 0.5, 0.25])
        kernel = torch.outer(k, k)[None, None]

        def blur(img):
            x = img.as_subclass(torch.Tensor).float()[None]
            c = x.shape[1]
            y = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect"),
                                           kernel.expand(c, 1, 3, 3), groups=c)[0]
            out = y.round().clamp(0, 255).to(img.dtype) if not img.is_floating_point() else y
            return tv_tensors.wrap(out, like=img) if isinstance(img, tv_tensors.Image) else out
        out = tuple(blur(i) for i in imgs)
        return out if len(out) > 1 else out[0]


def min_input_size(preprocess: str, load_size: int, crop_size: int,
                   center_crop: int | None = None) -> tuple[int, int] | None:
    """The smallest (h, w) a file may have for this preprocessing (None: any size works).

    ``crop`` cuts ``crop_size`` from the file itself; ``center_crop_resize`` cuts ``center_crop``
    (when given), which would otherwise be zero-padded silently.
    """
    if preprocess == "crop":
        return crop_size, crop_size
    if preprocess in ("center_crop_resize", "center_crop_resize_and_crop") and center_crop is not None:
        return center_crop, center_crop
    return None


def build_transform(preprocess: str = "resize_and_crop", load_size: int = 286, crop_size: int = 256,
                    flip: bool = True, train: bool = True, channels: int = 3, stride: int = 4,
                    center_crop: int = 178, rotation: float = 0.0, color_jitter: float = 0.0,
                    scale: tuple[float, float] | None = None, translate: float = 0.0, shear: float = 0.0,
                    hue: float = 0.0, blur: bool = False, invert: float = 0.0, part: str = "all") -> v2.Compose:
    """The transform for one split. Random ops (crop, flip, rotation, jitter) only when ``train``.

    ``rotation`` (degrees), ``translate`` (fraction of the size), ``shear`` (degrees), ``color_jitter``
    (brightness/contrast/saturation strength), ``hue`` and ``scale`` (random-resized-crop area range)
    are the extra augmentations of the one-shot data and of TUNIT's second view; ``invert``: the
    probability of inverting the colours (255 - x) after the jitter. ``blur``: a 3x3 Gaussian blur first
    (:class:`Blur3x3`).

    ``part``: ``all``, or the two halves the decoded-image cache splits it into (``datamodules.decoded``):
    ``pre``, the deterministic uint8 ops before the first random one (blur, the resize to the load size,
    a center crop), applied once per file; ``post``, the rest, applied to every item.
    """
    if part not in ("all", "pre", "post"):
        raise ValueError(f"part must be all, pre or post, got {part!r}")
    if preprocess not in PREPROCESS:
        raise UserError(f"data.preprocess: unknown value {preprocess!r}; choose one of {', '.join(PREPROCESS)}")
    if channels not in (1, 3):
        raise UserError(f"data.channels must be 1 or 3, got {channels}")
    pre: list = [Blur3x3()] if blur else []  # before any resizing, at train and test (UNIT's SYNTHIA)
    crop = [v2.RandomCrop(crop_size) if train else v2.CenterCrop(crop_size)]
    load = load_size if train else crop_size  # the reference tests with load_size = crop_size
    if preprocess == "resize_and_crop":
        pre, ops = pre + [v2.Resize((load, load), interpolation=BICUBIC, antialias=True)], crop
    elif preprocess == "scale_width":
        pre, ops = pre + [_ScaleWidth(load_size, min_height=crop_size)], []
    elif preprocess == "scale_width_and_crop":
        pre, ops = pre + [_ScaleWidth(load, min_height=crop_size)], crop
    elif preprocess == "crop":
        ops = crop
    elif preprocess == "resize":
        pre, ops = pre + [v2.Resize((crop_size, crop_size), interpolation=BICUBIC, antialias=True)], []
    elif preprocess == "center_crop_resize":
        pre = pre + [v2.CenterCrop(center_crop), v2.Resize((crop_size, crop_size), interpolation=BICUBIC, antialias=True)]
        ops = []
    elif preprocess == "center_crop_resize_and_crop":
        pre, ops = pre + [v2.CenterCrop(center_crop), v2.Resize((load, load), interpolation=BICUBIC, antialias=True)], crop
    else:  # none
        ops = []
    if part == "pre":
        return v2.Compose(pre)
    ops = list(ops) if part == "post" else pre + list(ops)
    ops.append(_MultipleOf(stride))
    if train:
        if scale is not None:  # random zoom, back to the crop size
            ops.append(v2.RandomResizedCrop(crop_size, scale=scale, ratio=(0.9, 1.1), antialias=True))
        if translate or shear:
            ops.append(v2.RandomAffine(rotation, translate=(translate, translate), shear=shear or None, fill=0))
        elif rotation:
            ops.append(v2.RandomRotation(rotation, fill=0))
        if flip:
            ops.append(v2.RandomHorizontalFlip())
        if color_jitter or hue:
            j = color_jitter
            ops.append(v2.ColorJitter(brightness=j, contrast=j, saturation=j if channels == 3 else 0,
                                      hue=hue if channels == 3 else 0))
        if invert:
            ops.append(v2.RandomInvert(invert))
    if channels == 1:
        ops.append(v2.Grayscale(1))
    ops += [v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5] * channels, [0.5] * channels)]
    return v2.Compose(ops)


def apply(transform, *imgs: torch.Tensor):
    """Apply ``transform`` jointly to uint8 CHW tensors (same random parameters for all)."""
    wrapped = tuple(tv_tensors.Image(i) for i in imgs)
    out = transform(*wrapped) if len(wrapped) > 1 else (transform(wrapped[0]),)
    out = tuple(o.as_subclass(torch.Tensor) for o in out)
    return out if len(out) > 1 else out[0]


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float -> uint8 in [0, 255] (what loggers and PNG writers need)."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def network_stride(n_down: int) -> int:
    return int(math.pow(2, n_down))
