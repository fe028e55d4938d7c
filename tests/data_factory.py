"""Tiny image folders for the datamodule tests, written with PIL into a temporary folder.

Every image is random noise from its own seed, so crops, flips and pairings can be told apart.
The CelebA factory writes the real ``list_attr_celeba.txt`` format (count, the 40 attribute names,
then rows of 1/-1 aligned with extra spaces) and returns the attribute table it wrote, so tests can
compute the expected domains independently of the code under test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from datamodules.celeba import ATTRIBUTES as CELEBA_ATTRIBUTES  # the official 40, in file order


def noise(h: int, w: int, seed: int, channels: int = 3) -> np.ndarray:
    """A random uint8 image (h, w, channels) or (h, w) for one channel."""
    shape = (h, w) if channels == 1 else (h, w, channels)
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def make_image(path: Path, size: tuple[int, int] = (16, 16), seed: int = 0, channels: int = 3) -> Path:
    """A noise image of ``size`` (w, h) at ``path`` (the format follows the extension)."""
    w, h = size
    return save(Path(path), noise(h, w, seed, channels))


def make_corrupt(path: Path) -> Path:
    """A file with an image extension whose bytes are not an image."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not an image" * 10)
    return path


def make_folder(folder: Path, n: int, size: tuple[int, int] = (16, 16), seed: int = 0, ext: str = ".png") -> list[Path]:
    """``n`` noise images ``000.png``, ``001.png``, ... in ``folder``."""
    return [make_image(Path(folder) / f"{i:03d}{ext}", size, seed * 1000 + i) for i in range(n)]


def make_unpaired(root: Path, n_a: int, n_b: int, size: tuple[int, int] = (16, 16), n_test: int = 2,
                  val: bool = False) -> Path:
    """CycleGAN layout: trainA (n_a), trainB (n_b), testA, testB (n_test each), valA/valB if ``val``."""
    root = Path(root)
    make_folder(root / "trainA", n_a, size, seed=1)
    make_folder(root / "trainB", n_b, size, seed=2)
    make_folder(root / "testA", n_test, size, seed=3)
    make_folder(root / "testB", n_test, size, seed=4)
    if val:
        make_folder(root / "valA", n_test, size, seed=5)
        make_folder(root / "valB", n_test, size, seed=6)
    return root


def make_aligned(root: Path, n: int, size: int = 16, identical: bool = False,
                 splits: tuple[str, ...] = ("train", "val", "test")) -> Path:
    """pix2pix combined layout: ``root/<split>/i.png`` of size (2*size) x size holding A|B.

    ``identical``: the B half is a copy of the A half (to check joint transforms).
    """
    root = Path(root)
    for k, split in enumerate(splits):
        for i in range(n):
            a = noise(size, size, seed=100 * k + 2 * i)
            b = a if identical else noise(size, size, seed=100 * k + 2 * i + 1)
            save(root / split / f"{i:03d}.png", np.concatenate([a, b], axis=1))
    return root


def make_two_folders(root: Path, n: int, size: int = 16, identical: bool = False,
                     splits: tuple[str, ...] = ("train", "test")) -> Path:
    """Paired two-folder layout: ``root/<split>A/i.png`` pairs with ``root/<split>B/i.png``."""
    root = Path(root)
    for k, split in enumerate(splits):
        for i in range(n):
            a = noise(size, size, seed=100 * k + 2 * i)
            b = a if identical else noise(size, size, seed=100 * k + 2 * i + 1)
            save(root / f"{split}A" / f"{i:03d}.png", a)
            save(root / f"{split}B" / f"{i:03d}.png", b)
    return root


def make_multidomain(root: Path, domains: list[str], n: int, size: tuple[int, int] = (16, 16), n_test: int = 2,
                     splits: tuple[str, ...] = ("train", "test")) -> Path:
    """``root/<split>/<domain>/i.png``: n training images and n_test images for other splits."""
    root = Path(root)
    for s, split in enumerate(splits):
        for d, domain in enumerate(domains):
            make_folder(root / split / domain, n if split == "train" else n_test, size, seed=10 * s + d + 1)
    return root


