"""Built-in data, no download: the embedded default for the quickstart, the tests and benchmarks.

Domains (all 32x32, 3 channels, uint8 before the transform; deterministic given ``seed``):
  - ``digits``: scikit-learn's bundled 1,797 handwritten 8x8 digits, upsampled to 24x24 and padded
    to 32x32, white on black (MNIST-like).
  - ``colored-digits``: an SVHN-like domain made from the same digits: random foreground and
    background colours with at least ``MIN_CONTRAST`` luminance difference, a random shift (+-3 px)
    and scale (0.8-1.15), and Gaussian noise.
  - ``palette-digits``: colored digits whose colours come from a fixed palette of four (foreground,
    background) schemes (:data:`PALETTE`) instead of uniformly random ones; shift, scale and noise are
    drawn as for colored-digits. The quickstart's B domain: a deterministic generator cannot draw a
    random colour per image, so against colored-digits it paints blotches of several colours, while
    a palette's flat schemes are reachable (its digits are read by the colored-digits classifier).
  - ``accessory`` / ``no-accessory``: colored digits with and without an added object (a bar across
    the top rows, in a colour far from the background), with the object's ground-truth mask.
  - ``street-digits``: printed digits in many fonts on textured photographic backgrounds with
    neighbouring digits, blur and noise (``datamodules.street``): the MNIST -> SVHN stand-in, whose
    gap to ``digits`` is a change of shape style, colour and clutter. Its images are generated, not
    made from the scikit-learn digits, so it has its own index space (``street.indices``) and cannot
    be paired with another domain.

Splits: the 1,797 digits are shuffled once (fixed seed 0) and cut into two disjoint halves; domain
A draws from the first half and domain B from the second (unpaired: no digit appears in both), and
each half keeps its last 20% as the fixed test split (validation = test). Labels are kept for
evaluation. Paired data (pix2pix) renders the *same* digit in both domains and uses every digit.

Photographs: :func:`photo` returns scikit-image's bundled sample photographs (astronaut, chelsea,
coffee, rocket, ...) as uint8 CHW tensors, the sources of the one-shot and single-pair modules.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from datamodules.base import (DomainDataset, PairedDataset, TensorSource, TranslationDataModule,
                              UnpairedDataset)
from datamodules.transforms import build_transform
from lit_i2i.errors import UserError

DATA_VERSION = "1"  # bump when the rendering changes: cached classifiers and features are keyed by it
SIZE = 32
MIN_CONTRAST = 0.35
DOMAINS = ("digits", "colored-digits", "palette-digits", "accessory", "no-accessory", "street-digits")
#: palette-digits' (foreground, background) schemes, one drawn per image: yellow on navy, dark red on cream,
#: white on green, black on orange (each pair's luminance gap is at least 0.52, above MIN_CONTRAST)
PALETTE = (((1.0, 0.85, 0.2), (0.1, 0.15, 0.45)), ((0.6, 0.1, 0.1), (0.95, 0.9, 0.75)),
           ((0.95, 0.95, 0.95), (0.15, 0.45, 0.2)), ((0.1, 0.1, 0.1), (0.95, 0.55, 0.15)))
GENERATED = ("street-digits",)  # domains with their own index space (not the scikit-learn digits)
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "horse")
ACCESSORY_ROWS = (2, 6)   # the bar covers rows [2, 6) ...
ACCESSORY_COLS = (6, 26)  # ... and columns [6, 26)


@lru_cache(maxsize=1)
def digit_masks() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 digits as float masks in [0, 1], shape (N, 1, 32, 32), and their labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images).float().unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(24, 24), mode="bilinear", align_corners=False).clamp(0, 1)
    x = F.pad(x, (4, 4, 4, 4))
    return x, torch.from_numpy(d.target).long()


@lru_cache(maxsize=1)
def halves() -> dict[tuple[str, str], np.ndarray]:
    """Indices of the digits in each (half, split): halves 'A' and 'B', splits 'train' and 'test'."""
    n = len(digit_masks()[1])
    perm = np.random.default_rng(0).permutation(n)
    out = {}
    for h, idx in (("A", perm[: n // 2]), ("B", perm[n // 2:])):
        k = int(round(len(idx) * 0.8))
        out[(h, "train")], out[(h, "test")] = np.sort(idx[:k]), np.sort(idx[k:])
    return out


def indices(half: str, split: str, domain: str | None = None) -> np.ndarray:
    """Image indices of a half ('A', 'B' or 'all') and split ('train', 'val' = 'test', 'test'): of the
    scikit-learn digits, or of ``domain``'s own index space for a generated domain (street digits)."""
    if domain in GENERATED:
        from datamodules import street

        return street.indices(half, split)
    split = "test" if split == "val" else split
    if half == "all":
        return np.sort(np.concatenate([halves()[("A", split)], halves()[("B", split)]]))
    return halves()[(half, split)]


