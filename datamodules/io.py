"""Listing and decoding image files, with one clear error per bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torchvision.io import ImageReadMode, decode_image

from lit_i2i.errors import BadImageError, UserError

IMG_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".gif")


def require_dir(path: str | Path, what: str) -> Path:
    """Return ``path`` as a Path, or raise a UserError naming it and what was expected there."""
    p = Path(path).expanduser()
    if not p.is_dir():
        hint = " (it is a file)" if p.exists() else ""
        raise UserError(f"{what}: folder not found: {p}{hint}")
    return p


def list_images(folder: str | Path, what: str = "image folder", recursive: bool = False) -> list[Path]:
    """Sorted image files in ``folder``; a UserError if the folder is missing or holds no image."""
    d = require_dir(folder, what)
    it = d.rglob("*") if recursive else d.iterdir()
    files = sorted(p for p in it if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)
    if not files:
        raise UserError(f"{what}: no images ({', '.join(IMG_EXTENSIONS[:4])}, ...) in {d}")
    return files


def load_image(path: str | Path, channels: int = 3) -> torch.Tensor:
    """Decode an image file to a uint8 CHW tensor with ``channels`` channels (1 or 3).

    The channel count follows the config, not the file: a grayscale file is expanded to RGB and an
    RGB file is converted to grayscale when ``channels == 1``.
    """
    mode = ImageReadMode.GRAY if channels == 1 else ImageReadMode.RGB
    try:
        data = Path(path).read_bytes()  # Python's own errors: not found, permission denied, a folder
        img = decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=mode)
    except (RuntimeError, ValueError, OSError) as e:
        raise unreadable(path, e) from None
    if img.ndim == 4:  # animated GIF: first frame
        img = img[0]
    return img


def unreadable(path: str | Path, e: Exception) -> BadImageError:
    """The one-line error for an image file that cannot be read, saying why (what ``e`` was)."""
    if isinstance(e, FileNotFoundError):
        why = "image not found"
    elif isinstance(e, PermissionError):
        why = "permission denied: cannot read image (check the file's permissions)"
    elif isinstance(e, IsADirectoryError):
        why = "not an image file but a folder"
    elif "truncated" in str(e).lower() or "incomplete" in str(e).lower() or "premature" in str(e).lower():
        why = "truncated image (the file ends before its pixel data does)"
    else:
        why = "not a readable image (corrupt or unknown format)"
    return BadImageError(f"{why}: {path}", str(path))


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of an image file from its header only (fast); UserError if unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise unreadable(path, e) from None
    return h, w


def read_sizes(files: list[Path], skip_bad: bool = False, what: str = "images") -> dict[Path, tuple[int, int]]:
    """(height, width) of every file from its header, in order; the bad ones raise or are skipped.

    A missing or unreadable file is a UserError naming it; with ``skip_bad`` such files are left out
    with one warning giving their count (and a UserError if none is left).
    """
    sizes, bad = {}, []
    for f in files:
        try:
            sizes[Path(f)] = image_size(f)
        except UserError as e:
            if not skip_bad:
                raise UserError(f"{e} (set skip_bad_files: true to skip such files with a warning)") from None
            bad.append(f)
    if bad:
        warnings.warn(f"{what}: skipped {len(bad)} unreadable file(s), e.g. {bad[0]}", stacklevel=3)
        if not sizes:
            raise UserError(f"{what}: every file is unreadable, e.g. {bad[0]}")
    return sizes


def check_min_size(sizes: dict[Path, tuple[int, int]], min_size: tuple[int, int] | None, part: str = "") -> None:
    """UserError naming the first image smaller than ``min_size`` (h, w); ``part`` names a sub-image."""
    if min_size is None:
        return
    for f, (h, w) in sizes.items():
        if h < min_size[0] or w < min_size[1]:
            raise UserError(
                f"image {f}{part} is {w}x{h} (WxH), smaller than the crop size {min_size[1]}x{min_size[0]}; "
                "lower crop_size/load_size or use another preprocess")


def check_images(files: list[Path], skip_bad: bool = False,
                 min_size: tuple[int, int] | None = None, what: str = "images") -> list[Path]:
    """Check every file's header before training; raise on the first bad one or skip bad ones.

    Reads headers only (not pixels), so it stays fast on CelebA-sized folders. ``min_size`` (h, w):
    images smaller than this are an error, since they cannot be cropped to the configured size.
    Returns the files to use (all, or the readable ones with ``skip_bad``).
    """
    sizes = read_sizes(files, skip_bad, what)
    check_min_size(sizes, min_size)
    return list(sizes)
