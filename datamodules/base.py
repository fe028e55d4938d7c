"""What every datamodule shares: image sources, the dataset shapes of the batch contract, loaders.

A *source* is an indexable collection of images of one domain: ``len(src)`` and ``src[i]`` giving
``(uint8 CHW tensor, label, path)``; label is -1 where unknown. Sources are cheap to hold (a list of
files, or an in-memory tensor for the built-in data) and decode on demand.

Datasets turn sources into the batch dicts of ../shared/DESIGN.md:
  - :class:`UnpairedDataset`: ``{"A", "B", "A_path", "B_path", "A_label", "B_label"}``, A walked in
    order, B drawn at random (the reference code's unaligned dataset); length = the larger domain.
  - :class:`PairedDataset`: ``{"A", "B", "A_path", "B_path", "label"}``, one joint transform.
  - :class:`DomainDataset`: ``{"image", "label", "path"}`` for one domain, no random
    augmentation; this is what evaluation (metrics, ``lit-i2i translate``) reads.

Images are float tensors in [-1, 1]. Under DDP, Lightning inserts its DistributedSampler into the
loaders (``use_distributed_sampler`` is left on), so each rank sees its own shard.

Loaders never start more worker processes than the CPU cores this process may use (a config's
``num_workers: 4`` on a 2-core laptop uses 2, said once), keep them between epochs
(``persistent_workers``, on by default; it matters only with workers), and their workers leave SIGINT/SIGTERM to the
main process (which saves ``last.ckpt`` on them, see ``lit_i2i.core.callbacks.SaveOnSignal``). An image that turns out unreadable only when
decoded (a truncated JPEG whose header is fine) stops the run with one line naming it, also from a
worker process; with ``skip_bad_files: true`` it is skipped with a warning instead (:class:`SkipBad`).
"""

from __future__ import annotations

import os
import signal
import warnings
from pathlib import Path
from typing import Callable, Sequence

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info
from torch.utils.data import DataLoader, Dataset

from datamodules.io import load_image
from datamodules.transforms import apply
from lit_i2i.errors import BadImageError, UserError


