"""Real digit datasets through torchvision: MNIST, SVHN and USPS as 32x32 RGB uint8 with labels.

``digit_dataset_source(name, root, split)`` reads one split with torchvision's own dataset class
(``torchvision.datasets.MNIST``, ``SVHN``, ``USPS``), decodes it once into memory (cached per
(name, root, split) in the process) and returns a :class:`~datamodules.base.TensorSource`:
  - MNIST 28x28 and USPS 16x16 are resized to 32x32 (bilinear, antialiased) and their grey channel
    repeated to 3 (an expanded view: one copy in memory); SVHN is 32x32 RGB already;
  - labels 0-9 (torchvision maps SVHN's 10 to 0 and USPS's 1-10 to 0-9);
  - splits ``train`` and ``test``; ``val`` is ``test``.

The root is torchvision's layout, so one folder can hold all three (the configs use ``datasets/digits``)::

    root/MNIST/raw/train-images-idx3-ubyte, train-labels-idx1-ubyte,      (uncompressed; torchvision
                   t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte          wants all four for either split)
    root/train_32x32.mat, root/test_32x32.mat                              (SVHN; MD5-checked by torchvision)
    root/usps.bz2, root/usps.t.bz2                                         (USPS, libsvm format)

``download: true`` lets torchvision fetch what is missing (on rank 0 in ``prepare_data``); without
the files, or when the download fails, one UserError names the folder, the files torchvision
expects and the option that fetches them.

:class:`DigitDatasets` is the unpaired datamodule: A and B each a real dataset or a built-in domain
(``datamodules.builtin.DOMAINS``, its A or B half as in ``BuiltinDigits``). The one-shot datamodule
(``datamodules.oneshot.OneShot``) reads the same sources through :func:`digit_source`.
:func:`labelled_arrays` gives a whole split as (images, labels) for training a classifier.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from datamodules.base import DomainDataset, TensorSource, TranslationDataModule, UnpairedDataset
from datamodules.builtin import DOMAINS, SIZE, domain_source
from datamodules.folders import STAGE_SPLITS
from datamodules.transforms import build_transform
from lit_i2i.errors import UserError

DATASETS = ("mnist", "svhn", "usps")
TITLE = {"mnist": "MNIST", "svhn": "SVHN", "usps": "USPS"}
SPLITS = ("train", "val", "test")
FETCH = "--data.init_args.download true"  # the CLI option of the datamodules below that fetches the files
_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                "t10k-labels-idx1-ubyte")
_CACHE: dict[tuple[str, str, str], "DatasetSource"] = {}


class DatasetSource(TensorSource):
    """A digit dataset split in memory; paths are ``torchvision://<name>/<split>/<index>``."""

    def __getitem__(self, i: int):
        x, label, _ = super().__getitem__(i)
        return x, label, f"torchvision://{self.name}/{self.index[i]}"


def take(source: TensorSource, idx) -> TensorSource:
    """The items ``idx`` (positions) of an in-memory source, of the same kind (paths, labels kept)."""
    idx = list(idx)
    if hasattr(source, "subset"):  # a lazily rendered source (street digits) stays lazy
        return source.subset(idx)
    labels = source.labels[idx] if source.labels is not None else None
    return type(source)(source.images[idx], labels, source.name, [source.index[i] for i in idx])


def expected_files(name: str, root: str | Path, split: str) -> list[Path]:
    """The files torchvision's class reads for ``split`` under ``root`` (MNIST: all four, either split)."""
    root = Path(root).expanduser()
    split = "test" if split == "val" else split
    if name == "mnist":
        return [root / "MNIST" / "raw" / f for f in _MNIST_FILES]
    if name == "svhn":
        return [root / f"{split}_32x32.mat"]
    return [root / ("usps.bz2" if split == "train" else "usps.t.bz2")]


def _present(name: str, root: Path, split: str) -> bool:
    if name == "mnist" and all((root / "MNIST" / "processed" / f).is_file() for f in ("training.pt", "test.pt")):
        return True  # torchvision's legacy processed files
    return all(f.is_file() for f in expected_files(name, root, split))


def _files_text(files: list[Path]) -> str:
    first, rest = str(files[0]), [f.name for f in files[1:]]
    return first + "".join(f", {r}" for r in rest)


