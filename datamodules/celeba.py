"""CelebA split into two domains by boolean attribute expressions (Press et al., DIDD, MBU).

Layout (the official release)::

    root/img_align_celeba/000001.jpg ...
    root/list_attr_celeba.txt      line 1: the number of images; line 2: the 40 attribute names;
                                   then "000001.jpg  -1  1  1 -1 ..." (values 1/-1, any spacing)
    root/list_eval_partition.txt   optional: "000001.jpg 0" (0 train, 1 val, 2 test)

Without the partition file the images are split 80/10/10 in file order (as the official partition
is), with a warning. ``test_size: 64`` instead makes the first 64 images of each domain the test
(and validation) set and the rest training: the split of the Press et al. and DIDD code.

Domains are expressions over attribute names with ``and``, ``or``, ``not`` and parentheses, e.g.
``a: "Eyeglasses"``, ``b: "not Eyeglasses"``, or facial hair:
``"Male and (Mustache or Goatee or not No_Beard)"``. They are parsed by a small recursive-descent
parser (no ``eval``). Images satisfying neither expression are dropped; an image satisfying both is
kept in A only (dropped from B), so the domains never share an image. Labels: A 0, B 1.

Preprocessing: ``center_crop_resize`` (CenterCrop 178, resize to ``crop_size``: Press et al., DIDD)
by default, or ``resize`` (a plain, aspect-distorting resize: MBU).

Multi-attribute mode (StarGAN, AttGAN, STGAN): ``attributes: [Black_Hair, Blond_Hair, ...]`` makes the
batches ``{"image", "label", "path"}`` over every image of A or B (one pool, file order; A and B
stay the evaluation domains), with ``label`` the float vector (K,) of those attributes, 1.0 = has
it (the multi-domain contract with a vector label). ``eval_source`` is unchanged (domain labels
0/1), so the metrics see the same domains; ``attribute_values(domain, split)`` gives the vectors
in the evaluation order. ``split_protocol`` chooses an official code's split instead of the partition
file: ``stargan`` (yunjey/stargan ``data_loader.py``: the attribute lines shuffled by Python's
``random.seed(1234)``, the first 1,999 test, the rest train; validation = test) or ``attgan``
(LynnHo/AttGAN-Tensorflow and csmliu/STGAN ``data.py``: file order, images 1-182,000 train,
182,001-182,637 validation, the rest test; needs the full 202,599-image list).
"""

from __future__ import annotations

import difflib
import random
import re
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from datamodules.base import DomainDataset, FileSource, UnpairedDataset
from datamodules.folders import FileDataModule
from datamodules.io import require_dir
from lit_i2i.errors import UserError

#: the 40 attribute names of the official list_attr_celeba.txt, in its column order
ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()
assert len(ATTRIBUTES) == 40
ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
SPLIT_PROTOCOLS = ("stargan", "attgan")
STARGAN_SEED, STARGAN_TEST = 1234, 1999          # yunjey/stargan: random.seed(1234); (i + 1) < 2000 is test
ATTGAN_TRAIN, ATTGAN_VAL_END = 182000, 182637    # AttGAN / STGAN: [:182000] train, [182000:182637] val

Predicate = Callable[[np.ndarray], np.ndarray]


