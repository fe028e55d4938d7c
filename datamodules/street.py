"""``street-digits``: a built-in SVHN-like domain with a real gap to the handwritten ``digits``.

Every image is drawn from its own random generator ``(seed, index)``, so it does not depend on which
other images are rendered with it. An image (rendered at 64x64 and downsampled to 32x32 RGB):
  - the centre digit (its label) is a *printed* digit: one of the fonts matplotlib ships (DejaVu Sans /
    Serif / Sans Mono in regular, bold, oblique and bold oblique, STIX General in four weights,
    Computer Modern roman, bold, sans, typewriter, italic), its height 55-90% of the image, rotated by
    up to +-8 degrees and sheared by up to +-0.25, in a random stroke colour;
  - the background is a random crop (1/8 to 1/2 of the side) of one of scikit-image's bundled
    photographs and textures (:data:`BACKGROUNDS`), tinted towards a random colour and blended with a
    flat one; the stroke colour keeps a luminance difference of at least :data:`MIN_CONTRAST` from the
    background's mean under the digit;
  - SVHN's distractors: in about half the images the neighbouring digits of a house number (same font
    and colour, cut by the left and right edges), a small shift, a Gaussian blur and pixel noise.

Index spaces: half ``A`` holds images 0-9,999 (train) and 10,000-11,999 (test), half ``B`` images
20,000-29,999 and 30,000-31,999, so the two halves share no image (unpaired data); ``all`` is both.
A split is a :class:`StreetSource`: its labels are known at once (the first draw of each image's
generator), its images are rendered on demand, one by one as a loader asks for them (a short run or
an evaluation of N images renders only those), or all at once where ``.images`` is read (classifier
training) or once 512 have been asked for (a long run), then cached in memory and on disk (``$LIT_I2I_CACHE/builtin``, keyed by
:data:`STREET_VERSION`, the seed and the indices; a 10,000-image split takes about a minute on one core).
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

STREET_VERSION = "1"  # bump when the rendering changes: shipped classifiers and caches are keyed by it
RENDER = 64           # supersampled canvas, downsampled to 32
SIZE = 32
MIN_CONTRAST = 0.3
HEIGHT = (0.55, 0.9)  # the centre digit's height, as a share of the image's
NEIGHBOUR_P = 0.5     # share of images showing the neighbouring digits of a house number
MAX_BLUR = 1.2        # Gaussian blur sigma (on the 64x64 canvas), uniform in [0, MAX_BLUR]
SPLITS = {("A", "train"): (0, 10_000), ("A", "test"): (10_000, 12_000),
          ("B", "train"): (20_000, 30_000), ("B", "test"): (30_000, 32_000)}
FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
         "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
         "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf",
         "DejaVuSansMono-BoldOblique.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf",
         "STIXGeneralBolIta.ttf", "cmr10.ttf", "cmb10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmti10.ttf")
BACKGROUNDS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
               "camera", "coins", "moon", "brick", "grass", "gravel", "cell")


def cache_root() -> Path:
    """``$LIT_I2I_CACHE`` or ``~/.cache/lit_i2i``: where rendered data, trained classifiers and real
    features are cached."""
    return Path(os.environ.get("LIT_I2I_CACHE", Path.home() / ".cache" / "lit_i2i")).expanduser()


def indices(half: str, split: str) -> np.ndarray:
    """Image indices of a half (``A``, ``B`` or ``all``) and split (``train``, ``val`` = ``test``)."""
    split = "test" if split == "val" else split
    halves = ("A", "B") if half == "all" else (half,)
    return np.concatenate([np.arange(*SPLITS[(h, split)]) for h in halves])


@lru_cache(maxsize=1)
def _fonts() -> tuple[str, ...]:
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    found = tuple(str(folder / f) for f in FONTS if (folder / f).is_file())
    if not found:
        from lit_i2i.errors import UserError

        raise UserError(f"street-digits: no font files in {folder} (matplotlib's bundled fonts); reinstall matplotlib")
    return found


@lru_cache(maxsize=256)
def _font(path: str, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(path, size)


@lru_cache(maxsize=1)
def _backgrounds() -> tuple[np.ndarray, ...]:
    """The background photographs as float RGB arrays in [0, 1] (grey ones repeated)."""
    import skimage.data

    out = []
    for name in BACKGROUNDS:
        a = np.asarray(getattr(skimage.data, name)())
        if a.dtype == bool:
            a = a.astype(np.uint8) * 255
        a = a.astype(np.float32) / 255.0
        if a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)
        out.append(np.ascontiguousarray(a[:, :, :3]))
    return tuple(out)


def _luma(c: np.ndarray) -> np.ndarray:
    return 0.299 * c[..., 0] + 0.587 * c[..., 1] + 0.114 * c[..., 2]


def _background(rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    photos = _backgrounds()
    src = photos[int(rng.integers(len(photos)))]
    h, w = src.shape[:2]
    side = int(rng.uniform(0.125, 0.5) * min(h, w))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = Image.fromarray((src[y:y + side, x:x + side] * 255).astype(np.uint8))
    bg = np.asarray(crop.resize((RENDER, RENDER), Image.BILINEAR), dtype=np.float32) / 255.0
    tint, flat = rng.random(3), rng.random(3)
    bg = bg * (0.4 + 0.6 * tint)                      # tinted photograph
    a = rng.uniform(0.35, 0.9)                        # how much of the photo shows through a flat colour
    return a * bg + (1 - a) * flat


def _glyphs(rng: np.random.Generator, label: int) -> tuple[np.ndarray, float]:
    """The digit mask (with its neighbours, if any) on the canvas, before the affine warp; its height."""
    from PIL import Image, ImageDraw

    font_path = _fonts()[int(rng.integers(len(_fonts())))]
    height = rng.uniform(*HEIGHT) * RENDER
    font = _font(font_path, max(8, int(round(height * 1.35))))
    l, t, r, b = font.getbbox(str(label))
    scale = height / max(1, b - t)                    # the glyph's own height, whatever the font's metrics
    font = _font(font_path, max(8, int(round(font.size * scale))))
    canvas = Image.new("L", (3 * RENDER, RENDER), 0)  # room for neighbours left and right
    draw = ImageDraw.Draw(canvas)
    l, t, r, b = font.getbbox(str(label))
    gw = r - l
    cx, cy = 1.5 * RENDER, RENDER / 2
    draw.text((cx - (l + r) / 2, cy - (t + b) / 2), str(label), font=font, fill=255)
    if rng.random() < NEIGHBOUR_P:                    # a house number: neighbours cut by the edges
        gap = rng.uniform(0.05, 0.3) * gw
        for side in (-1, 1):
            if rng.random() < 0.8:
                d = str(int(rng.integers(10)))
                nl, nt, nr, nb = font.getbbox(d)
                nx = cx + side * ((gw + (nr - nl)) / 2 + gap)
                draw.text((nx - (nl + nr) / 2, cy - (nt + nb) / 2), d, font=font, fill=255)
    return np.asarray(canvas, dtype=np.float32) / 255.0, height


def _warp(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotate, shear and shift the (3W x W) glyph strip, then cut the centre W x W window."""
    from PIL import Image

    ang = np.deg2rad(rng.uniform(-8, 8))
    sh = rng.uniform(-0.25, 0.25)
    tx, ty = rng.uniform(-0.06, 0.06, size=2) * RENDER
    cx, cy = 1.5 * RENDER, RENDER / 2
    # output -> input map (PIL's AFFINE takes the inverse): x_in = A (x_out - c - t) + c
    cos, sin = np.cos(ang), np.sin(ang)
    rot = np.array([[cos, sin], [-sin, cos]])
    shear = np.array([[1.0, sh], [0.0, 1.0]])
    a = shear @ rot
    ox, oy = RENDER, 0.0                              # the output window starts at x = RENDER of the strip
    # input coordinates of output pixel (u, v): a @ ((u + ox, v + oy) - c - t) + c
    off = -a @ np.array([cx + tx - ox, cy + ty - oy]) + np.array([cx, cy])
    coeffs = (a[0, 0], a[0, 1], off[0], a[1, 0], a[1, 1], off[1])
    img = Image.fromarray((mask * 255).astype(np.uint8))
    out = img.transform((RENDER, RENDER), Image.AFFINE, coeffs, resample=Image.BILINEAR)
    return np.asarray(out, dtype=np.float32) / 255.0


