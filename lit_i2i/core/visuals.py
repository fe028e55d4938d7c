"""Image grids people can look at: rows are samples, columns are named visuals (real_A, fake_B, ...),
optionally under a header strip that names each column (what the run's grids carry)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.io import write_png
from torchvision.utils import make_grid

from datamodules.transforms import to_uint8


def label_strip(names: list[str], tile: int, padding: int, height: int = 14) -> torch.Tensor:
    """A white uint8 (3, height, W) strip with each name centred (black, PIL's default font) over its
    column of a ``make_grid`` of ``len(names)`` columns of ``tile``-wide tiles; long names are cut
    with "..." to fit their column."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    width = len(names) * (tile + padding) + padding
    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw, font = ImageDraw.Draw(img), ImageFont.load_default()
    for i, name in enumerate(names):
        text = name
        while len(text) > 1 and draw.textlength(text, font=font) > tile:
            text = text[:-2] + "…" if len(text) > 2 else text[:1]
        x0 = padding + i * (tile + padding) + (tile - draw.textlength(text, font=font)) / 2
        draw.text((x0, 1), text, fill=(0, 0, 0), font=font)
    return torch.from_numpy(np.array(img)).permute(2, 0, 1)


def visual_grid(visuals: dict[str, torch.Tensor], max_rows: int = 8, min_size: int = 64,
                labels: bool = False) -> torch.Tensor:
    """A uint8 (3, H, W) grid: one row per sample, one column per visual, each tile at least ``min_size``.

    Visuals are float NCHW in [-1, 1]; 1-channel visuals (masks, grayscale) are shown as gray; masks
    in [0, 1] should be mapped to [-1, 1] by the method before. Small images (32x32 digits) are
    upscaled by an integer factor with nearest-neighbour so that pixels stay crisp. ``labels``: a
    header strip names the columns (:func:`label_strip`), so a grid reads without the README.
    """
    names = list(visuals)
    n = min(max_rows, min(v.shape[0] for v in visuals.values()))
    h = max(v.shape[-2] for v in visuals.values())
    w = max(v.shape[-1] for v in visuals.values())
    scale = max(1, -(-min_size // max(h, 1)))
    tiles = []
    for i in range(n):
        for k in names:
            t = visuals[k][i].detach().float().cpu()
            if t.shape[0] == 1:
                t = t.expand(3, -1, -1)
            t = t[:3]
            if t.shape[-2:] != (h, w):
                t = F.interpolate(t[None], size=(h, w), mode="nearest")[0]
            tiles.append(t)
    grid = torch.stack(tiles)
    if scale > 1:
        grid = F.interpolate(grid, scale_factor=scale, mode="nearest")
    grid = to_uint8(make_grid(grid, nrow=len(names), padding=2, pad_value=1.0))
    if labels:
        grid = torch.cat([label_strip(names, w * scale, 2), grid], dim=1)
    return grid


def save_grid(grid: torch.Tensor, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(grid.cpu(), str(path))
    return path