def worker_ignores_stop_signals(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: a worker ignores SIGINT and SIGTERM (a terminal's Ctrl+C and a
    cluster's SIGTERM reach the whole process group), so that the main process stops at the end of
    its batch, saves, and shuts the workers down itself; a worker whose parent dies still exits."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def available_cpus() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class TensorSource:
    """In-memory uint8 images (N, C, H, W) with labels; paths are ``builtin://name/i``."""

    def __init__(self, images: torch.Tensor, labels: Sequence[int] | torch.Tensor | None, name: str,
                 index: Sequence[int] | None = None):
        self.images = images
        self.labels = torch.as_tensor(labels) if labels is not None else None
        self.name = name
        self.index = list(index) if index is not None else list(range(len(images)))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        label = int(self.labels[i]) if self.labels is not None else -1
        return self.images[i], label, f"builtin://{self.name}/{self.index[i]}"


class FileSource:
    """Image files decoded on demand; ``labels`` optional (one int per file)."""

    def __init__(self, files: Sequence[str | Path], channels: int = 3, labels: Sequence[int] | None = None):
        self.files = [Path(f) for f in files]
        self.channels = channels
        self.labels = list(labels) if labels is not None else None

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        label = self.labels[i] if self.labels is not None else -1
        return load_image(self.files[i], self.channels), label, str(self.files[i])


class UnpairedDataset(Dataset):
    """Two domains, randomly paired: item i is A[i mod |A|] with a random B (fresh every epoch).

    ``random_b=False`` pairs B[i mod |B|] instead (the reference code's ``serial_batches``).
    """

    def __init__(self, a, b, transform_a: Callable, transform_b: Callable | None = None, random_b: bool = True):
        self.a, self.b = a, b
        self.ta, self.tb = transform_a, transform_b or transform_a
        self.random_b = random_b

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def __getitem__(self, i: int) -> dict:
        xa, la, pa = self.a[i % len(self.a)]
        j = int(torch.randint(len(self.b), ())) if self.random_b else i % len(self.b)
        xb, lb, pb = self.b[j]
        return {"A": apply(self.ta, xa), "B": apply(self.tb, xb), "A_path": pa, "B_path": pb,
                "A_label": la, "B_label": lb}


class PairedDataset(Dataset):
    """Aligned pairs: A[i] with B[i], the same random crop/flip applied to both."""

    def __init__(self, a, b, transform: Callable):
        assert len(a) == len(b)
        self.a, self.b, self.t = a, b, transform

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, i: int) -> dict:
        xa, la, pa = self.a[i]
        xb, lb, pb = self.b[i]
        if xa.shape[0] != xb.shape[0]:  # joint transforms need equal channel counts
            c = max(xa.shape[0], xb.shape[0])
            xa, xb = xa.expand(c, -1, -1), xb.expand(c, -1, -1)
        ya, yb = apply(self.t, xa, xb)
        return {"A": ya, "B": yb, "A_path": pa, "B_path": pb, "label": la if la >= 0 else lb}


class DomainDataset(Dataset):
    """One domain, deterministic transform: ``{"image", "label", "path"}`` (evaluation, inference)."""

    def __init__(self, source, transform: Callable):
        self.source, self.t = source, transform

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> dict:
        x, label, path = self.source[i]
        return {"image": apply(self.t, x), "label": label, "path": path}


class SkipBad(Dataset):
    """``dataset`` whose items that hit an unreadable image (:class:`BadImageError`) are replaced by
    the next readable item (``skip=True``, a warning per file) or raise a one-line UserError saying
    how to skip such files."""

    def __init__(self, dataset: Dataset, skip: bool):
        self.dataset, self.skip = dataset, skip
        self.bad: set[str] = set()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        for k in range(len(self.dataset)):
            try:
                return self.dataset[(i + k) % len(self.dataset)]
            except BadImageError as e:
                if not self.skip:
                    raise BadImageError(f"{e} (set skip_bad_files: true to skip such files with a warning)",
                                        e.path) from None
                if e.path not in self.bad:
                    self.bad.add(e.path)
                    warnings.warn(f"skipped an unreadable image: {e}", stacklevel=2)
        raise UserError(f"every item of the data is unreadable (e.g. {sorted(self.bad)[:1]})")


class TranslationDataModule(pl.LightningDataModule):
    """Base of every datamodule: loader options, and the evaluation interface metrics rely on.

    Subclasses implement :meth:`build` (the dataset of a split, for training/validation batches)
    and :meth:`eval_source` (one domain's source for a split, for metrics and inference), set
    ``self.domains`` and, where known, ``self.name`` (used for run tags and feature-cache keys).
    """

    name: str = "data"
    domains: tuple[str, ...] = ("A", "B")

    def __init__(self, batch_size: int = 1, eval_batch_size: int | None = None, num_workers: int = 0,
                 pin_memory: bool = False, persistent_workers: bool = True, drop_last: bool = True):
        super().__init__()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or max(batch_size, 16)
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.drop_last = drop_last
        self._sets: dict[str, Dataset] = {}

    # -- to implement -------------------------------------------------------------------------
    def build(self, split: str) -> Dataset:  # pragma: no cover - abstract
        raise NotImplementedError

    def eval_source(self, domain: str, split: str = "test"):  # pragma: no cover - abstract
        raise NotImplementedError

    def eval_transform(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def check(self) -> None:
        """Validate the input (paths, files, options); raise UserError. Called before training."""

    # -- shared ---------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        self.check()

    def dataset(self, split: str) -> Dataset:
        if split not in self._sets:
            self._sets[split] = self.build(split)
        return self._sets[split]

    def input_shapes(self) -> list[tuple[str, str, tuple[int, ...]]]:
        """(batch key, path, (C, H, W)) of the images the networks will get in training, at least the
        smallest ones: what the CLI checks against the model before training. Here: the images of
        the first training item (``A``/``B``, or ``image``); file-based datamodules look at every
        file's header instead."""
        item = self.dataset("train")[0]
        return [(k, str(item.get(f"{k}_path", item.get("path", "?"))), tuple(v.shape))
                for k, v in item.items() if torch.is_tensor(v) and v.ndim == 3]

    def eval_dataset(self, domain: str, split: str = "test") -> DomainDataset:
        """One domain of a split, un-augmented: what metrics and ``lit-i2i translate`` read."""
        return DomainDataset(self.eval_source(domain, split), self.eval_transform())

    def workers(self) -> int:
        """``num_workers``, at most the CPU cores available (said once when it is lowered)."""
        n = min(self.num_workers, available_cpus())
        if n < self.num_workers and not getattr(self, "_said_workers", False):
            self._said_workers = True
            rank_zero_info(f"data: num_workers {self.num_workers} is more than the {n} CPU core(s) available; "
                           f"using {n} worker processes")
        return n

    def loader(self, ds: Dataset, train: bool) -> DataLoader:
        workers = self.workers()
        return DataLoader(SkipBad(ds, getattr(self, "skip_bad_files", False)),
                          batch_size=self.batch_size if train else self.eval_batch_size, shuffle=train,
                          drop_last=train and self.drop_last and len(ds) >= self.batch_size,
                          num_workers=workers, pin_memory=self.pin_memory,
                          persistent_workers=self.persistent_workers and workers > 0,
                          worker_init_fn=worker_ignores_stop_signals if workers else None)

    def train_dataloader(self) -> DataLoader:
        return self.loader(self.dataset("train"), train=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader(self.dataset("val"), train=False)

    def test_dataloader(self) -> DataLoader:
        return self.loader(self.dataset("test"), train=False)

    def predict_dataloader(self) -> DataLoader:
        return self.loader(self.eval_dataset(self.domains[0], "test"), train=False)