def _missing_message(name: str, root: Path, split: str, option: str, fetch: str) -> str:
    files = expected_files(name, root, split)
    missing = [f.name for f in files if not f.is_file()]
    where = f"{root} does not exist" if not root.exists() else f"no {TITLE[name]} {split} files in {root}"
    partial = f" (missing: {', '.join(missing)})" if len(missing) < len(files) else ""
    hint = ""
    if name == "mnist" and any(f.with_name(f.name + ".gz").is_file() for f in files):
        hint = " (the .gz files are there: gunzip them, or set download true, which extracts them)"
    elif name == "mnist" and root.name == "MNIST" and (root / "raw").is_dir():
        hint = f" (give the folder above it, {root.parent})"
    return (f"{option}: {where}: torchvision's {TITLE[name]} reads {_files_text(files)}{partial}{hint}; "
            f"fetch them with {fetch} (needs network) or copy them there")


def _decode(name: str, root: Path, split: str, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 1 or 3, h, w) uint8 and labels (N,) through torchvision's class."""
    import torchvision.datasets as tvd

    train, r = split == "train", str(root)
    if name == "mnist":
        ds = tvd.MNIST(r, train=train, download=download)
        return ds.data[:, None], torch.as_tensor(ds.targets).long()
    if name == "svhn":
        ds = tvd.SVHN(r, split=split, download=download)
        return torch.from_numpy(ds.data), torch.from_numpy(ds.labels).long()
    ds = tvd.USPS(r, train=train, download=download)
    return torch.from_numpy(ds.data)[:, None], torch.as_tensor(ds.targets).long()