def make_celeba(root: Path, n: int, size: tuple[int, int] = (20, 24), seed: int = 0,
                image_dir: str = "img_align_celeba") -> dict[str, dict[str, bool]]:
    """CelebA layout with n images ``000001.jpg``... and a real-format ``list_attr_celeba.txt``.

    Returns ``{file name: {attribute: bool}}``, the table written to the file.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    values = rng.random((n, len(CELEBA_ATTRIBUTES))) < 0.5
    table, rows = {}, []
    for i in range(n):
        name = f"{i + 1:06d}.jpg"
        make_image(root / image_dir / name, size, seed=i)
        table[name] = dict(zip(CELEBA_ATTRIBUTES, (bool(v) for v in values[i])))
        rows.append(name + " " + " ".join(f"{1 if v else -1:2d}" for v in values[i]))
    header = [str(n), " ".join(CELEBA_ATTRIBUTES) + " "]
    (root / "list_attr_celeba.txt").write_text("\n".join(header + rows) + "\n")
    return table


def make_partition(root: Path, n: int) -> dict[str, int]:
    """``list_eval_partition.txt`` for images 1..n: split id 0/1/2 cycling as 0,0,0,1,2 (returned)."""
    parts = {f"{i + 1:06d}.jpg": (0, 0, 0, 1, 2)[i % 5] for i in range(n)}
    (Path(root) / "list_eval_partition.txt").write_text("".join(f"{k} {v}\n" for k, v in parts.items()))
    return parts


# ------------------------------------------------------------------ torchvision's digit dataset files
def digit_labels(n: int, offset: int = 0) -> np.ndarray:
    """The labels the digit factories write: 0-9 cycling from ``offset`` (every file holds a zero)."""
    return (np.arange(n) + offset) % 10


def make_mnist(root: Path, n_train: int = 6, n_test: int = 4) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """torchvision's MNIST files, uncompressed idx (big-endian magic 0x0803 images / 0x0801 labels), in
    ``root/MNIST/raw``; returns {split: (images (N, 28, 28) uint8, labels)}."""
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        x, y = noise(n * 28, 28, seed=len(split), channels=1).reshape(n, 28, 28), digit_labels(n).astype(np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(np.array([0x0803, n, 28, 28], ">u4").tobytes() + x.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(np.array([0x0801, n], ">u4").tobytes() + y.tobytes())
        out[split] = (x, y.astype(np.int64))
    return out


def make_svhn(root: Path, n_train: int = 6, n_test: int = 4) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """torchvision's SVHN files ``root/train_32x32.mat``, ``root/test_32x32.mat``: X (32, 32, 3, N) uint8,
    y (N, 1) uint8 with 10 for the digit zero (the real files' convention); returns {split: (images
    (N, 3, 32, 32), labels 0-9)}. torchvision checks their MD5: see :func:`svhn_checksums`."""
    from scipy.io import savemat

    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = noise(n * 32, 32, seed=10 + len(split)).reshape(n, 32, 32, 3)
        y = digit_labels(n, offset=7)
        Path(root).mkdir(parents=True, exist_ok=True)
        savemat(Path(root) / f"{split}_32x32.mat", {"X": x.transpose(1, 2, 3, 0),
                                                    "y": np.where(y == 0, 10, y).astype(np.uint8)[:, None]})
        out[split] = (x.transpose(0, 3, 1, 2), y)
    return out


def svhn_checksums(root: Path) -> dict[str, str]:
    """MD5 of the fake SVHN files: a test puts them in ``torchvision.datasets.SVHN.split_list`` so that
    torchvision's integrity check runs (and passes) on them."""
    import hashlib

    return {split: hashlib.md5((Path(root) / f"{split}_32x32.mat").read_bytes()).hexdigest()
            for split in ("train", "test") if (Path(root) / f"{split}_32x32.mat").is_file()}


def make_mnist_svhn(root: Path, monkeypatch, n_train: int = 8, n_test: int = 4) -> Path:
    """Fake MNIST and SVHN files under ``root`` with torchvision's SVHN checksums patched to theirs
    (``monkeypatch``: the test's fixture), ready for ``DigitDatasets(root=root)``."""
    import torchvision.datasets as tvd

    make_mnist(root, n_train, n_test)
    make_svhn(root, n_train, n_test)
    for split, md5 in svhn_checksums(root).items():
        url, name, _ = tvd.SVHN.split_list[split]
        monkeypatch.setitem(tvd.SVHN.split_list, split, [url, name, md5])
    return Path(root)


def make_usps(root: Path, n_train: int = 6, n_test: int = 4) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """torchvision's USPS files ``root/usps.bz2``, ``root/usps.t.bz2``: bz2 libsvm lines ``label
    1:v ... 256:v`` with labels 1-10 (digit + 1) and pixel values in [-1, 1]; returns {split: (images
    (N, 16, 16) uint8 as torchvision decodes them, labels 0-9)}."""
    import bz2

    out = {}
    for split, name, n in (("train", "usps.bz2", n_train), ("test", "usps.t.bz2", n_test)):
        v = np.random.default_rng(20 + len(split)).uniform(-1, 1, size=(n, 256)).astype(np.float32)
        y = digit_labels(n, offset=5)
        lines = [f"{label + 1} " + " ".join(f"{j + 1}:{val:.6f}" for j, val in enumerate(row)) + "\n"
                 for label, row in zip(y, v)]
        Path(root).mkdir(parents=True, exist_ok=True)
        with bz2.open(Path(root) / name, "wt") as f:
            f.writelines(lines)
        parsed = np.asarray([[f"{val:.6f}" for val in row] for row in v], dtype=np.float32)
        out[split] = (((parsed + 1) / 2 * 255).astype(np.uint8).reshape(n, 16, 16), y)
    return out