def read_attributes(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(attribute names, file names, boolean values (N, K)) from a ``list_attr_celeba.txt``."""
    if not path.is_file():
        raise UserError(f"data.root: attribute file not found: {path}")
    lines = path.read_text().splitlines()
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise UserError(f"{path}: line 1 must be the number of images (the list_attr_celeba.txt format)")
    names = lines[1].split()
    rows = [(n, line.split(None, 1)) for n, line in enumerate(lines[2:], start=3) if line.strip()]
    files = [fields[0] for _, fields in rows]
    with warnings.catch_warnings():  # fast path: all values at once; a malformed file reads short
        warnings.simplefilter("ignore")
        try:
            values = np.fromstring(" ".join(f[1] if len(f) > 1 else "" for _, f in rows), dtype=np.int64, sep=" ")
        except ValueError:
            values = np.zeros(0, dtype=np.int64)
    if values.size != len(files) * len(names) or not (np.abs(values) == 1).all():
        for n, fields in rows:  # find the first bad line for the message
            cells = fields[1].split() if len(fields) > 1 else []
            if len(cells) != len(names) or not set(cells) <= {"1", "-1"}:
                raise UserError(f"{path} line {n}: expected a file name and {len(names)} values of 1 or -1, "
                                f"got {lines[n - 1].strip()[:80]!r}")
    if int(lines[0]) != len(files):
        warnings.warn(f"{path}: line 1 says {int(lines[0])} images but {len(files)} are listed", stacklevel=2)
    return names, files, (values == 1).reshape(len(files), len(names))


def read_partition(path: Path, files: list[str]) -> np.ndarray:
    """The split id (0 train, 1 val, 2 test) of each file, from a ``list_eval_partition.txt``."""
    split = {}
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise UserError(f"{path} line {n}: expected '<file name> <0|1|2>', got {line.strip()[:80]!r}")
        split[fields[0]] = int(fields[1])
    missing = [f for f in files if f not in split]
    if missing:
        raise UserError(f"{path}: no split for {len(missing)} image(s) of {ATTR_FILE}, e.g. {missing[0]}")
    return np.array([split[f] for f in files], dtype=np.int64)


def protocol_split(protocol: str, n: int) -> np.ndarray:
    """The split id (0 train, 1 val, 2 test) of each of the ``n`` attribute-file lines (file order) under an
    official code's split (see the module docstring): ``stargan`` or ``attgan``."""
    if protocol == "stargan":
        order = list(range(n))
        random.Random(STARGAN_SEED).shuffle(order)  # = random.seed(1234); random.shuffle(lines)
        split = np.zeros(n, dtype=np.int64)
        split[order[:STARGAN_TEST]] = SPLIT_IDS["test"]
        return split
    if protocol == "attgan":
        if n <= ATTGAN_VAL_END:
            raise UserError(f"data.split_protocol attgan: the official split (train 1-{ATTGAN_TRAIN}, val to "
                            f"{ATTGAN_VAL_END}, test the rest) needs the full CelebA attribute list, got {n} images")
        pos = np.arange(n)
        return np.where(pos < ATTGAN_TRAIN, 0, np.where(pos < ATTGAN_VAL_END, 1, 2)).astype(np.int64)
    raise UserError(f"data.split_protocol must be one of {', '.join(SPLIT_PROTOCOLS)} or null, got {protocol!r}")


_TOKEN = re.compile(r"\s*(?:(\()|(\))|([A-Za-z0-9_]+)|(\S))")
_KEYWORDS = ("and", "or", "not")


def parse_expression(text: str, names: list[str], option: str) -> Predicate:
    """Compile an attribute expression into a function of the (N, K) boolean values -> (N,) mask.

    Grammar: ``or := and ('or' and)*``, ``and := not ('and' not)*``, ``not := 'not' not | atom``,
    ``atom := NAME | '(' or ')'``; keywords are case-insensitive, names are exact.
    """
    tokens = []
    for m in _TOKEN.finditer(text):
        if m.group(4):
            raise UserError(f"{option}: unexpected {m.group(4)!r} in {text!r}; use attribute names, "
                            "and, or, not, parentheses")
        tokens.append(next(g for g in m.groups()[:3] if g))
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise UserError(f"{option}: {text!r} ends too early")
        pos += 1
        return tokens[pos - 1]

    def binary(word: str, operand: Callable[[], Predicate], op) -> Predicate:
        node = operand()
        while (peek() or "").lower() == word:
            take()
            left, right = node, operand()
            node = lambda v, l=left, r=right: op(l(v), r(v))  # noqa: E731
        return node

    def or_() -> Predicate:
        return binary("or", and_, np.logical_or)

    def and_() -> Predicate:
        return binary("and", not_, np.logical_and)

    def not_() -> Predicate:
        if (peek() or "").lower() == "not":
            take()
            inner = not_()
            return lambda v: ~inner(v)
        return atom()

    def atom() -> Predicate:
        tok = take()
        if tok == "(":
            node = or_()
            if take() != ")":
                raise UserError(f"{option}: missing ')' in {text!r}")
            return node
        if tok == ")" or tok.lower() in _KEYWORDS:
            raise UserError(f"{option}: unexpected {tok!r} in {text!r}")
        if tok not in names:
            close = difflib.get_close_matches(tok, names, n=5, cutoff=0.5)
            close = close or [n for n in names if n.lower() == tok.lower()]
            hint = f"close names: {', '.join(close)}" if close else f"the attributes are: {', '.join(names)}"
            raise UserError(f"{option}: unknown CelebA attribute {tok!r} in {text!r}; {hint}")
        k = names.index(tok)
        return lambda v: v[:, k]

    if not tokens:
        raise UserError(f"{option}: empty attribute expression")
    tree = or_()
    if pos != len(tokens):
        raise UserError(f"{option}: unexpected {tokens[pos]!r} in {text!r}")
    return tree


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


class CelebAAttributes(FileDataModule):
    """CelebA, two domains defined by attribute expressions; unpaired batches (A_label 0, B_label 1).

    Args:
        root: the CelebA folder (holding the image folder and ``list_attr_celeba.txt``).
        a: the expression selecting domain A (e.g. ``"Eyeglasses"``).
        b: the expression selecting domain B (e.g. ``"not Eyeglasses"``); images also in A are dropped.
        image_dir: the image folder under ``root``.
        test_size: the first N images of each domain are the test/validation set (Press et al.: 64);
            None: ``list_eval_partition.txt``, or an 80/10/10 split in file order when it is absent.
        attributes: multi-attribute mode: these attributes' values, as a float vector, are each training
            image's ``label`` (StarGAN, AttGAN, STGAN); None: the two-domain batches.
        split_protocol: ``stargan`` or ``attgan``: that official code's split (overrides ``test_size``
            and the partition file); None: as above.
        preprocess: ``center_crop_resize`` (CenterCrop ``center_crop``, resize ``crop_size``) or ``resize``
            (or any of ``transforms.PREPROCESS``).
        load_size, crop_size, flip, channels, stride, center_crop, skip_bad_files, batch_size, eval_batch_size,
        num_workers, pin_memory, persistent_workers, decode_cache: as in ``folders.UnpairedFolders``.
    """

    def __init__(self, root: str = "datasets/celeba", a: str = "Eyeglasses", b: str = "not Eyeglasses",
                 image_dir: str = "img_align_celeba", test_size: int | None = None,
                 preprocess: str = "center_crop_resize", load_size: int = 128, crop_size: int = 128, flip: bool = True,
                 channels: int = 3, stride: int = 4, center_crop: int = 178, skip_bad_files: bool = False,
                 batch_size: int = 32, eval_batch_size: int | None = None, num_workers: int = 0,
                 pin_memory: bool = False, persistent_workers: bool = True, attributes: list[str] | None = None,
                 split_protocol: str | None = None, decode_cache: str = "none"):
        super().__init__(preprocess, load_size, crop_size, flip, channels, stride, center_crop, skip_bad_files,
                         batch_size, eval_batch_size, num_workers, pin_memory, persistent_workers, decode_cache)
        self.root = Path(root).expanduser()
        self.a, self.b, self.image_dir, self.test_size = a, b, image_dir, test_size
        self.attributes = list(attributes) if attributes is not None else None
        self.split_protocol = split_protocol
        self.name = f"{self.root.name}-{_slug(a)}-vs-{_slug(b)}"
        if split_protocol:
            self.name += f"-{split_protocol}-split"
        self.domains = ("A", "B")

    def table(self) -> dict[str, dict[str, list[str]]]:
        """File names per domain and split: ``{"A": {"train": [...], "val": [...], "test": [...]}, "B": ...}``."""
        def make():
            require_dir(self.root, "data.root")
            require_dir(self.root / self.image_dir, "data.image_dir (the CelebA images)")
            names, files, values = read_attributes(self.root / ATTR_FILE)
            in_a = parse_expression(self.a, names, "data.a")(values)
            in_b = parse_expression(self.b, names, "data.b")(values) & ~in_a
            split = self._split_ids(files, in_a, in_b)
            if self.attributes is not None:
                cols = [self._attribute_index(n, names) for n in self.attributes]
                self._cache["attribute_values"] = {f: v for f, v in zip(files, values[:, cols])}
                self._cache["file_order"] = {f: i for i, f in enumerate(files)}
            out = {}
            for domain, opt, expr, mask in (("A", "data.a", self.a, in_a), ("B", "data.b", self.b, in_b)):
                if not mask.any():
                    raise UserError(f"{opt}: no image of {self.root / ATTR_FILE} satisfies {expr!r}"
                                    + (" (images also in A are dropped from B)" if domain == "B" else ""))
                out[domain] = {s: [f for f, m, i in zip(files, mask, split) if m and i == k]
                               for s, k in SPLIT_IDS.items()}
            return out
        return self.cached("table", make)

    def _split_ids(self, files: list[str], in_a: np.ndarray, in_b: np.ndarray) -> np.ndarray:
        n = len(files)
        if self.split_protocol is not None:
            return protocol_split(self.split_protocol, n)
        if self.test_size is not None:
            if self.test_size < 1:
                raise UserError(f"data.test_size must be at least 1, got {self.test_size}")
            split = np.zeros(n, dtype=np.int64)
            for mask in (in_a, in_b):
                split[np.flatnonzero(mask)[: self.test_size]] = SPLIT_IDS["test"]
            return split
        partition = self.root / PARTITION_FILE
        if partition.is_file():
            return read_partition(partition, files)
        warnings.warn(f"{partition} not found: splitting the images 80/10/10 (train/val/test) in file order",
                      stacklevel=2)
        pos = np.arange(n)
        return np.where(pos < round(0.8 * n), 0, np.where(pos < round(0.9 * n), 1, 2))

    def eval_source(self, domain: str, split: str = "test") -> FileSource:
        if domain not in self.domains:
            raise UserError(f"unknown domain {domain!r}; this data has {self.domains}")
        if split not in SPLIT_IDS:
            raise UserError(f"unknown split {split!r}; expected one of {', '.join(SPLIT_IDS)}")
        if (self.test_size is not None or self.split_protocol == "stargan") and split == "val":
            split = "test"
        names = self.table()[domain][split]
        expr = self.a if domain == "A" else self.b
        what = f"data.root ({split} images of domain {domain}: {expr!r})"
        if not names:
            raise UserError(f"{what}: none in {self.root} (check {PARTITION_FILE} or the expression)")
        folder = self.root / self.image_dir
        files = self.checked_files(("celeba", domain, split), lambda: [folder / n for n in names], what)
        return FileSource(files, self.channels, [self.domains.index(domain)] * len(files))

    def build(self, split: str) -> UnpairedDataset | DomainDataset:
        train = split == "train"
        if self.attributes is not None:
            return DomainDataset(*self.training_source(self.attribute_source(split), train, "attributes"))
        (a, ta), (b, tb) = (self.training_source(self.eval_source(d, split), train, d) for d in ("A", "B"))
        return UnpairedDataset(a, b, ta, tb, random_b=train)

    # -- multi-attribute mode -------------------------------------------------------------------
    def _attribute_index(self, name: str, names: list[str]) -> int:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
            hint = f"close names: {', '.join(close)}" if close else f"the attributes are: {', '.join(names)}"
            raise UserError(f"data.attributes: unknown CelebA attribute {name!r}; {hint}")
        return names.index(name)

    def check_options(self) -> None:
        super().check_options()
        if self.split_protocol is not None and self.split_protocol not in SPLIT_PROTOCOLS:
            raise UserError(f"data.split_protocol must be one of {', '.join(SPLIT_PROTOCOLS)} or null, "
                            f"got {self.split_protocol!r}")
        if self.attributes is not None:
            if not self.attributes:
                raise UserError("data.attributes: give at least one attribute (or null for two-domain batches)")
            if len(set(self.attributes)) != len(self.attributes):
                raise UserError(f"data.attributes lists an attribute twice: {self.attributes}")

    def attribute_source(self, split: str = "train") -> FileSource:
        """Multi-attribute mode: every image of domain A or B in ``split`` (file order), labelled with its
        attribute vector (float32 (K,), 1.0 = has the attribute)."""
        if self.attributes is None:
            raise UserError("data.attributes is not set: this CelebA data has two-domain batches")
        sources = [self.eval_source(d, split) for d in self.domains]
        order = self._cache["file_order"]
        files = sorted((f for s in sources for f in s.files), key=lambda f: order[f.name])
        values = self._cache["attribute_values"]
        labels = [torch.from_numpy(values[f.name].astype(np.float32)) for f in files]
        return FileSource(files, self.channels, labels)

    def attribute_values(self, domain: str, split: str = "test") -> torch.Tensor:
        """Multi-attribute mode: the (N, K) attribute vectors of ``eval_source(domain, split)``, in its order."""
        if self.attributes is None:
            raise UserError("data.attributes is not set: this CelebA data has two-domain batches")
        src = self.eval_source(domain, split)
        values = self._cache["attribute_values"]
        return torch.from_numpy(np.stack([values[f.name] for f in src.files]).astype(np.float32))
