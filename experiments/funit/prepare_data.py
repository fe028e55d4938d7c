"""Lay out FUNIT's animal faces (NVlabs/FUNIT@198f430) as multi-domain folders, as symbolic links
(``--copy`` to copy instead). Nothing is downloaded.

  python experiments/funit/prepare_data.py SRC DST
      SRC: the output of the official ``tools/extract_animalfaces.py`` (149 class folders, 117,484
      images). The official split is by class: the 30 classes of ``datasets/animals_test_class_names.txt``
      (:data:`TEST_CLASSES`) are never trained on; the other 119 are.
      DST/train/<class>: every image of the 119 training classes (the official training list);
      DST/test/<class>: the last ``--n_view`` images of each training class, *also in train* (the
      official code holds out no images of its training classes): they only feed the image grids and
      the fit-time folder check, never a metric;
      DST/unseen/<class>: the 30 test classes, the K-shot class images of few-shot evaluation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from experiments.tunit.prepare_data import images, place  # noqa: E402

TEST_CLASSES = frozenset(
    "n02086240 n02091467 n02092002 n02095314 n02095889 n02096437 n02098286 n02099429 n02099849 n02101006 n02102480 "
    "n02105412 n02105855 n02106030 n02106382 n02107142 n02110627 n02110806 n02110958 n02112018 n02112350 n02113023 "
    "n02113799 n02115641 n02115913 n02123045 n02123394 n02124075 n02125311 n02138441".split())


def animal_faces(src: Path, dst: Path, n_view: int = 5, copy: bool = False) -> dict[str, int]:
    classes = sorted(p for p in src.iterdir() if p.is_dir())
    if not classes:
        raise SystemExit(f"{src}: no class folders (expected the output of FUNIT's tools/extract_animalfaces.py)")
    counts = {"train_classes": 0, "unseen_classes": 0, "train_images": 0}
    for c in classes:
        files = images(c)
        if c.name in TEST_CLASSES:
            place(files, dst / "unseen" / c.name, copy)
            counts["unseen_classes"] += 1
            continue
        counts["train_images"] += place(files, dst / "train" / c.name, copy)
        place(files[-n_view:], dst / "test" / c.name, copy)
        counts["train_classes"] += 1
    if len(classes) != 149:
        print(f"note: {src} has {len(classes)} class folders; the official animal faces have 149 (119 + 30)")
    return counts


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--n_view", type=int, default=5, help="images per training class linked into DST/test (grids)")
    ap.add_argument("--copy", action="store_true", help="copy the files instead of linking them")
    a = ap.parse_args(argv)
    print(animal_faces(a.src, a.dst, a.n_view, a.copy))


if __name__ == "__main__":
    main()