def accessory_box(n: int = 1) -> torch.Tensor:
    """The accessory's place, (n, 1, 32, 32): 1 on the bar's rows and columns, 0 elsewhere."""
    box = torch.zeros(n, 1, SIZE, SIZE)
    box[:, :, ACCESSORY_ROWS[0]:ACCESSORY_ROWS[1], ACCESSORY_COLS[0]:ACCESSORY_COLS[1]] = 1.0
    return box


def _luma(c: np.ndarray) -> float:
    return float(0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])


def _colors(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    while True:
        fg, bg = rng.random(3), rng.random(3)
        if abs(_luma(fg) - _luma(bg)) >= MIN_CONTRAST:
            return fg, bg


def _draw_colours(rng: np.random.Generator, domain: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(foreground, background, palette scheme or -1) of one rendered image, from its own generator."""
    f, b = _colors(rng)
    if domain == "palette-digits":  # one of the fixed schemes instead (shift, scale, noise: the same laws)
        k = int(rng.integers(len(PALETTE)))
        return np.array(PALETTE[k][0]), np.array(PALETTE[k][1]), k
    return f, b, -1


def palette_schemes(idx: np.ndarray | list[int], seed: int = 0) -> torch.Tensor:
    """The :data:`PALETTE` scheme (0-3) of each ``palette-digits`` image ``idx``, as :func:`render` draws it."""
    return torch.tensor([_draw_colours(np.random.default_rng([seed, int(i), 7]), "palette-digits")[2] for i in idx],
                        dtype=torch.long)


def render(domain: str, idx: np.ndarray | list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Render digits ``idx`` in ``domain``: (uint8 images (N,3,32,32), labels (N,), masks (N,1,32,32)).

    The mask is the accessory's ground-truth mask (all zeros for domains without one). Each image
    depends only on (domain, digit index, seed), not on which other digits are rendered with it.
    """
    if domain not in DOMAINS:
        raise UserError(f"unknown built-in domain {domain!r}; choose one of {', '.join(DOMAINS)}")
    if domain == "street-digits":
        from datamodules import street

        imgs, labels = street.render(idx, seed)
        return imgs, labels, torch.zeros(len(imgs), 1, SIZE, SIZE)
    masks, labels = digit_masks()
    idx = np.asarray(idx, dtype=np.int64)
    m = masks[idx]
    n = len(idx)
    acc = torch.zeros(n, 1, SIZE, SIZE)
    if domain == "digits":
        return (m.expand(-1, 3, -1, -1) * 255).round().to(torch.uint8), labels[idx], acc
    fg, bg, theta, noise_seed, acc_col = [], [], [], [], []
    for i in idx:
        rng = np.random.default_rng([seed, int(i), 7])
        f, b, _ = _draw_colours(rng, domain)
        s = rng.uniform(0.8, 1.15)
        tx, ty = rng.uniform(-3, 3, size=2) * 2 / SIZE
        fg.append(f), bg.append(b)
        theta.append([[1 / s, 0, -tx], [0, 1 / s, -ty]])
        noise_seed.append(int(rng.integers(2**31)))
        # accessory colour: far from the background, with its own draw so adding it changes nothing else
        arng = np.random.default_rng([seed, int(i), 11])
        while True:
            c = arng.random(3)
            if abs(_luma(c) - _luma(b)) >= MIN_CONTRAST:
                break
        acc_col.append(c)
    grid = F.affine_grid(torch.tensor(theta, dtype=torch.float32), (n, 1, SIZE, SIZE), align_corners=False)
    m = F.grid_sample(m, grid, align_corners=False).clamp(0, 1)
    fg_t = torch.tensor(np.array(fg), dtype=torch.float32)[:, :, None, None]
    bg_t = torch.tensor(np.array(bg), dtype=torch.float32)[:, :, None, None]
    img = bg_t * (1 - m) + fg_t * m
    if domain == "accessory":
        acc = accessory_box(n)
        col = torch.tensor(np.array(acc_col), dtype=torch.float32)[:, :, None, None]
        img = img * (1 - acc) + col * acc
    noise = torch.stack([torch.randn(3, SIZE, SIZE, generator=torch.Generator().manual_seed(s)) for s in noise_seed])
    img = (img + 0.04 * noise).clamp(0, 1)
    return (img * 255).round().to(torch.uint8), labels[idx], acc


@lru_cache(maxsize=32)
def domain_source(domain: str, half: str, split: str, seed: int = 0) -> TensorSource:
    idx = indices(half, split, domain)
    if domain == "street-digits":  # rendered on demand
        from datamodules.street import StreetSource

        return StreetSource(idx, seed, f"{domain}/{split}")
    imgs, labels, _ = render(domain, idx, seed)
    return TensorSource(imgs, labels, f"{domain}/{split}", index=idx.tolist())


def photo(name: str, size: int | None = None) -> torch.Tensor:
    """One of scikit-image's bundled photographs as a uint8 (3, H, W) tensor (optionally resized)."""
    import skimage.data

    if name not in PHOTOS:
        raise UserError(f"unknown built-in photo {name!r}; choose one of {', '.join(PHOTOS)}")
    arr = np.asarray(getattr(skimage.data, name)())
    if arr.dtype == bool:  # 'horse' is a binary silhouette
        arr = arr.astype(np.uint8) * 255
    t = torch.from_numpy(np.ascontiguousarray(arr.astype(np.uint8)))
    t = t.unsqueeze(0).expand(3, -1, -1) if t.ndim == 2 else t.permute(2, 0, 1)[:3]
    t = t.contiguous()
    if size is not None:
        t = F.interpolate(t[None].float(), size=(size, size), mode="bilinear", antialias=True,
                          align_corners=False)[0].round().clamp(0, 255).to(torch.uint8)
    return t


class BuiltinDigits(TranslationDataModule):
    """Built-in digits -> colored digits (or any two built-in domains), unpaired or paired.

    Args:
        a, b: built-in domains (``digits``, ``colored-digits``, ``palette-digits``, ``no-accessory``,
            ``accessory``, ``street-digits``).
        paired: render the same digits in both domains (pix2pix); else disjoint halves (unpaired).
        seed: rendering seed (colours, shifts, noise); the split is fixed.
        flip: random horizontal flip (off by default: it changes a digit's identity).
        train_limit: use only the first N training images of each domain (quick tests).
    """

    def __init__(self, a: str = "digits", b: str = "colored-digits", paired: bool = False, seed: int = 0,
                 flip: bool = False, train_limit: int | None = None, batch_size: int = 16,
                 eval_batch_size: int | None = None, num_workers: int = 0, pin_memory: bool = False,
                 persistent_workers: bool = True):
        super().__init__(batch_size, eval_batch_size, num_workers, pin_memory, persistent_workers)
        for opt, d in (("data.a", a), ("data.b", b)):
            if d not in DOMAINS:
                raise UserError(f"{opt}: unknown built-in domain {d!r}; choose one of {', '.join(DOMAINS)}")
        if paired and {a, b} & set(GENERATED):
            raise UserError(f"data.paired: {' and '.join(sorted({a, b} & set(GENERATED)))} is generated, not "
                            "rendered from the scikit-learn digits, so it has no aligned partner; use paired: false")
        self.a, self.b, self.paired, self.seed = a, b, paired, seed
        self.flip, self.train_limit = flip, train_limit
        self.name = f"builtin-{a}2{b}" + ("-paired" if paired else "")

    def builtin_domain(self, domain: str) -> str | None:
        """The built-in domain behind a domain letter (the metrics pick its shipped classifier)."""
        return {"A": self.a, "B": self.b}.get(domain)

    def _half(self, domain: str) -> str:
        if self.paired:
            return "all"
        return "A" if domain == "A" else "B"

    def eval_source(self, domain: str, split: str = "test") -> TensorSource:
        if domain not in self.domains:
            raise UserError(f"unknown domain {domain!r}; this data has {self.domains}")
        name = self.a if domain == "A" else self.b
        return domain_source(name, self._half(domain), "test" if split == "val" else split, self.seed)

    def eval_transform(self):
        return build_transform("none", train=False, stride=1)

    def _source(self, domain: str, split: str):
        src = self.eval_source(domain, split)
        if split == "train" and self.train_limit:
            n = self.train_limit
            src = src.subset(range(min(n, len(src)))) if hasattr(src, "subset") else TensorSource(
                src.images[:n], src.labels[:n], src.name, src.index[:n])
        return src

    def build(self, split: str):
        train = split == "train"
        t = build_transform("none", train=train, flip=self.flip, stride=1)
        a, b = self._source("A", split), self._source("B", split)
        if self.paired:
            return PairedDataset(a, b, t)
        return UnpairedDataset(a, b, t, random_b=train)

    def eval_dataset(self, domain: str, split: str = "test") -> DomainDataset:
        return DomainDataset(self.eval_source(domain, split), self.eval_transform())

    def ground_truth(self, src: str, tgt: str, split: str, positions: list[int],
                     ref_positions: list[int] | None = None) -> dict | None:
        """The exact answer of translating items ``positions`` of ``eval_dataset(src, split)`` to ``tgt``,
        where the renderer knows it (the no-accessory <-> accessory pair), else None.

        Returns ``{"image": (N, 3, 32, 32) in [-1, 1] or None, "region": (N, 1, 32, 32)}``, the region being
        the pixels the translation should change (the bar). Removal (accessory -> no-accessory): the same
        digits rendered without the bar, region the source's bar. Addition (no-accessory -> accessory):
        region the bar's place; the image only with references (items ``ref_positions`` of ``tgt``): the
        source with the reference's mean bar colour painted in (without one the colour is not determined).
        """
        names = {"A": self.a, "B": self.b}
        if {names.get(src), names.get(tgt)} != {"no-accessory", "accessory"}:
            return None
        from datamodules.transforms import apply

        to_float = self.eval_transform()  # the evaluation images' own scaling, bit for bit
        idx = np.asarray(self.eval_source(src, split).index)[list(positions)]
        region = accessory_box(len(idx))  # the accessory's mask in every accessory image
        if names[src] == "accessory":
            clean, _, _ = render("no-accessory", idx, self.seed)
            return {"image": apply(to_float, clean), "region": region}
        if ref_positions is None:
            return {"image": None, "region": region}
        x = apply(to_float, self.eval_source(src, split).images[list(positions)])
        ref = apply(to_float, self.eval_source(tgt, split).images[list(ref_positions)])
        colour = ((ref + 1) / 2 * region).flatten(2).sum(2) / region.flatten(2).sum(2)  # (N, 3) in [0, 1]
        return {"image": x * (1 - region) + (colour[:, :, None, None] * 2 - 1) * region, "region": region}