def _stroke_colour(rng: np.random.Generator, bg: np.ndarray, mask: np.ndarray) -> np.ndarray:
    under = (bg * mask[..., None]).sum((0, 1)) / max(mask.sum(), 1e-6)
    ref = float(_luma(under))
    for _ in range(100):
        c = rng.random(3)
        if abs(float(_luma(c)) - ref) >= MIN_CONTRAST:
            return c
    return np.ones(3) if ref < 0.5 else np.zeros(3)


def _rng(index: int, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, int(index), 2024])


def labels_of(idx, seed: int = 0) -> torch.Tensor:
    """The labels of images ``idx`` without rendering them (each image's first random draw)."""
    return torch.tensor([int(_rng(i, seed).integers(10)) for i in np.asarray(idx, dtype=np.int64)], dtype=torch.long)


def render_one(index: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """One street digit: (uint8 (3, 32, 32), label)."""
    from PIL import Image, ImageFilter

    rng = _rng(index, seed)
    label = int(rng.integers(10))
    bg = _background(rng)
    glyph, _ = _glyphs(rng, label)
    mask = _warp(glyph, rng)
    colour = _stroke_colour(rng, bg, mask)
    img = bg * (1 - mask[..., None]) + colour * mask[..., None]
    pil = Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8))
    pil = pil.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, MAX_BLUR)))
    pil = pil.resize((SIZE, SIZE), Image.LANCZOS)
    out = np.asarray(pil, dtype=np.float32) / 255.0
    out = out + rng.normal(0, rng.uniform(0.005, 0.04), out.shape)
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8).transpose(2, 0, 1), label