def to_32x32_rgb(images: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """uint8 (N, 1|3, h, w) -> uint8 (N, 3, 32, 32): bilinear antialiased resize; grey as an expanded view."""
    if images.shape[-2:] != (SIZE, SIZE):
        out = images.new_empty(len(images), images.shape[1], SIZE, SIZE)
        for i in range(0, len(images), chunk):
            out[i:i + chunk] = F.interpolate(images[i:i + chunk].float(), size=(SIZE, SIZE), mode="bilinear",
                                             antialias=True, align_corners=False).round().clamp(0, 255)
        images = out
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images.contiguous()


def digit_dataset_source(name: str, root: str | Path, split: str, download: bool = False, *,
                         option: str = "root", fetch: str = "download=True") -> DatasetSource:
    """One split of MNIST, SVHN or USPS as 32x32 RGB uint8 with labels (read once per process).

    ``option`` and ``fetch`` name, in the errors, the option that gave ``root`` and the one that
    downloads (a datamodule passes ``data.root`` and ``--data.init_args.download true``). Images of
    MNIST and USPS are an expanded view (grey repeated): ``.contiguous()`` before writing in place.
    """
    if name not in DATASETS:
        raise UserError(f"unknown digit dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    split = "test" if split == "val" else split
    root = Path(root).expanduser()
    key = (name, str(root.resolve()), split)
    if key in _CACHE:
        return _CACHE[key]
    if not download and not _present(name, root, split):
        raise UserError(_missing_message(name, root, split, option, fetch))
    try:
        images, labels = _decode(name, root, split, download)
    except Exception as e:  # noqa: BLE001 - torchvision raises RuntimeError, URLError, OSError, AssertionError, ...
        reason = " ".join(str(e).split()) or type(e).__name__
        files = _files_text(expected_files(name, root, split))
        if not _present(name, root, split):  # the download failed (offline, a server down)
            raise UserError(f"{option}: could not download {TITLE[name]} into {root} ({reason[:200]}); copy "
                            f"torchvision's files there ({files}) or fetch them on a machine with network") from None
        if name == "svhn" and "corrupted" in reason:
            raise UserError(f"{option}: {files} is not torchvision's SVHN file: its MD5 checksum differs (a partial "
                            f"download?); delete it and fetch it again with {fetch}") from None
        raise UserError(f"{option}: cannot read {TITLE[name]} {split} files {files} with torchvision "
                        f"({reason[:200]}); delete them and fetch them again with {fetch}") from None
    src = DatasetSource(to_32x32_rgb(images), labels, f"{name}/{split}")
    _CACHE[key] = src
    return src


def labelled_arrays(name: str, root: str | Path, split: str, download: bool = False, *,
                    option: str = "root", fetch: str = "download=True") -> tuple[torch.Tensor, torch.Tensor]:
    """A whole split as (uint8 images (N, 3, 32, 32), int64 labels (N,)): what a classifier trains on.
    The images may be an expanded view (grey repeated); they are the cached tensors, not a copy."""
    src = digit_dataset_source(name, root, split, download, option=option, fetch=fetch)
    return src.images, src.labels


def digit_source(name: str, half: str, split: str, *, root: str | Path, download: bool = False, seed: int = 0,
                 option: str = "data.root") -> TensorSource:
    """A real dataset's split (``name`` in DATASETS, read from ``root``) or a built-in domain's half."""
    if name in DATASETS:
        return digit_dataset_source(name, root, split, download, option=option, fetch=FETCH)
    check_domain("domain", name)
    return domain_source(name, half, "test" if split == "val" else split, seed)


def check_domain(option: str, name: str) -> None:
    """A UserError naming ``option`` unless ``name`` is a digit dataset or a built-in domain."""
    if name not in DATASETS + tuple(DOMAINS):
        raise UserError(f"{option}: unknown digit domain {name!r}; choose a dataset ({', '.join(DATASETS)}) "
                        f"or a built-in domain ({', '.join(DOMAINS)})")


class DigitDatasets(TranslationDataModule):
    """Unpaired digits: A and B each MNIST, SVHN, USPS (torchvision's files) or a built-in domain.

    Args:
        a, b: ``mnist``, ``svhn``, ``usps``, or a built-in domain (``digits``, ``colored-digits``, ...;
            A takes the built-in A half, B the B half, as ``BuiltinDigits``).
        root: the folder holding torchvision's files of the datasets (its layout: module docstring).
        a_root, b_root: a different folder for A's or B's dataset (default: ``root``).
        download: let torchvision fetch missing files (needs network; rank 0 only, in ``prepare_data``).
        seed: the rendering seed of built-in domains.
        flip: random horizontal flip when training (off by default: it changes a digit's identity).
        train_limit: use only the first N training images of each domain (quick tests).
        batch_size, eval_batch_size, num_workers, pin_memory, persistent_workers: the loaders.

    Images are 32x32 RGB in [-1, 1]; batches ``{"A", "B", "A_path", "B_path", "A_label", "B_label"}``;
    training pairs each A image with a random B, validation (= test) A[i] with B[i mod |B|].
    """

    def __init__(self, a: str = "mnist", b: str = "svhn", root: str = "datasets/digits", a_root: str | None = None,
                 b_root: str | None = None, download: bool = False, seed: int = 0, flip: bool = False,
                 train_limit: int | None = None, batch_size: int = 64, eval_batch_size: int | None = None,
                 num_workers: int = 0, pin_memory: bool = False, persistent_workers: bool = True):
        super().__init__(batch_size, eval_batch_size, num_workers, pin_memory, persistent_workers)
        check_domain("data.a", a)
        check_domain("data.b", b)
        if train_limit is not None and train_limit < 1:
            raise UserError(f"data.train_limit must be a positive integer, got {train_limit}")
        self.a, self.b, self.root, self.download, self.seed = a, b, root, download, seed
        self.roots = {"A": (a_root, "data.a_root") if a_root else (root, "data.root"),
                      "B": (b_root, "data.b_root") if b_root else (root, "data.root")}
        self.flip, self.train_limit = flip, train_limit
        self.name = f"{a}2{b}"
        self._stage: str | None = None

    def builtin_domain(self, domain: str) -> str | None:
        """The domain behind a letter (``mnist``, ``svhn``, ``usps`` or the built-in name): the
        metrics pick its classifier by this name."""
        return {"A": self.a, "B": self.b}.get(domain)

    def eval_source(self, domain: str, split: str = "test") -> TensorSource:
        if domain not in self.domains:
            raise UserError(f"unknown domain {domain!r}; this data has {self.domains}")
        root, option = self.roots[domain]
        return digit_source(self.a if domain == "A" else self.b, domain, split, root=root, download=self.download,
                            seed=self.seed, option=option)

    def eval_transform(self):
        return build_transform("none", train=False, stride=1)

    def _source(self, domain: str, split: str) -> TensorSource:
        src = self.eval_source(domain, split)
        if split == "train" and self.train_limit:
            src = take(src, range(min(self.train_limit, len(src))))
        return src

    def build(self, split: str) -> UnpairedDataset:
        train = split == "train"
        t = build_transform("none", train=train, flip=self.flip, stride=1)
        return UnpairedDataset(self._source("A", split), self._source("B", split), t, random_b=train)

    def eval_dataset(self, domain: str, split: str = "test") -> DomainDataset:
        return DomainDataset(self.eval_source(domain, split), self.eval_transform())

    def prepare_data(self) -> None:
        """Rank 0 fetches (and reads) the datasets when ``download`` is on; other ranks then read them."""
        if self.download:
            self.check()

    def setup(self, stage: str | None = None) -> None:
        self._stage = stage
        super().setup(stage)

    def check(self) -> None:
        """Every source the stage reads (all splits before ``setup``): a missing file is one UserError."""
        for split in STAGE_SPLITS.get(self._stage or "", ("train", "test")):
            for domain in self.domains:
                self.eval_source(domain, split)
