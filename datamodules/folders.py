"""Two-domain image folders: unpaired (CycleGAN layout) and aligned (pix2pix layout).

Also what every file-based datamodule shares (:class:`FileDataModule`): the preprocessing options,
header-only checking of the files before training (cached, so each folder is listed and checked
once), the split-folder fallback (val -> test, test -> val), stage-aware :meth:`check`, and small
sources (:class:`ImageListSource`, :class:`Repeated`) plus :func:`load_named_image` (a path or the
name of a built-in photograph).

Layouts::

    UnpairedFolders   root/trainA, root/trainB, root/testA, root/testB  (val: valA/valB, else test)
    AlignedFolders    combined:    root/train/x.png holding A|B side by side (w = 2h); root/val, root/test
                      two_folders: root/trainA/x.png pairs with root/trainB/x.png (same file stem)
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch
from torchvision.transforms import v2

from datamodules.base import FileSource, PairedDataset, TranslationDataModule, UnpairedDataset
from datamodules.io import check_min_size, image_size, list_images, load_image, read_sizes, require_dir
from datamodules.transforms import apply, build_transform, min_input_size
from lit_i2i.errors import UserError

#: Where a split's images live when its own folder is missing (the reference code's habit: val = test).
SPLIT_FALLBACK = {"train": ("train",), "val": ("val", "test"), "test": ("test", "val")}
#: The splits a Lightning stage reads; ``None`` (a direct ``check()``) checks all of them.
STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}


def split_prefix(root: Path, split: str, suffix: str = "", option: str = "data.root") -> str:
    """The folder name prefix holding ``split`` under ``root`` (``root/<prefix><suffix>`` exists)."""
    if split not in SPLIT_FALLBACK:
        raise UserError(f"unknown split {split!r}; expected one of {', '.join(SPLIT_FALLBACK)}")
    require_dir(root, option)
    for s in SPLIT_FALLBACK[split]:
        if (root / f"{s}{suffix}").is_dir():
            return s
    expected = " or ".join(str(root / f"{s}{suffix}") for s in SPLIT_FALLBACK[split])
    raise UserError(f"{option}: no {split} images: expected the folder {expected}")


def load_named_image(spec: str, channels: int, option: str) -> tuple[torch.Tensor, str]:
    """A uint8 CHW image and its path from a file path or a built-in photo name (``builtin.PHOTOS``)."""
    from datamodules.builtin import PHOTOS, photo

    if spec in PHOTOS and not Path(spec).exists():
        img = photo(spec)
        if img.dtype == torch.bool:  # skimage's `horse` is a binary mask
            img = img.to(torch.uint8) * 255
        return (img[:1] if channels == 1 else img), f"builtin://photo/{spec}"
    try:
        image_size(spec)  # a clear error for a missing or non-image file before decoding
        return load_image(spec, channels), str(spec)
    except UserError as e:
        raise UserError(f"{option}: {e} (give an image file or a built-in photo: {', '.join(PHOTOS)})") from None


class ImageListSource:
    """A few in-memory uint8 images (sizes may differ), with their paths and labels."""

    def __init__(self, images: Sequence[torch.Tensor], paths: Sequence[str], labels: Sequence[int] | None = None):
        self.images, self.paths = list(images), list(paths)
        self.labels = list(labels) if labels is not None else [-1] * len(self.images)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.images[i], self.labels[i], self.paths[i]


class Repeated:
    """A source repeated to ``n`` items (item i is ``source[i mod len(source)]``)."""

    def __init__(self, source, n: int):
        self.source, self.n = source, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return self.source[i % len(self.source)]


class FileDataModule(TranslationDataModule):
    """Base of the file-based datamodules: preprocessing options and checked, cached file lists.

    Subclasses implement ``eval_source(domain, split)`` on top of :meth:`files` (or :meth:`cached`);
    the default :meth:`check` then builds every source the current stage needs, which lists the
    folders and reads every file header once (errors name the path or the option).
    """

    def __init__(self, preprocess: str = "resize_and_crop", load_size: int = 286, crop_size: int = 256,
                 flip: bool = True, channels: int = 3, stride: int = 4, center_crop: int = 178,
                 skip_bad_files: bool = False, batch_size: int = 1, eval_batch_size: int | None = None,
                 num_workers: int = 0, pin_memory: bool = False, persistent_workers: bool = True,
                 decode_cache: str = "none"):
        super().__init__(batch_size, eval_batch_size, num_workers, pin_memory, persistent_workers)
        self.preprocess, self.load_size, self.crop_size = preprocess, load_size, crop_size
        self.decode_cache = decode_cache
        self.flip, self.channels, self.stride, self.center_crop = flip, channels, stride, center_crop
        self.skip_bad_files = skip_bad_files
        self._stage: str | None = None
        self._cache: dict = {}
        #: (height, width) of every checked file (of each half for combined A|B files), from headers
        self.header_sizes: dict[Path, tuple[int, int]] = {}

    # -- transforms ----------------------------------------------------------------------------
    def transform(self, train: bool, **augment) -> v2.Compose:
        """The configured preprocessing; ``augment``: extra keyword args of ``build_transform``."""
        options = dict(flip=self.flip, channels=self.channels, stride=self.stride, center_crop=self.center_crop)
        return build_transform(self.preprocess, self.load_size, self.crop_size, train=train, **{**options, **augment})

    def eval_transform(self) -> v2.Compose:
        return self.transform(train=False)

    def training_source(self, source, train: bool, what: str, **augment):
        """(source, transform) of a split: with ``decode_cache`` (memory or disk) and ``train``, the
        source decoded once through the deterministic start of the preprocessing and the transform's
        random rest (``datamodules.decoded``); otherwise ``source`` and the whole transform."""
        if self.decode_cache == "none" or not train:
            return source, self.transform(train, **augment)
        from datamodules.decoded import decode_all

        pre = self.transform(train, part="pre", **augment)
        return (decode_all(source, pre, self.decode_cache, f"{self.name}-{what}", self.skip_bad_files),
                self.transform(train, part="post", **augment))

    def min_size(self) -> tuple[int, int] | None:
        return min_input_size(self.preprocess, self.load_size, self.crop_size, self.center_crop)

    def input_shapes(self) -> list[tuple[str, str, tuple[int, ...]]]:
        """The extreme images (least height, width and aspect either way) of the checked files, as
        the networks get them: their size through the preprocessing, for every domain."""
        if not self.header_sizes:
            return super().input_shapes()
        sizes = list(self.header_sizes.items())
        extremes = {min(sizes, key=key)[0] for key in (lambda s: s[1][0], lambda s: s[1][1],
                                                       lambda s: s[1][0] / s[1][1], lambda s: s[1][1] / s[1][0])}
        t = self.eval_transform()
        shapes = [(str(f), tuple(apply(t, torch.zeros(self.channels, *self.header_sizes[f], dtype=torch.uint8)).shape))
                  for f in sorted(extremes)]
        return [(d, f, shape) for d in self.domains for f, shape in shapes]

    # -- files ----------------------------------------------------------------------------------
    def cached(self, key, make: Callable):
        """``make()`` once per key (listing and checking a folder is done once per datamodule)."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def checked_files(self, key, listing: Callable[[], list[Path]], what: str) -> list[Path]:
        """``listing()``'s files, headers checked (readable, large enough), bad ones per skip_bad_files; cached."""
        def make():
            sizes = read_sizes(listing(), self.skip_bad_files, what)
            check_min_size(sizes, self.min_size())
            self.header_sizes.update(sizes)
            return list(sizes)
        return self.cached(key, make)

    def files(self, folder: Path, what: str) -> list[Path]:
        """The images of ``folder``, checked as in :meth:`checked_files`; ``what`` starts every error."""
        return self.checked_files(("folder", str(folder)), lambda: list_images(folder, what), what)

    # -- checks ---------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        self._stage = stage
        super().setup(stage)

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits the current stage reads (all three before ``setup`` or for an unknown stage)."""
        return STAGE_SPLITS.get(self._stage or "", ("train", "val", "test"))

    def check_options(self) -> None:
        """Preprocessing options: a UserError naming the option."""
        from datamodules.decoded import MODES

        if self.decode_cache not in MODES:
            raise UserError(f"data.decode_cache must be one of {', '.join(MODES)}, got {self.decode_cache!r}")
        for opt in ("load_size", "crop_size", "stride", "batch_size"):
            if getattr(self, opt) < 1:
                raise UserError(f"data.{opt} must be a positive integer, got {getattr(self, opt)}")
        build_transform(self.preprocess, self.load_size, self.crop_size, channels=self.channels)
        if self.preprocess in ("resize_and_crop", "scale_width_and_crop") and self.crop_size > self.load_size:
            raise UserError(f"data.crop_size ({self.crop_size}) is larger than data.load_size ({self.load_size}) "
                            f"with preprocess: {self.preprocess}; the crop must fit in the resized image")

    def check(self) -> None:
        """Options, then every source the stage needs (missing folders, empty domains, bad files)."""
        self.check_options()
        for split in self.splits:
            for domain in self.domains:
                self.eval_source(domain, split)


class UnpairedFolders(FileDataModule):
    """CycleGAN layout: ``root/trainA``, ``root/trainB``, ``root/testA``, ``root/testB``.

    Validation reads ``valA``/``valB`` when ``root/valA`` exists, else ``testA``/``testB``. Training
    pairs each A image with a random B image, drawn afresh every epoch; an epoch has as many items
    as the larger domain. Validation/test pair A[i] with B[i mod |B|] (deterministic).

    Args:
        root: the dataset folder (its name is the dataset name).
        preprocess: see ``datamodules.transforms.PREPROCESS``.
        load_size: resize size before cropping (``resize_and_crop``) or target width (``scale_width*``).
        crop_size: the training crop (and the resize size of ``resize``/``center_crop_resize``).
        flip: random horizontal flip when training.
        channels: 1 or 3; images are converted to this, whatever the files hold.
        stride: height and width are rounded to a multiple of this (the network's downsampling).
        center_crop: the square cut first by ``center_crop_resize``.
        skip_bad_files: skip unreadable files with one warning and a count instead of failing.
        blur: the domains whose images get a 3x3 Gaussian blur before everything else, at training and
            evaluation (UNIT's SYNTHIA: ``[A]``).
        batch_size, eval_batch_size, num_workers, pin_memory, persistent_workers: the loaders.
        decode_cache: ``memory`` or ``disk``: decode and resize the training files once
            (``datamodules.decoded``; the same batches, for datasets that fit); ``none``: every item
            decodes its file.
    """

    def __init__(self, root: str = "datasets/horse2zebra", preprocess: str = "resize_and_crop", load_size: int = 286,
                 crop_size: int = 256, flip: bool = True, channels: int = 3, stride: int = 4, center_crop: int = 178,
                 skip_bad_files: bool = False, blur: list[str] | None = None, batch_size: int = 1,
                 eval_batch_size: int | None = None, num_workers: int = 0, pin_memory: bool = False,
                 persistent_workers: bool = True, decode_cache: str = "none"):
        super().__init__(preprocess, load_size, crop_size, flip, channels, stride, center_crop, skip_bad_files,
                         batch_size, eval_batch_size, num_workers, pin_memory, persistent_workers, decode_cache)
        self.root = Path(root).expanduser()
        self.name = self.root.name
        self.domains = ("A", "B")
        self.blur = list(blur or [])
        bad = [d for d in self.blur if d not in self.domains]
        if bad:
            raise UserError(f"data.blur: {bad} are not domains of this data; choose from {list(self.domains)}")

    def domain_transform(self, domain: str, train: bool):
        return self.transform(train, blur=domain in self.blur)

    def eval_dataset(self, domain: str, split: str = "test"):
        from datamodules.base import DomainDataset

        return DomainDataset(self.eval_source(domain, split), self.domain_transform(domain, False))

    def eval_source(self, domain: str, split: str = "test") -> FileSource:
        if domain not in self.domains:
            raise UserError(f"unknown domain {domain!r}; this data has {self.domains}")
        folder = self.root / f"{split_prefix(self.root, split, 'A')}{domain}"
        return FileSource(self.files(folder, f"data.root ({split} images of domain {domain})"), self.channels)

    def build(self, split: str) -> UnpairedDataset:
        train = split == "train"
        (a, ta), (b, tb) = (self.training_source(self.eval_source(d, split), train, d, blur=d in self.blur)
                            for d in ("A", "B"))
        return UnpairedDataset(a, b, ta, tb, random_b=train)


class _Combined:
    """Side-by-side A|B files: each file decoded once per item (A then B), then split in halves."""

    def __init__(self, files: Sequence[Path], channels: int):
        self.files, self.channels = list(files), channels
        self._last: tuple[int, torch.Tensor] | None = None

    def half(self, side: int) -> "_Half":
        return _Half(self, side)

    def decode(self, i: int) -> torch.Tensor:
        if self._last is None or self._last[0] != i:
            self._last = (i, load_image(self.files[i], self.channels))
        return self._last[1]


class _Half:
    """The left (side 0) or right (side 1) halves of a :class:`_Combined` as a source."""

    def __init__(self, combined: _Combined, side: int):
        self.combined, self.side = combined, side

    def __len__(self) -> int:
        return len(self.combined.files)

    def __getitem__(self, i: int):
        img = self.combined.decode(i)
        w = img.shape[-1] // 2
        return img[..., self.side * w:(self.side + 1) * w], -1, str(self.combined.files[i])


LAYOUTS = ("auto", "combined", "two_folders")


class AlignedFolders(FileDataModule):
    """Aligned pairs (pix2pix): A and B get the same random crop and flip.

    Two layouts (``layout: auto`` picks ``two_folders`` when ``root/trainA``, ``root/valA`` or
    ``root/testA`` exists, else ``combined``):
      - ``combined``: ``root/train``, ``root/val``, ``root/test`` hold images with A on the left half
        and B on the right (the pix2pix datasets: facades are 512x256); the width must be twice the
        height. A and B paths are both the combined file's.
      - ``two_folders``: ``root/trainA/x.png`` pairs with ``root/trainB/x.png`` (same file stem; the
        extensions may differ); every file must have its partner, of the same size.

    Args:
        root: the dataset folder (its name is the dataset name).
        direction: ``AtoB`` or ``BtoA`` (swaps what the batch calls A and B).
        layout: ``auto``, ``combined`` or ``two_folders``.
        preprocess, load_size, crop_size, flip, channels, stride, center_crop, skip_bad_files, batch_size,
        eval_batch_size, num_workers, pin_memory, persistent_workers: as in :class:`UnpairedFolders`.
    """

    def __init__(self, root: str = "datasets/facades", direction: str = "AtoB", layout: str = "auto",
                 preprocess: str = "resize_and_crop", load_size: int = 286, crop_size: int = 256, flip: bool = True,
                 channels: int = 3, stride: int = 4, center_crop: int = 178, skip_bad_files: bool = False,
                 batch_size: int = 1, eval_batch_size: int | None = None, num_workers: int = 0,
                 pin_memory: bool = False, persistent_workers: bool = True):
        super().__init__(preprocess, load_size, crop_size, flip, channels, stride, center_crop, skip_bad_files,
                         batch_size, eval_batch_size, num_workers, pin_memory, persistent_workers)
        self.root = Path(root).expanduser()
        self.direction, self.layout = direction, layout
        self.name = self.root.name
        self.domains = ("A", "B")

    def check_options(self) -> None:
        super().check_options()
        if self.direction not in ("AtoB", "BtoA"):
            raise UserError(f"data.direction must be AtoB or BtoA, got {self.direction!r}")
        if self.layout not in LAYOUTS:
            raise UserError(f"data.layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")

    def resolved_layout(self) -> str:
        if self.layout != "auto":
            return self.layout
        require_dir(self.root, "data.root")
        if any((self.root / f"{s}A").is_dir() for s in ("train", "val", "test")):
            return "two_folders"
        if any((self.root / s).is_dir() for s in ("train", "val", "test")):
            return "combined"
        raise UserError(f"data.root: {self.root} has neither the combined layout (train/, val/, test/ holding "
                        "A|B images) nor the two-folder layout (trainA/ and trainB/)")

    def _combined(self, split: str) -> tuple[_Half, _Half]:
        folder = self.root / split_prefix(self.root, split)
        what = f"data.root ({split} A|B images)"
        sizes = read_sizes(list_images(folder, what), self.skip_bad_files, what)
        for f, (h, w) in sizes.items():
            if w != 2 * h:
                raise UserError(f"aligned image {f} is {w}x{h} (WxH): a combined A|B image must be twice as wide "
                                "as high (e.g. 512x256); use layout: two_folders for separate A and B files")
        halves = {f: (h, w // 2) for f, (h, w) in sizes.items()}
        check_min_size(halves, self.min_size(), part=" (each half)")
        self.header_sizes.update(halves)
        pair = _Combined(list(sizes), self.channels)
        return pair.half(0), pair.half(1)

    def _two_folders(self, split: str) -> tuple[FileSource, FileSource]:
        s = split_prefix(self.root, split, "A")
        by_stem = {}
        for d in ("A", "B"):
            what = f"data.root ({split} images of domain {d})"
            files = list_images(self.root / f"{s}{d}", what)
            stems: dict[str, Path] = {}
            for f in files:
                if f.stem in stems:
                    raise UserError(f"{what}: two files with the same name: {stems[f.stem]} and {f}")
                stems[f.stem] = f
            by_stem[d] = stems
        a, b = by_stem["A"], by_stem["B"]
        only_a, only_b = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
        if only_a or only_b:
            lines = [f"{len(names)} in {self.root / (s + d)} without a partner in {self.root / (s + o)}: "
                     + ", ".join(str(m[n].name) for n in names[:5]) + (" ..." if len(names) > 5 else "")
                     for names, d, o, m in ((only_a, "A", "B", a), (only_b, "B", "A", b)) if names]
            raise UserError("data.root: unmatched paired files (A and B pair by file name): " + "; ".join(lines))
        stems = sorted(a)
        what = f"data.root ({split} pairs)"
        sa = read_sizes([a[n] for n in stems], self.skip_bad_files, what)
        sb = read_sizes([b[n] for n in stems], self.skip_bad_files, what)
        keep = [n for n in stems if a[n] in sa and b[n] in sb]
        if not keep:
            raise UserError(f"{what}: no pair with both files readable in {self.root}")
        for n in keep:
            if sa[a[n]] != sb[b[n]]:
                (ha, wa), (hb, wb) = sa[a[n]], sb[b[n]]
                raise UserError(f"aligned pair differs in size: {a[n]} is {wa}x{ha} but {b[n]} is {wb}x{hb} (WxH)")
        check_min_size({a[n]: sa[a[n]] for n in keep}, self.min_size())
        self.header_sizes.update({a[n]: sa[a[n]] for n in keep})
        return (FileSource([a[n] for n in keep], self.channels), FileSource([b[n] for n in keep], self.channels))

    def pairs(self, split: str):
        """The (A, B) sources of a split, in the configured direction."""
        def make():
            self.check_options()
            make_split = self._combined if self.resolved_layout() == "combined" else self._two_folders
            return make_split(split)
        a, b = self.cached(("pairs", split), make)
        return (a, b) if self.direction == "AtoB" else (b, a)

    def eval_source(self, domain: str, split: str = "test"):
        if domain not in self.domains:
            raise UserError(f"unknown domain {domain!r}; this data has {self.domains}")
        return self.pairs(split)[self.domains.index(domain)]

    def build(self, split: str) -> PairedDataset:
        return PairedDataset(*self.pairs(split), self.transform(split == "train"))
