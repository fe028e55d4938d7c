"""Lay out TUNIT's datasets as multi-domain folders (``root/train/<class>``, ``root/test/<class>``) with
the official code's splits (clovaai/tunit@405a77c ``datasets/datasetgetter.py``), as symbolic links
(``--copy`` to copy instead). Nothing is downloaded.

  python experiments/tunit/prepare_data.py animalfaces SRC DST
      SRC: FUNIT's animal faces, one folder per class (149 of them). The official 10 classes are the
      class folders at sorted indices 11, 43, 56, 74, 89, 128, 130, 138, 140, 141; in each, the last 50
      images (sorted names, as torchvision's ImageFolder lists them) are held out (DST/test).
  python experiments/tunit/prepare_data.py holdout SRC DST --n_test 7000
      SRC: one folder of images (FFHQ: last 7,000 held out; LSUN-car: --n_test 10000), or an
      ImageFolder root with one class folder. DST/train/all and DST/test/all.
  python experiments/tunit/prepare_data.py cyclegan SRC DST --names summer winter
      SRC: the CycleGAN layout (trainA, trainB, testA, testB); DST/train/summer = SRC/trainA, ...
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from datamodules.io import IMG_EXTENSIONS  # noqa: E402

ANIMALFACES_CLASSES = (11, 43, 56, 74, 89, 128, 130, 138, 140, 141)
ANIMALFACES_HELD_OUT = 50


def images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)


def place(files: list[Path], dst: Path, copy: bool) -> int:
    dst.mkdir(parents=True, exist_ok=True)
    for f in files:
        target = dst / f.name
        if target.exists() or target.is_symlink():
            continue
        if copy:
            shutil.copy2(f, target)
        else:
            target.symlink_to(f.resolve())
    return len(files)


def animalfaces(src: Path, dst: Path, copy: bool) -> None:
    classes = sorted(p for p in src.iterdir() if p.is_dir())
    if len(classes) <= max(ANIMALFACES_CLASSES):
        raise SystemExit(f"{src}: {len(classes)} class folders; FUNIT's animal faces has 149 "
                         f"(the official classes go up to index {max(ANIMALFACES_CLASSES)})")
    for k in ANIMALFACES_CLASSES:
        files = images(classes[k])
        train, test = files[:-ANIMALFACES_HELD_OUT], files[-ANIMALFACES_HELD_OUT:]
        place(train, dst / "train" / classes[k].name, copy)
        place(test, dst / "test" / classes[k].name, copy)
        print(f"class {k:3d} {classes[k].name}: {len(train)} train, {len(test)} test")


def holdout(src: Path, dst: Path, n_test: int, copy: bool) -> None:
    files = images(src)
    if len(files) <= n_test:
        raise SystemExit(f"{src}: {len(files)} images, not more than --n_test {n_test}")
    print(f"train {place(files[:-n_test], dst / 'train' / 'all', copy)}, test {place(files[-n_test:], dst / 'test' / 'all', copy)}")


def cyclegan(src: Path, dst: Path, names: list[str], copy: bool) -> None:
    for split in ("train", "test"):
        for letter, name in zip("AB", names):
            folder = src / f"{split}{letter}"
            if folder.is_dir():
                print(f"{split}/{name}: {place(images(folder), dst / split / name, copy)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    for name in ("animalfaces", "holdout", "cyclegan"):
        p = sub.add_parser(name)
        p.add_argument("src", type=Path)
        p.add_argument("dst", type=Path)
        p.add_argument("--copy", action="store_true", help="copy the files instead of linking them")
        if name == "holdout":
            p.add_argument("--n_test", type=int, required=True)
        if name == "cyclegan":
            p.add_argument("--names", nargs=2, default=["summer", "winter"])
    a = ap.parse_args(argv)
    if not a.src.is_dir():
        raise SystemExit(f"{a.src}: no such folder")
    if a.what == "animalfaces":
        animalfaces(a.src, a.dst, a.copy)
    elif a.what == "holdout":
        holdout(a.src, a.dst, a.n_test, a.copy)
    else:
        cyclegan(a.src, a.dst, a.names, a.copy)
    return 0


if __name__ == "__main__":
    sys.exit(main())
