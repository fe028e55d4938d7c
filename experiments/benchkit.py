"""Pieces the benchmark scripts under ``experiments/`` share: reusing or clearing a run folder, and the
markdown table of measures (rows) by methods (columns) that each script prints and writes."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path


def reuse_or_clear(run: Path, key: str, retrain: bool) -> Path | None:
    """``run``'s ``checkpoints/last.ckpt`` when it exists and ``retrain`` is off (said on stdout); else the
    folder is removed (a half-written run from an earlier call) and None is returned: train afresh."""
    ckpt = run / "checkpoints" / "last.ckpt"
    if ckpt.is_file() and not retrain:
        print(f"[{key}] reusing {ckpt} (--retrain to train again)", flush=True)
        return ckpt
    if run.exists():
        shutil.rmtree(run)
    return None


def default_format(key: str, value: float) -> str:
    return f"{value:.0f}" if key == "steps" else f"{value:.3f}"


def measures_table(measures: Sequence[tuple[str, str, str]], columns: Sequence[tuple[str, dict]],
                   first: str = "metric", skip_empty: int | None = None,
                   fmt: Callable[[str, float], str] = default_format) -> str:
    """A markdown table: one row per measure ``(key, label, better)``, one column per ``(name, results)``.

    A missing value prints as "–". ``skip_empty``: leave out a measure when the first ``skip_empty``
    columns (the methods, not the calibration columns after them) all lack it; None keeps every row.
    """
    lines = [f"| {first} | better | " + " | ".join(name for name, _ in columns) + " |",
             "|---" * (len(columns) + 2) + "|"]
    for key, label, better in measures:
        vals = [res.get(key) for _, res in columns]
        if skip_empty is not None and all(v is None for v in vals[:skip_empty]):
            continue
        cells = ["–" if v is None else fmt(key, v) for v in vals]
        lines.append(f"| {label} | {better} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
