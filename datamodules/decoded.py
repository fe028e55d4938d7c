"""The decoded-image cache of the file datamodules (``decode_cache: memory | disk``).

Every training file is decoded once and put through the deterministic start of its preprocessing
(``build_transform(part="pre")``: blur, the resize to the load size, a center crop), and the uint8
results are kept: in memory (``memory``; worker processes forked from the main one share them), or
in one file under the cache folder (``disk``: ``~/.cache/lit_i2i/decoded/``, keyed like the feature
cache by the files' paths, sizes and modification times and the preprocessing) that later runs
memory-map instead of decoding again. Each item then gets only the random rest (crop, flip, ...),
so the batches are the same as without the cache, bit for bit, for the same random state.

For datasets that fit: 1,000 CycleGAN images at load size 286 take 245 MB, CelebA's 200k at 128 px
9.8 GB. ``disk`` needs images of one size after the start of the preprocessing (not
``scale_width`` on files of different aspect ratios).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from tqdm import tqdm

from datamodules.transforms import apply
from lit_i2i.errors import BadImageError, UserError

MODES = ("none", "memory", "disk")


def default_root() -> Path:
    from datamodules.street import cache_root

    return cache_root() / "decoded"


class DecodedSource:
    """A source (``len``, ``[i]`` -> (uint8 CHW, label, path)) whose images were decoded and
    pre-transformed once."""

    def __init__(self, images, labels: list, paths: list[str]):
        self.images, self.labels, self.paths = images, labels, paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        return self.images[i], self.labels[i], self.paths[i]


def _fields(source, pre, name: str) -> dict:
    files = [Path(p) for p in getattr(source, "files", [])]
    stats = [(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return {"dataset": name, "domain": "", "split": "train", "extractor": "decoded-uint8", "files": stats,
            "pre": repr(pre), "channels": getattr(source, "channels", None)}


def _label(source, i: int):
    labels = getattr(source, "labels", None)
    return labels[i] if labels is not None else -1


def decode_all(source, pre, mode: str, name: str, skip_bad: bool = False, root: str | Path | None = None):
    """``source`` decoded once through ``pre`` (see the module docstring); ``mode`` memory or disk."""
    if mode not in ("memory", "disk"):
        raise UserError(f"data.decode_cache must be one of {', '.join(MODES)}, got {mode!r}")
    from lit_i2i.metrics.cache import FeatureCache

    disk = mode == "disk"
    if disk and not hasattr(source, "files"):
        raise UserError(f"data.decode_cache: disk caches image files; {name} is not read from files (use memory)")
    cache = FeatureCache(root or default_root())
    fields = _fields(source, pre, name) if disk else None
    hit = cache.get(fields, mmap=True) if disk else None
    if hit is not None:
        keep = hit["keep"].tolist()
        return DecodedSource(hit["images"], [_label(source, i) for i in keep], [str(source.files[i]) for i in keep])
    images, labels, paths, keep = [], [], [], []
    for i in tqdm(range(len(source)), desc=f"data: decoding {name} once", unit="img", leave=False,
                  disable=len(source) < 200):
        try:
            x, label, path = source[i]
        except BadImageError as e:
            if not skip_bad:
                raise UserError(f"{e} (set skip_bad_files: true to skip such files with a warning)") from None
            warnings.warn(f"skipped an unreadable image: {e}", stacklevel=2)
            continue
        images.append(apply(pre, x) if len(pre.transforms) else x)
        labels.append(label)
        paths.append(path)
        keep.append(i)
    if not images:
        raise UserError(f"data.decode_cache: no readable image in {name}")
    same = len({tuple(x.shape) for x in images}) == 1
    if same:
        images = torch.stack(images)
    if disk:
        if not same:
            raise UserError(f"data.decode_cache: disk needs images of one size after the resize ({name} has several: "
                            "use memory, or a preprocess with a fixed size)")
        cache.put(fields, {"images": images, "keep": torch.tensor(keep)})
        stored = cache.get(fields, mmap=True)  # memory-mapped from the file just written
        if stored is not None:
            images = stored["images"]
    return DecodedSource(images, labels, paths)
