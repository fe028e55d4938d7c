"""One folder per domain (AFHQ, AnimalFaces, StarGAN v2 layout): ``root/<split>/<domain>/*.png``.

A batch is ``{"image", "label", "path"}`` (label = the domain's index in ``domains``, or -1 where
hidden) and, with ``second_view``, ``"view"``: the same image augmented a second time,
independently, as TUNIT's contrastive and mutual-information losses need. The view's augmentation
defaults to TUNIT's (affine +-20 degrees, translate 0.1, shear 10; resized crop 0.9-1.1; colour
jitter 0.4 / hue 0.125; flip); the main image gets only the preprocessing and flip.

Labels in training batches follow ``labelled`` and ``label_fraction`` (semi-supervised: in every
domain, that fraction of the images keeps its label, chosen from ``seed``; at least one image per
domain when the fraction is above 0). Validation, test and evaluation sources always carry the
true domain label: the domain is known by construction there, and metrics use it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datamodules.base import DomainDataset, FileSource
from datamodules.folders import FileDataModule, split_prefix
from datamodules.transforms import apply
from lit_i2i.errors import UserError


class ViewDataset(DomainDataset):
    """:class:`DomainDataset` plus ``"view"``: a second, independently augmented view of the image."""

    def __init__(self, source, transform, view_transform):
        super().__init__(source, transform)
        self.tv = view_transform

    def __getitem__(self, i: int) -> dict:
        x, label, path = self.source[i]
        return {"image": apply(self.t, x), "view": apply(self.tv, x), "label": label, "path": path}


class MultiDomainFolders(FileDataModule):
    """``root/train/<domain>/...`` and ``root/test/<domain>/...`` (val: ``root/val`` if present, else test).

    Args:
        root: the dataset folder (its name is the dataset name).
        domains: the domain folders to use, in this order (labels follow it); default: every folder
            under ``root/train``, sorted.
        labelled: False reports every training label as -1 (unsupervised, TUNIT).
        label_fraction: keep the training labels of only this fraction of each domain's images.
        seed: chooses which images keep their labels.
        second_view: add ``"view"`` to training batches.
        view_rotation, view_translate, view_shear, view_scale, view_color_jitter, view_hue: the second
            view's augmentation (0 / None turns one off).
        preprocess, load_size, crop_size, flip, channels, stride, center_crop, skip_bad_files, batch_size,
        eval_batch_size, num_workers, pin_memory, persistent_workers: as in ``folders.UnpairedFolders``.
    """

    def __init__(self, root: str = "datasets/afhq", domains: list[str] | None = None, labelled: bool = True,
                 label_fraction: float = 1.0, seed: int = 0, second_view: bool = False,
                 view_rotation: float = 20.0, view_translate: float = 0.1, view_shear: float = 10.0,
                 view_scale: tuple[float, float] | None = (0.9, 1.1), view_color_jitter: float = 0.4,
                 view_hue: float = 0.125, preprocess: str = "resize", load_size: int = 128, crop_size: int = 128,
                 flip: bool = True, channels: int = 3, stride: int = 4, center_crop: int = 178,
                 skip_bad_files: bool = False, batch_size: int = 8, eval_batch_size: int | None = None,
                 num_workers: int = 0, pin_memory: bool = False, persistent_workers: bool = True):
        super().__init__(preprocess, load_size, crop_size, flip, channels, stride, center_crop, skip_bad_files,
                         batch_size, eval_batch_size, num_workers, pin_memory, persistent_workers)
        self.root = Path(root).expanduser()
        self.name = self.root.name
        self._domains = tuple(domains) if domains is not None else None
        self.labelled, self.label_fraction, self.seed = labelled, label_fraction, seed
        self.second_view = second_view
        self.view_augment = dict(rotation=view_rotation, translate=view_translate, shear=view_shear,
                                 scale=view_scale, color_jitter=view_color_jitter, hue=view_hue)

    @property
    def domains(self) -> tuple[str, ...]:
        """The domain names (folders of ``root/train``, sorted, or the ``domains`` option)."""
        def make():
            train = self.root / split_prefix(self.root, "train")
            found = sorted(p.name for p in train.iterdir() if p.is_dir() and not p.name.startswith("."))
            if self._domains is None:
                if not found:
                    raise UserError(f"data.root: no domain folders in {train} (expected {train}/<domain>/*.png)")
                return tuple(found)
            missing = [d for d in self._domains if d not in found]
            if missing:
                raise UserError(f"data.domains: no folder {train / missing[0]}; the domains there are: "
                                f"{', '.join(found) or 'none'}")
            if len(set(self._domains)) != len(self._domains):
                raise UserError(f"data.domains lists a domain twice: {list(self._domains)}")
            return self._domains
        return self.cached("domains", make)

    def check_options(self) -> None:
        super().check_options()
        if not 0.0 <= self.label_fraction <= 1.0:
            raise UserError(f"data.label_fraction must be in [0, 1], got {self.label_fraction}")

    def eval_source(self, domain: str, split: str = "test") -> FileSource:
        if domain not in self.domains:
            raise UserError(f"unknown domain {domain!r}; this data has {', '.join(self.domains)}")
        folder = self.root / split_prefix(self.root, split) / domain
        files = self.files(folder, f"data.root ({split} images of domain {domain!r})")
        return FileSource(files, self.channels, [self.domains.index(domain)] * len(files))

    def train_labels(self, n_per_domain: list[int]) -> list[int]:
        """Training labels for domains of these sizes: true, or -1 where hidden (labelled, label_fraction)."""
        rng = np.random.default_rng(self.seed)
        labels = []
        for k, n in enumerate(n_per_domain):
            keep = np.zeros(n, dtype=bool)
            if self.labelled and self.label_fraction > 0:
                m = n if self.label_fraction >= 1 else max(1, int(round(self.label_fraction * n)))
                keep[rng.permutation(n)[:m]] = True
            labels += [k if kept else -1 for kept in keep]
        return labels

    def build(self, split: str) -> DomainDataset:
        sources = [self.eval_source(d, split) for d in self.domains]
        files = [f for s in sources for f in s.files]
        if split != "train":
            labels = [lab for s in sources for lab in s.labels]
            return DomainDataset(FileSource(files, self.channels, labels), self.eval_transform())
        source = FileSource(files, self.channels, self.train_labels([len(s) for s in sources]))
        if self.second_view:
            return ViewDataset(source, self.transform(True), self.transform(True, **self.view_augment))
        return DomainDataset(source, self.transform(True))
