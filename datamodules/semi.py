"""Semi-supervised multi-domain data: a labelled stream beside the unlabelled one.

TUNIT's semi-supervised training (clovaai/tunit ``train/train_semisupervised.py``, data split in
``datasets/datasetgetter.py``) draws two kinds of batches: supervised iterations read batches of the
*labelled* images only (per class the first ``int(p * n)`` training images, at least one), the
unsupervised iterations batches of the *other* images. One Lightning loader gives one batch per
iteration, so both streams travel together: :class:`LabelledStream` walks the unlabelled images and
adds to every item a labelled one drawn at random (``sup_image``, ``sup_view``, ``sup_label``,
``sup_path``); the method uses one part or the other depending on the iteration. The batch contract
is otherwise unchanged (``image``, ``view``, ``label`` -1 where hidden, ``path``).

- :class:`LabelledStream`: the wrapper, for any dataset whose labels are known without decoding.
- :class:`SemiMultiDomainFolders`: :class:`~datamodules.multidomain.MultiDomainFolders` whose training
  set is so wrapped when ``0 < label_fraction < 1`` (AnimalFaces, AFHQ, ... folders).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch.utils.data import Dataset

from datamodules.multidomain import MultiDomainFolders


class LabelledStream(Dataset):
    """Items of ``dataset`` whose ``labels`` are -1 (every item if none is), each with a random
    labelled item of the same dataset under ``sup_<key>`` (a fresh draw per access)."""

    def __init__(self, dataset: Dataset, labels: Sequence[int]):
        self.dataset = dataset
        labels = [int(v) for v in labels]
        self.labelled = [i for i, v in enumerate(labels) if v >= 0]
        if not self.labelled:
            raise ValueError("LabelledStream: no labelled item (label_fraction 0?)")
        self.main = [i for i, v in enumerate(labels) if v < 0] or list(range(len(labels)))

    def __len__(self) -> int:
        return len(self.main)

    def __getitem__(self, i: int) -> dict:
        item = dict(self.dataset[self.main[i]])
        j = self.labelled[int(torch.randint(len(self.labelled), ()))]
        sup = self.dataset[j]
        item.update({f"sup_{k}": v for k, v in sup.items() if k in ("image", "view", "label", "path")})
        return item


class SemiMultiDomainFolders(MultiDomainFolders):
    """:class:`MultiDomainFolders` with the labelled stream of :class:`LabelledStream` in training
    batches when ``0 < label_fraction < 1`` (and ``labelled``); same options otherwise."""

    def build(self, split: str):
        ds = super().build(split)
        if split == "train" and self.labelled and 0.0 < self.label_fraction < 1.0:
            return LabelledStream(ds, ds.source.labels)
        return ds
