"""One-shot translation data (OST): domain A is one image (or k), domain B a full set.

Domain A comes from (first match wins):
  - ``a_images``: image files and/or built-in photo names (``datamodules.builtin.PHOTOS``);
  - ``a_root``: a folder of A's training images, sorted by name, of which the images at positions
    ``a_index`` (or ``k`` drawn with ``shot_seed``) are used: OST's image code, ``--start 0
    --max_items_A 1`` (the first file after sorting) is ``a_index: [0]``;
  - ``a_dataset``: k images of a real digit dataset (``mnist``, ``svhn``, ``usps``: torchvision's files
    under ``dataset_root``, fetched with ``download: true``), taken from its training split;
  - ``a_builtin``: k images of a built-in domain (``digits``), taken from its A-half training split;
    (both: positions ``a_index``, or ``k`` positions drawn with ``seed``).
Domain B comes from ``b_root`` (a folder of images), else ``b_dataset`` (a real digit dataset's
training split), else ``b_builtin`` (a built-in domain, its B half: no digit of A's half appears in B).

Every training item re-augments the A image(s) afresh (random zoom-crop, rotation, flip, colour
jitter; each can be switched off, and ``augment: false`` switches them all off, OST's ablation);
B gets the usual preprocessing (and ``b_rotation``). An epoch has as many items as B. Batches are the unpaired dict
``{"A", "B", "A_path", "B_path", "A_label", "B_label"}``.

Evaluation: ``eval_source("A", "test")`` is the held-out test set of A's domain when there is one
(``a_test_root``, the dataset's test split, or the built-in domain's A-half test split: OST's
translation accuracy translates unseen A digits), else the A image(s) themselves. The augmentation
defaults follow OST's image code (random crop, +-7 degree rotation) except the flip, off by default
because it changes a digit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datamodules.base import FileSource, UnpairedDataset
from datamodules.builtin import DOMAINS
from datamodules.digit_datasets import DATASETS, digit_source, take
from datamodules.folders import FileDataModule, ImageListSource, load_named_image
from datamodules.io import check_min_size, list_images
from lit_i2i.errors import UserError


class OneShot(FileDataModule):
    """One (or k) freshly augmented A image(s) against a folder or built-in domain B.

    Args:
        a_images: A as image files and/or built-in photo names (precedence over ``a_root``, ``a_dataset``,
            ``a_builtin``).
        a_root: A as positions in a folder of training images sorted by file name (precedence over
            ``a_dataset``, ``a_builtin``); ``a_index`` or ``k`` with ``shot_seed`` pick them.
        a_dataset: A as images of a real digit dataset (``mnist``, ``svhn``, ``usps``; precedence over
            ``a_builtin``).
        a_builtin: A as images of a built-in domain (``digits``, ``colored-digits``, ...).
        a_index: which images of A's training split or ``a_root`` (positions); default: ``k`` drawn with
            ``shot_seed``.
        k: how many A images to draw from ``a_root``/``a_dataset``/``a_builtin`` when ``a_index`` is not given.
        a_test_root: a folder of held-out A images for evaluation (default: the dataset's or built-in test
            split, or A itself).
        b_root: B as a folder of training images (takes precedence over ``b_dataset``, ``b_builtin``).
        b_test_root: a folder of B images for validation/test (default: ``b_root``).
        b_dataset: B as a real digit dataset (train split for training, test split for validation/test).
        b_builtin: B as a built-in domain (its B half).
        dataset_root: the folder of torchvision's dataset files (``datamodules.digit_datasets``).
        download: let torchvision fetch missing dataset files (needs network).
        seed: the built-in rendering seed and the draw of the A images.
        shot_seed: draw the A images with this seed instead (the rendering keeps ``seed``): a table's seeds
            vary the single sample while every run sees the same rendered domains.
        augment: False gives the A image(s) no random augmentation at all.
        a_scale: random zoom of A (area range of a random resized crop); None: off.
        a_rotation: random rotation of A, in degrees; 0: off.
        a_flip: random horizontal flip of A.
        a_color_jitter: brightness/contrast/saturation jitter of A; 0: off.
        b_rotation: random rotation of B, in degrees (OST's image code rotates both domains by +-7); 0: off.
        preprocess, load_size, crop_size, flip (of B), channels, stride, center_crop, skip_bad_files, batch_size,
        eval_batch_size, num_workers, pin_memory, persistent_workers: as in ``folders.UnpairedFolders``.
    """

    def __init__(self, a_images: list[str] | None = None, a_builtin: str | None = "digits",
                 a_index: list[int] | None = None, k: int = 1, a_test_root: str | None = None,
                 b_root: str | None = None, b_test_root: str | None = None, b_builtin: str | None = "colored-digits",
                 a_dataset: str | None = None, b_dataset: str | None = None, dataset_root: str = "datasets/digits",
                 download: bool = False, seed: int = 0, shot_seed: int | None = None, augment: bool = True,
                 a_scale: tuple[float, float] | None = (0.8, 1.0),
                 a_rotation: float = 7.0, a_flip: bool = False, a_color_jitter: float = 0.0,
                 b_rotation: float = 0.0, preprocess: str = "resize", load_size: int = 32, crop_size: int = 32, flip: bool = False,
                 channels: int = 3, stride: int = 4, center_crop: int = 178, skip_bad_files: bool = False,
                 batch_size: int = 1, eval_batch_size: int | None = None, num_workers: int = 0,
                 pin_memory: bool = False, persistent_workers: bool = True, a_root: str | None = None):
        super().__init__(preprocess, load_size, crop_size, flip, channels, stride, center_crop, skip_bad_files,
                         batch_size, eval_batch_size, num_workers, pin_memory, persistent_workers)
        self.a_images = list(a_images) if a_images else None
        self.a_root = Path(a_root).expanduser() if a_root and not self.a_images else None
        self.a_builtin, self.a_index, self.k = a_builtin, list(a_index) if a_index is not None else None, k
        self.a_test_root = Path(a_test_root).expanduser() if a_test_root else None
        self.b_root = Path(b_root).expanduser() if b_root else None
        self.b_test_root = Path(b_test_root).expanduser() if b_test_root else self.b_root
        self.b_builtin, self.seed = b_builtin, seed
        self.shot_seed = seed if shot_seed is None else shot_seed
        self.a_dataset, self.b_dataset, self.dataset_root, self.download = a_dataset, b_dataset, dataset_root, download
        self.augment = augment
        self.a_augment = dict(scale=a_scale, rotation=a_rotation, flip=a_flip, color_jitter=a_color_jitter)
        self.b_rotation = b_rotation
        a_name = (Path(self.a_images[0]).stem if self.a_images else self.a_root.name if self.a_root
                  else (a_dataset or a_builtin or "none"))
        b_name = self.b_root.name if self.b_root else (b_dataset or b_builtin or "none")
        self.name = f"oneshot-{a_name}2{b_name}"
        self.domains = ("A", "B")

    def check_options(self) -> None:
        super().check_options()
        if not self.a_images and not self.a_root and not self.a_dataset and not self.a_builtin:
            raise UserError("data.a_images, data.a_root, data.a_dataset or data.a_builtin must be given (the one-shot "
                            "domain A)")
        if not self.b_root and not self.b_dataset and not self.b_builtin:
            raise UserError("data.b_root, data.b_dataset or data.b_builtin must be given (the domain B)")
        for opt, d, used in (("data.a_dataset", self.a_dataset, not (self.a_images or self.a_root)),
                             ("data.b_dataset", self.b_dataset, not self.b_root)):
            if used and d and d not in DATASETS:
                raise UserError(f"{opt}: unknown digit dataset {d!r}; choose one of {', '.join(DATASETS)}")
        a_named = bool(self.a_images or self.a_root)
        for opt, d, used in (("data.a_builtin", self.a_builtin, not a_named and not self.a_dataset),
                             ("data.b_builtin", self.b_builtin, not self.b_root and not self.b_dataset)):
            if used and d not in DOMAINS:
                raise UserError(f"{opt}: unknown built-in domain {d!r}; choose one of {', '.join(DOMAINS)}")
        if self.k < 1:
            raise UserError(f"data.k must be at least 1, got {self.k}")

    # -- domain A -------------------------------------------------------------------------------
    def shots(self):
        """The A image(s) of training, before augmentation (a source of k images)."""
        def make():
            self.check_options()
            if self.a_images:
                loaded = [load_named_image(spec, self.channels, f"data.a_images[{i}]")
                          for i, spec in enumerate(self.a_images)]
                check_min_size({p: tuple(x.shape[-2:]) for x, p in loaded}, self.min_size())
                return ImageListSource([x for x, _ in loaded], [p for _, p in loaded])
            if self.a_root is not None:  # sorted by name, as the official code's make_dataset (no header read yet)
                pool, name = list_images(self.a_root, "data.a_root"), f"{self.a_root} (data.a_root)"
            else:
                pool, name = self.digit_domain("A", "train"), self.a_dataset or self.a_builtin
            if self.a_index is not None:
                bad = [i for i in self.a_index if not 0 <= i < len(pool)]
                if bad or not self.a_index:
                    raise UserError(f"data.a_index: positions must be in [0, {len(pool)}) (the {name} "
                                    f"training split), got {self.a_index}")
                idx = list(self.a_index)
            else:
                if self.k > len(pool):
                    raise UserError(f"data.k: {self.k} is more than the {len(pool)} {name} training images")
                idx = np.random.default_rng(self.shot_seed).choice(len(pool), self.k, replace=False).tolist()
            if self.a_root is not None:  # only the chosen files are checked (readable, large enough)
                chosen = [pool[i] for i in idx]
                return FileSource(self.checked_files(("a_root", str(self.a_root), tuple(idx)), lambda: chosen,
                                                     "data.a_root"), self.channels)
            return take(pool, idx)
        return self.cached("shots", make)

    def a_transform(self):
        """Fresh random augmentations of A at every call (or none with ``augment: false``)."""
        return self.transform(True, **self.a_augment) if self.augment else self.eval_transform()

    def builtin_domain(self, domain: str) -> str | None:
        """The domain behind a letter where its evaluation images are a dataset's (``mnist``, ``svhn``,
        ``usps``) or built-in ones (the built-in name): the metrics pick its classifier by this name."""
        if domain == "A" and not self.a_images and self.a_root is None and self.a_test_root is None:
            return self.a_dataset or self.a_builtin
        if domain == "B" and self.b_root is None:
            return self.b_dataset or self.b_builtin
        return None

    def digit_domain(self, domain: str, split: str):
        """A's or B's real dataset (``a_dataset``/``b_dataset``) or else built-in domain, as a source."""
        name = (self.a_dataset or self.a_builtin) if domain == "A" else (self.b_dataset or self.b_builtin)
        return digit_source(name, domain, split, root=self.dataset_root, download=self.download, seed=self.seed,
                            option="data.dataset_root")

    def prepare_data(self) -> None:
        """Rank 0 fetches (and reads) the datasets when ``download`` is on; other ranks then read them."""
        if self.download and (self.a_dataset or self.b_dataset):
            self.check()

    # -- sources ----------------------------------------------------------------------------------
    def eval_source(self, domain: str, split: str = "test"):
        if domain not in self.domains:
            raise UserError(f"unknown domain {domain!r}; this data has {self.domains}")
        self.check_options()
        if domain == "A":
            if split == "train":
                return self.shots()
            if self.a_test_root is not None:
                return FileSource(self.files(self.a_test_root, "data.a_test_root"), self.channels)
            if not self.a_images and self.a_root is None:
                return self.digit_domain("A", split)
            return self.shots()
        if self.b_root is not None:
            test_opt = "data.b_test_root" if self.b_test_root != self.b_root else "data.b_root"
            folder, opt = (self.b_root, "data.b_root") if split == "train" else (self.b_test_root, test_opt)
            return FileSource(self.files(folder, opt), self.channels)
        return self.digit_domain("B", split)

    def build(self, split: str) -> UnpairedDataset:
        if split == "train":
            return UnpairedDataset(self.shots(), self.eval_source("B", "train"), self.a_transform(),
                                   self.transform(True, rotation=self.b_rotation), random_b=True)
        return UnpairedDataset(self.eval_source("A", split), self.eval_source("B", split), self.eval_transform(),
                               random_b=False)
