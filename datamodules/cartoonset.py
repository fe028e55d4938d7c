"""Faces -> CartoonSet cartoons (XGAN's face-to-cartoon task): a folder of face crops as domain A, the
CartoonSet 10k or 100k release (Google, https://google.github.io/cartoonset/) as domain B.

CartoonSet's layout (the released archives, unpacked)::

    cartoonset10k/cs1048486361028912.png      500x500 RGBA, the cartoon on a transparent background
    cartoonset10k/cs1048486361028912.csv      its attributes, one per line: "eye_angle", 2, 3
    cartoonset100k/0/cs....png, .csv ...      (the 100k set: ten sub-folders of 10k; read recursively)

Each CSV line is ``"<attribute>", <variant>, <number of variants>``: 18 attributes (10 artwork:
chin_length, eye_angle, eye_lashes, eye_lid, eyebrow_shape, eyebrow_weight, face_shape, facial_hair,
glasses, hair; 4 colours: eye_color, face_color, glasses_color, hair_color; 4 proportions:
eye_eyebrow_distance, eye_slant, eyebrow_thickness, eyebrow_width). Every PNG must have its CSV; a
line that is not of that form is one error naming the file and line.

The faces folder (VGG-Face crops with the background removed, in the paper) is any folder of images,
read recursively. Images with an alpha channel (both domains) are composited over ``background``
(white by default) before anything else; cartoons are then cut to their central ``cartoon_crop``
share of the side (0.8: the 400x400 centre of the 500x500 canvas, where the face is) [choice: the
paper says 64x64, not how it crops], and both domains get the usual ``preprocess`` (``resize`` to
``crop_size`` = 64 by default) and random flips when training.

Splits: neither source has one. Each domain's files are sorted and shuffled with ``split_seed``; the
first ``test_size`` are the test split (validation = test), the rest training. ``where`` keeps only
cartoons whose attributes take the listed variants, e.g. ``{glasses: [11], facial_hair: [14]}``
(check the variant numbers on your copy: the CSVs give each attribute's count, not its names);
``label_attribute`` makes a cartoon's variant of that attribute its ``B_label`` (faces: -1).
"""

from __future__ import annotations

import csv
import difflib
from pathlib import Path

import numpy as np
import torch
from torchvision.io import ImageReadMode, decode_image

from datamodules.base import FileSource, UnpairedDataset
from datamodules.folders import FileDataModule
from datamodules.io import list_images, require_dir, unreadable
from lit_i2i.errors import UserError

ATTRIBUTES = ("chin_length", "eye_angle", "eye_lashes", "eye_lid", "eyebrow_shape", "eyebrow_weight", "face_shape",
              "facial_hair", "glasses", "hair", "eye_color", "face_color", "glasses_color", "hair_color",
              "eye_eyebrow_distance", "eye_slant", "eyebrow_thickness", "eyebrow_width")
SPLITS = ("train", "val", "test")


