"""``lit-i2i bench data``: does the training loader keep up with the training step?

For a config it times the train loader alone (decode + transforms + collation, as ``lit-i2i fit``
builds it) for each ``--workers`` count and each ``--decode_cache`` mode (``datamodules.decoded``),
and puts it beside the images/s the training step consumes (the Trainer on the config's batches
resized to the crop size, from ``lit_i2i.bench.train``; or ``--train_img_s``). ``--generate N``
writes N real-size JPEGs (crops of scikit-image's photographs, quality 90) in the config's layout
into a temporary folder first, so no dataset is needed::

    lit-i2i bench data --config experiments/cyclegan/horse2zebra.yaml --generate 1000
    lit-i2i bench data --config experiments/press/celeba_glasses.yaml --generate 2000 --decode_cache none,memory

Layouts it can generate: the CycleGAN folders (``UnpairedFolders``: trainA/B, testA/B; 256x256
files) and CelebA (``CelebAAttributes``: img_align_celeba/ 178x218 files with a
``list_attr_celeba.txt`` of random attributes).
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import yaml

from lit_i2i.errors import UserError


def _photos() -> list[np.ndarray]:
    """The built-in colour photographs (``datamodules.builtin.PHOTOS``) as HWC uint8 arrays."""
    from datamodules.builtin import PHOTOS, photo

    return [p.permute(1, 2, 0).numpy() for p in map(photo, PHOTOS) if p.shape[0] == 3]


def write_jpegs(folder: Path, n: int, size: tuple[int, int], seed: int, names=None) -> list[str]:
    """``n`` JPEGs of ``size`` (w, h): random crops of the built-in photographs, quality 90."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    photos = _photos()
    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    out = []
    for i in range(n):
        p = photos[i % len(photos)]
        ph, pw = p.shape[:2]
        s = rng.uniform(0.4, 1.0)
        ch, cw = max(8, int(ph * s)), max(8, int(min(pw, ph * w / h) * s))
        y, x = rng.integers(0, ph - ch + 1), rng.integers(0, pw - cw + 1)
        img = Image.fromarray(p[y:y + ch, x:x + cw]).resize((w, h), Image.BICUBIC)
        name = names[i] if names else f"{i:05d}.jpg"
        img.save(folder / name, quality=90)
        out.append(name)
    return out


