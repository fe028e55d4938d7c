"""Exactly two images, A and B: the data of structural analogy from a single image pair.

Each image is a file path or a built-in photo name (``datamodules.builtin.PHOTOS``), resized once
to ``size`` x ``size`` (the official code's square 220x220) or, with ``keep_aspect``, so that its
longer side is ``size``. Training repeats the pair: an epoch has ``steps_per_epoch`` batches of
``batch_size`` copies; validation and test hold the pair once. Batches are the unpaired dict
(``{"A", "B", "A_path", "B_path"}``, plus labels -1). No augmentation unless ``flip`` or ``crop``
(random ``crop`` x ``crop`` patches of the two images for training, e.g. a CycleGAN trained on the
pair; evaluation still sees the whole images).
"""

from __future__ import annotations

from pathlib import Path

from torchvision.transforms import v2

from datamodules.base import UnpairedDataset
from datamodules.folders import FileDataModule, ImageListSource, Repeated, load_named_image
from datamodules.transforms import build_transform
from lit_i2i.errors import UserError


class SinglePair(FileDataModule):
    """One A image and one B image, repeated.

    Args:
        a: the A image: a file path or a built-in photo name.
        b: the B image: a file path or a built-in photo name.
        size: the side of the resized (square) images, or their longer side with ``keep_aspect``.
        keep_aspect: keep each image's aspect ratio instead of squashing it to a square.
        steps_per_epoch: training batches per epoch.
        flip: random horizontal flip when training.
        crop: train on random ``crop`` x ``crop`` crops of the (resized) images; None: the whole images.
        channels: 1 or 3.
        stride: height and width are rounded to a multiple of this.
        batch_size, eval_batch_size, num_workers, pin_memory, persistent_workers: the loaders.
    """

    def __init__(self, a: str = "chelsea", b: str = "coffee", size: int = 220, keep_aspect: bool = False,
                 steps_per_epoch: int = 100, flip: bool = False, crop: int | None = None, channels: int = 3,
                 stride: int = 1, batch_size: int = 1, eval_batch_size: int | None = None, num_workers: int = 0,
                 pin_memory: bool = False, persistent_workers: bool = True):
        super().__init__("none", size, size, flip, channels, stride, size, False, batch_size, eval_batch_size,
                         num_workers, pin_memory, persistent_workers)
        self.a, self.b, self.size, self.keep_aspect = a, b, size, keep_aspect
        self.steps_per_epoch = steps_per_epoch
        self.crop = crop
        self.name = f"pair-{Path(a).stem}-{Path(b).stem}"
        self.domains = ("A", "B")

    def check_options(self) -> None:
        super().check_options()
        if self.steps_per_epoch < 1:
            raise UserError(f"data.steps_per_epoch must be at least 1, got {self.steps_per_epoch}")
        if self.crop is not None and not 1 <= self.crop <= self.size:
            raise UserError(f"data.crop must be between 1 and data.size ({self.size}), got {self.crop}")

    def transform(self, train: bool, **augment):
        if train and self.crop is not None:
            return build_transform("crop", self.size, self.crop, train=True, flip=self.flip, channels=self.channels,
                                   stride=self.stride, **augment)
        return super().transform(train, **augment)

    def _target(self, h: int, w: int) -> list[int]:
        if not self.keep_aspect:
            return [self.size, self.size]
        s = self.size / max(h, w)
        return [max(1, round(h * s)), max(1, round(w * s))]

    def eval_source(self, domain: str, split: str = "test") -> ImageListSource:
        if domain not in self.domains:
            raise UserError(f"unknown domain {domain!r}; this data has {self.domains}")

        def make():
            self.check_options()
            spec = self.a if domain == "A" else self.b
            img, path = load_named_image(spec, self.channels, f"data.{domain.lower()}")
            img = v2.functional.resize(img, self._target(*img.shape[-2:]), antialias=True)
            if self.crop is not None and self.crop > min(img.shape[-2:]):
                raise UserError(f"data.crop ({self.crop}) is larger than {path} at its loaded size "
                                f"{img.shape[-1]}x{img.shape[-2]} (keep_aspect); lower data.crop or data.size")
            return ImageListSource([img], [path])
        return self.cached(("image", domain), make)

    def build(self, split: str) -> UnpairedDataset:
        n = self.steps_per_epoch * self.batch_size if split == "train" else 1
        return UnpairedDataset(Repeated(self.eval_source("A", split), n), Repeated(self.eval_source("B", split), n),
                               self.transform(split == "train"), random_b=False)