def read_cartoon_csv(path: Path) -> dict[str, tuple[int, int]]:
    """``{attribute: (variant, number of variants)}`` from one CartoonSet CSV file."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise UserError(f"data.cartoons: no attribute file {path} for {Path(path).with_suffix('.png').name} "
                        "(every CartoonSet PNG comes with a CSV of the same name)") from None
    except OSError as e:
        raise UserError(f"data.cartoons: cannot read {path}: {e.strerror or e}") from None
    out = {}
    for n, row in enumerate(csv.reader(text.splitlines(), skipinitialspace=True), start=1):
        if not row or not "".join(row).strip():
            continue
        try:
            name, value, count = row[0].strip(), int(row[1]), int(row[2])
            if len(row) != 3 or not name or not 0 <= value < count:
                raise ValueError
        except (ValueError, IndexError):
            raise UserError(f'{path} line {n}: expected "<attribute>", <variant>, <number of variants> with '
                            f"0 <= variant < number, got {','.join(row)[:80]!r}") from None
        out[name] = (value, count)
    if not out:
        raise UserError(f"{path}: no attributes (an empty CartoonSet CSV)")
    return out


class AlphaSource(FileSource):
    """Image files decoded with their alpha channel, composited over ``background``, then (optionally)
    cut to their central ``crop`` share of the side; ``labels`` optional."""

    def __init__(self, files, channels: int = 3, labels=None, background=(255, 255, 255), crop: float = 1.0):
        super().__init__(files, channels, labels)
        self.background = torch.tensor(list(background), dtype=torch.float32)[:, None, None]
        self.crop = crop

    def __getitem__(self, i: int):
        path = self.files[i]
        try:
            data = path.read_bytes()
            img = decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.UNCHANGED)
        except (RuntimeError, ValueError, OSError) as e:
            raise unreadable(path, e) from None
        if img.ndim == 4:  # animated GIF: first frame
            img = img[0]
        colour = img[:1].expand(3, -1, -1) if img.shape[0] in (1, 2) else img[:3]  # grey (+ alpha), RGB (+ alpha)
        if img.shape[0] in (2, 4):
            alpha = img[-1:].float() / 255
            rgb = (colour.float() * alpha + self.background * (1 - alpha)).round().clamp(0, 255).to(torch.uint8)
        else:
            rgb = colour.contiguous()
        if self.crop < 1:
            h, w = rgb.shape[-2:]
            s = max(1, int(round(min(h, w) * self.crop)))
            top, left = (h - s) // 2, (w - s) // 2
            rgb = rgb[:, top:top + s, left:left + s]
        label = self.labels[i] if self.labels is not None else -1
        return rgb, label, str(path)


class CartoonSet(FileDataModule):
    """Faces (A) and CartoonSet cartoons (B), unpaired; batches ``{"A", "B", "A_path", "B_path",
    "A_label", "B_label"}`` (see the module docstring for the layout, crops and splits).

    Args:
        faces: the folder of face images (read recursively).
        cartoons: the CartoonSet folder (``cartoonset10k`` or ``cartoonset100k``; read recursively).
        test_size: images of each domain held out as the test (= validation) split.
        split_seed: the shuffle that chooses them.
        where: keep only cartoons whose attribute variants are in the lists, ``{attribute: [variants]}``.
        label_attribute: the attribute whose variant is a cartoon's label (None: -1).
        cartoon_crop: the central share of a cartoon's side that is kept (1.0: all of it).
        background: the RGB colour transparent pixels become (both domains).
        preprocess, load_size, crop_size, flip, channels, stride, center_crop, skip_bad_files, batch_size,
        eval_batch_size, num_workers, pin_memory, persistent_workers: as in ``folders.UnpairedFolders``.
    """

    def __init__(self, faces: str = "datasets/faces", cartoons: str = "datasets/cartoonset10k", test_size: int = 500,
                 split_seed: int = 0, where: dict[str, list[int]] | None = None, label_attribute: str | None = None,
                 cartoon_crop: float = 0.8, background: list[int] | None = None, preprocess: str = "resize",
                 load_size: int = 64, crop_size: int = 64, flip: bool = True, channels: int = 3, stride: int = 4,
                 center_crop: int = 178, skip_bad_files: bool = False, batch_size: int = 32,
                 eval_batch_size: int | None = None, num_workers: int = 0, pin_memory: bool = False,
                 persistent_workers: bool = True):
        super().__init__(preprocess, load_size, crop_size, flip, channels, stride, center_crop, skip_bad_files,
                         batch_size, eval_batch_size, num_workers, pin_memory, persistent_workers)
        self.faces, self.cartoons = Path(faces).expanduser(), Path(cartoons).expanduser()
        self.test_size, self.split_seed = test_size, split_seed
        self.where, self.label_attribute = dict(where or {}), label_attribute
        self.cartoon_crop = cartoon_crop
        self.background = tuple(background) if background is not None else (255, 255, 255)
        self.name = f"{self.faces.name}2{self.cartoons.name}"
        self.domains = ("A", "B")

    # -- the tables ----------------------------------------------------------------------------
    def cartoon_table(self) -> tuple[list[Path], list[dict[str, tuple[int, int]]]]:
        """Every cartoon PNG under ``cartoons`` (sorted) and its attributes, before ``where``."""
        def make():
            folder = require_dir(self.cartoons, "data.cartoons (the CartoonSet folder)")
            files = [f for f in list_images(folder, "data.cartoons", recursive=True) if f.suffix.lower() == ".png"]
            if not files:
                raise UserError(f"data.cartoons: no CartoonSet PNG files in {folder}")
            return files, [read_cartoon_csv(f.with_suffix(".csv")) for f in files]
        return self.cached("cartoon_table", make)

    def _selected_cartoons(self) -> tuple[list[Path], list[int]]:
        files, attrs = self.cartoon_table()
        names = sorted({k for a in attrs for k in a})
        for key in [*self.where, *([self.label_attribute] if self.label_attribute else [])]:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=3, cutoff=0.5)
                hint = f"did you mean {', '.join(close)}?" if close else f"the attributes are: {', '.join(names)}"
                raise UserError(f"data: unknown CartoonSet attribute {key!r}; {hint}")
        keep = [i for i, a in enumerate(attrs)
                if all(a.get(k, (None,))[0] in set(v) for k, v in self.where.items())]
        if not keep:
            raise UserError(f"data.where: no cartoon of {self.cartoons} has the attributes {self.where}")
        labels = [attrs[i][self.label_attribute][0] if self.label_attribute else -1 for i in keep]
        return [files[i] for i in keep], labels

    def _split(self, n: int, split: str, option: str) -> np.ndarray:
        if self.test_size < 1 or self.test_size >= n:
            raise UserError(f"data.test_size must be at least 1 and less than the {n} images of {option}, "
                            f"got {self.test_size}")
        perm = np.random.default_rng(self.split_seed).permutation(n)
        return np.sort(perm[: self.test_size] if split in ("val", "test") else perm[self.test_size:])

    def eval_source(self, domain: str, split: str = "test") -> AlphaSource:
        if domain not in self.domains:
            raise UserError(f"unknown domain {domain!r}; this data has {self.domains}")
        if split not in SPLITS:
            raise UserError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        if domain == "A":
            faces = self.cached("faces", lambda: list_images(require_dir(self.faces, "data.faces"), "data.faces",
                                                             recursive=True))
            idx = self._split(len(faces), split, "data.faces")
            what = f"data.faces ({split} images)"
            files = self.checked_files(("faces", split), lambda: [faces[i] for i in idx], what)
            return AlphaSource(files, self.channels, None, self.background)
        files, labels = self._selected_cartoons()
        idx = self._split(len(files), split, "data.cartoons")
        label_of = {files[i]: labels[i] for i in idx}
        what = f"data.cartoons ({split} images)"
        checked = self.checked_files(("cartoons", split), lambda: [files[i] for i in idx], what)
        return AlphaSource(checked, self.channels, [label_of[f] for f in checked], self.background, self.cartoon_crop)

    def build(self, split: str) -> UnpairedDataset:
        train = split == "train"
        return UnpairedDataset(self.eval_source("A", split), self.eval_source("B", split), self.transform(train),
                               random_b=train)

    def check_options(self) -> None:
        super().check_options()
        if not 0 < self.cartoon_crop <= 1:
            raise UserError(f"data.cartoon_crop must be in (0, 1], got {self.cartoon_crop}")
        if len(self.background) != 3 or not all(0 <= int(c) <= 255 for c in self.background):
            raise UserError(f"data.background must be three values in 0..255 (RGB), got {list(self.background)}")