def generate(cfg: dict, root: Path, n: int) -> dict:
    """Writes ``n`` training images in the layout of ``cfg``'s datamodule under ``root``; returns the
    data init_args that point the config at them."""
    from datamodules.celeba import ATTR_FILE, ATTRIBUTES, CelebAAttributes
    from datamodules.folders import UnpairedFolders
    from lit_i2i.cli import import_class

    cls = import_class(cfg["data"]["class_path"])
    if issubclass(cls, UnpairedFolders):
        for k, d in enumerate(("A", "B")):
            write_jpegs(root / f"train{d}", n // 2, (256, 256), seed=k)
            write_jpegs(root / f"test{d}", 4, (256, 256), seed=10 + k)
        return {"root": str(root)}
    if issubclass(cls, CelebAAttributes):
        names = [f"{i + 1:06d}.jpg" for i in range(n)]
        write_jpegs(root / "img_align_celeba", n, (178, 218), seed=0, names=names)
        values = np.random.default_rng(0).random((n, len(ATTRIBUTES))) < 0.5
        rows = [f"{m} " + " ".join(f"{1 if v else -1:2d}" for v in row) for m, row in zip(names, values)]
        (root / ATTR_FILE).write_text("\n".join([str(n), " ".join(ATTRIBUTES)] + rows) + "\n")
        return {"root": str(root), "image_dir": "img_align_celeba"}
    raise UserError(f"--generate: writes the CycleGAN folders (UnpairedFolders) and CelebA (CelebAAttributes), "
                    f"not {cls.__name__}'s layout; point the config at real data instead")


def loader_rate(data_spec: dict, workers: int, decode_cache: str, batch_size: int, warmup: int, batches: int):
    """(images/s of the train loader, seconds to build its dataset, worker processes used)."""
    from lit_i2i.cli import instantiate

    args = {**(data_spec.get("init_args") or {}), "num_workers": workers, "batch_size": batch_size}
    if decode_cache != "none":
        args["decode_cache"] = decode_cache
    try:
        dm = instantiate({"class_path": data_spec["class_path"], "init_args": args})
    except TypeError as e:
        raise UserError(f"--decode_cache: {data_spec['class_path']} has no decode_cache option ({e})") from None
    dm.setup("fit")
    t0 = time.perf_counter()
    loader = dm.train_dataloader()
    t_build = time.perf_counter() - t0
    it, seen, t_start = iter(loader), 0, None
    for k in range(warmup + batches):
        if k == warmup:
            t_start = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        if k >= warmup:
            seen += _images(batch)
    rate = seen / (time.perf_counter() - t_start)
    del it, loader
    return rate, t_build, dm.workers()


def _images(batch) -> int:
    if isinstance(batch, dict):
        return sum(v.shape[0] for v in batch.values() if torch.is_tensor(v) and v.ndim == 4)
    return 0


def bench_data_main(argv: list[str]) -> int:
    from datamodules.base import available_cpus
    from lit_i2i.bench.train import Run, parse_variant, quiet
    from lit_i2i.cli import CommandParser

    ap = CommandParser(prog="lit-i2i bench data", description=__doc__.split("\n\n")[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--workers", default=None, help="comma list of num_workers (default 0 .. the cores here)")
    ap.add_argument("--decode_cache", default="none", help="comma list of none, memory, disk")
    ap.add_argument("--generate", type=int, default=None, metavar="N",
                    help="write N real-size JPEGs in the config's layout into a temporary folder and use them")
    ap.add_argument("--batch_size", type=int, default=None, help="default: the config's")
    ap.add_argument("--batches", type=int, default=40, help="timed batches per setting")
    ap.add_argument("--warmup", type=int, default=5, help="untimed batches first (worker start-up)")
    ap.add_argument("--train_img_s", type=float, default=None,
                    help="the step's consumption (default: measured, --train_steps batches of the Trainer)")
    ap.add_argument("--train_steps", type=int, default=5)
    ap.add_argument("--accelerator", default="auto")
    a = ap.parse_args(argv)
    quiet()
    p = Path(a.config)
    if not p.is_file():
        raise UserError(f"--config: file not found: {p}")
    cfg = yaml.safe_load(p.read_text())
    if not isinstance(cfg, dict) or "data" not in cfg or "model" not in cfg:
        raise UserError(f"--config: {p} has no model and data sections")
    workers = ([int(w) for w in a.workers.split(",")] if a.workers else list(range(available_cpus() + 1)))
    caches = [c for c in a.decode_cache.split(",") if c]
    bs = a.batch_size or int((cfg["data"].get("init_args") or {}).get("batch_size", 1))
    import datamodules.decoded as decoded

    default_root = decoded.default_root
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as restore:
        restore.callback(setattr, decoded, "default_root", default_root)
        data = dict(cfg["data"])
        if a.generate:
            decoded.default_root = lambda: Path(tmp) / "decoded"  # the generated files' cache goes with them
            t0 = time.perf_counter()
            data["init_args"] = {**(data.get("init_args") or {}), **generate(cfg, Path(tmp) / "data", a.generate)}
            print(f"bench data: wrote {a.generate} JPEGs in {time.perf_counter() - t0:.1f} s")
        step = a.train_img_s
        if step is None:
            use_cuda = a.accelerator in ("gpu", "cuda") or (a.accelerator == "auto" and torch.cuda.is_available())
            crop = int((data.get("init_args") or {}).get("crop_size", 256))
            ns = SimpleNamespace(accelerator="gpu" if use_cuda else "cpu", accelerator_type="cuda" if use_cuda else "cpu",
                                 device="cuda" if use_cuda else "cpu", warmup=2, steps=a.train_steps, lean=False,
                                 compile_backend="inductor", synthetic=crop)
            run = Run(p, bs, parse_variant("fp32"), ns, cfg={**cfg, "data": data})
            rate, _ = run.trainer_rate()
            step = rate * bs
            print(f"bench data: the training step consumes {step:.3g} img/s ({run.device}, {crop}x{crop}, batch {bs})")
        rows = []
        for cache in caches:
            for w in workers:
                rate, t_build, used = loader_rate(data, w, cache, bs, a.warmup, a.batches)
                rows.append((cache, w, used, rate, t_build))
                print(f"bench data: decode_cache {cache}, num_workers {w}: {rate:.1f} img/s", flush=True)
    print(f"\n{'decode_cache':<13} {'num_workers':>11} {'used':>5} {'loader img/s':>13} {'build s':>8} "
          f"{'step img/s':>11} {'keeps up':>9}")
    for cache, w, used, rate, t_build in rows:
        print(f"{cache:<13} {w:>11} {used:>5} {rate:>13.1f} {t_build:>8.2f} {step:>11.3g} "
              f"{'yes' if rate >= step else 'no':>9}")
    print(f"config {p}, batch {bs}, {a.batches} timed batches after {a.warmup}; 'used': worker processes after the "
          "cap at the cores here; 'build s': building the training set (the decode-once pass with a cache)")
    return 0
