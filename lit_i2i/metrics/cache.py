"""On-disk cache of what a feature extractor computes on *real* images, so that a later evaluation runs
only the generator and the extractor on the translations.

An entry is keyed by a stable hash (SHA-256 of sorted JSON) of: dataset name, split, domain,
extractor name (network, weights and version), image resolution, number of images, a fingerprint
of the first and last image (pixels, label, path: it changes when the data or its rendering seed
changes) and :data:`CACHE_VERSION`. It holds a dict of tensors, saved with ``torch.save`` as
``<root>/<dataset>-<domain>-<split>-<extractor>-<hash>.pt`` (written atomically: a concurrent
reader never sees half a file). Root: ``cache_dir`` or ``~/.cache/lit_i2i/features``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import torch

CACHE_VERSION = 1


def default_root() -> Path:
    from lit_i2i.metrics.classifier import cache_root

    return cache_root() / "features"


def fingerprint(dataset, n: int) -> str:
    """Hash of the first and the last of the ``n`` items of an eval dataset (image, label, path)."""
    h = hashlib.sha256()
    for i in sorted({0, n - 1}):
        item = dataset[i]
        h.update(item["image"].detach().cpu().contiguous().numpy().tobytes())
        h.update(f"{item.get('label')}|{item.get('path')}".encode())
    return h.hexdigest()[:16]


def stable_hash(fields: dict) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:20]


class FeatureCache:
    """``get(fields)`` / ``put(fields, tensors)``; ``enabled=False`` makes both no-ops."""

    def __init__(self, root: str | os.PathLike | None = None, enabled: bool = True):
        self.root = Path(root).expanduser() if root else default_root()
        self.enabled = enabled

    def path(self, fields: dict) -> Path:
        slug = "-".join(str(fields.get(k, "")) for k in ("dataset", "domain", "split", "extractor"))
        slug = re.sub(r"[^A-Za-z0-9_.=+-]+", "_", slug)[:120]
        return self.root / f"{slug}-{stable_hash({**fields, 'cache_version': CACHE_VERSION})}.pt"

    def get(self, fields: dict, mmap: bool = False) -> dict[str, torch.Tensor] | None:
        """The entry of ``fields`` (None if absent or unreadable); ``mmap``: memory-mapped, not read."""
        if not self.enabled:
            return None
        p = self.path(fields)
        if not p.is_file():
            return None
        try:
            return torch.load(p, map_location="cpu", weights_only=True, mmap=mmap)["data"]
        except Exception:  # noqa: BLE001 - a corrupt entry is recomputed, never fatal
            return None

    def put(self, fields: dict, data: dict[str, torch.Tensor]) -> Path | None:
        if not self.enabled:
            return None
        p = self.path(fields)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        torch.save({"fields": {k: str(v) for k, v in fields.items()},
                    "data": {k: v.detach().cpu() for k, v in data.items()}}, tmp)
        os.replace(tmp, p)
        return p
