"""``lit-i2i data preview``: a grid of samples of a built-in domain (or a real digit dataset), so that
a user can see what a domain holds before training on it.

    lit-i2i data preview --domain street-digits                       # 8 x 8 test images -> PNG
    lit-i2i data preview --domain colored-digits --split train --n 32 --out grid.png
    lit-i2i data preview --domain svhn --root /data/digits            # a torchvision digit dataset

Columns are named by the digit label when the domain has labels (column k holds the images of
label k, top to bottom, where the domain has enough of them; otherwise images in order).
"""

from __future__ import annotations

from pathlib import Path

import torch

from lit_i2i.errors import UserError


def preview_grid(source, n: int = 64, by_label: bool = True) -> tuple[torch.Tensor, list[str]]:
    """(uint8 grid, column names) of the first ``n`` items of a source; by label where it can."""
    from lit_i2i.core.visuals import visual_grid

    labels = [int(source[i][1]) for i in range(min(len(source), 20 * n))] if by_label else []
    classes = sorted({c for c in labels if c >= 0})
    rows = max(1, n // max(1, len(classes))) if classes else 0
    cols: dict[str, list[torch.Tensor]] = {}
    if classes and len(classes) <= 16:
        for c in classes:
            picks = [i for i, y in enumerate(labels) if y == c][:rows]
            cols[str(c)] = [source[i][0] for i in picks]
        rows = min(len(v) for v in cols.values())
    if not cols or rows == 0:
        k = int(max(1, round(n ** 0.5)))
        items = [source[i][0] for i in range(min(n, len(source)))]
        cols = {f"#{j}": items[j::k] for j in range(k)}
        rows = min(len(v) for v in cols.values())
    vis = {name: torch.stack(v[:rows]).float() / 127.5 - 1 for name, v in cols.items()}
    return visual_grid(vis, max_rows=rows, labels=True), list(vis)


def preview_main(argv: list[str]) -> int:
    from lit_i2i.cli import CommandParser
    from datamodules.builtin import DOMAINS, domain_source
    from lit_i2i.core.visuals import save_grid

    ap = CommandParser(prog="lit-i2i data preview", description="A grid of samples of a domain.")
    ap.add_argument("what", choices=["preview"])
    ap.add_argument("--domain", required=True, help=f"a built-in domain ({', '.join(DOMAINS)}) or mnist|svhn|usps")
    ap.add_argument("--split", default="test", choices=["train", "test"])
    ap.add_argument("--half", default="A", choices=["A", "B", "all"], help="the built-in domain's half")
    ap.add_argument("--seed", type=int, default=0, help="the rendering seed of a built-in domain")
    ap.add_argument("--n", type=int, default=64, help="about how many images")
    ap.add_argument("--root", default="datasets/digits", help="for mnist/svhn/usps: torchvision's files")
    ap.add_argument("--out", default=None, help="PNG path (default runs/preview/<domain>-<split>.png)")
    a = ap.parse_args(argv)
    if a.n < 1:
        raise UserError(f"--n must be at least 1, got {a.n}")
    if a.domain in DOMAINS:
        src = domain_source(a.domain, a.half, a.split, a.seed)
    elif a.domain in ("mnist", "svhn", "usps"):
        from datamodules.digit_datasets import digit_dataset_source

        src = digit_dataset_source(a.domain, a.root, a.split, option="--root", fetch="--download")
    else:
        raise UserError(f"--domain: unknown domain {a.domain!r}; choose one of {', '.join(DOMAINS)}, mnist, svhn, usps")
    grid, cols = preview_grid(src, a.n)
    out = Path(a.out or f"runs/preview/{a.domain}-{a.split}.png")
    if out.exists() and out.is_dir():
        raise UserError(f"--out: {out} is a folder; give a .png file path")
    save_grid(grid, out)
    print(f"{a.domain} ({a.split}, {len(src)} images): a grid of {grid.shape[2]}x{grid.shape[1]} px, columns "
          f"{', '.join(cols)} -> {out}")
    return 0