def _cache_file(idx: np.ndarray, seed: int) -> Path:
    key = hashlib.sha256(np.ascontiguousarray(idx, dtype=np.int64).tobytes()).hexdigest()[:16]
    return cache_root() / "builtin" / f"street-digits-v{STREET_VERSION}-seed{seed}-n{len(idx)}-{key}.pt"


def render(idx, seed: int = 0, cache: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Street digits ``idx``: (uint8 images (N, 3, 32, 32), labels (N,)), from the disk cache when there."""
    idx = np.asarray(idx, dtype=np.int64)
    path = _cache_file(idx, seed)
    if cache and len(idx) >= 256 and path.is_file():
        try:
            d = torch.load(path, map_location="cpu", weights_only=True)
            return d["images"], d["labels"]
        except Exception:  # noqa: BLE001 - a broken cache entry is rendered again
            pass
    imgs, labels = zip(*(render_one(int(i), seed) for i in idx)) if len(idx) else ((), ())
    images = torch.from_numpy(np.stack(imgs)) if imgs else torch.zeros(0, 3, SIZE, SIZE, dtype=torch.uint8)
    labels = torch.tensor(labels, dtype=torch.long)
    if cache and len(idx) >= 256:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save({"images": images, "labels": labels}, tmp)
        os.replace(tmp, path)
    return images, labels


class StreetSource:
    """A split of street digits, rendered lazily (see the module docstring); the source interface of
    ``datamodules.base`` (``len``, ``[i] -> (uint8 image, label, path)``, ``.images``, ``.labels``,
    ``.index``, ``.name``) plus :meth:`subset`."""

    def __init__(self, index, seed: int = 0, name: str = "street-digits"):
        self.index = [int(i) for i in index]
        self.seed, self.name = seed, name
        self.labels = labels_of(self.index, seed)
        self._images: torch.Tensor | None = None
        self._items: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.index)

    @property
    def images(self) -> torch.Tensor:
        """Every image, rendered once (from the disk cache when there)."""
        if self._images is None:
            self._images, _ = render(self.index, self.seed)
        return self._images

    #: after this many images rendered one by one, the whole split is rendered (and cached on disk)
    EAGER_AFTER = 512

    def __getitem__(self, i: int):
        if self._images is None and not self._items and len(self) >= 256 and _cache_file(
                np.asarray(self.index), self.seed).is_file():
            _ = self.images  # rendered before: load the whole split from the disk cache
        if self._images is None and len(self._items) >= self.EAGER_AFTER:
            _ = self.images  # a long run touches most images: render them all once, and cache them
        if self._images is not None:
            x = self._images[i]
        else:
            if i not in self._items:
                self._items[i] = torch.from_numpy(render_one(self.index[i], self.seed)[0])
            x = self._items[i]
        return x, int(self.labels[i]), f"builtin://{self.name}/{self.index[i]}"

    def subset(self, positions) -> "StreetSource":
        """The items at ``positions``, still lazy (rendered images are shared)."""
        positions = [int(p) for p in positions]
        out = StreetSource([self.index[p] for p in positions], self.seed, self.name)
        if self._images is not None:
            out._images = self._images[positions]
        else:
            out._items = {k: self._items[p] for k, p in enumerate(positions) if p in self._items}
        return out
