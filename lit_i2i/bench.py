"""``lit-i2i bench train``: training throughput of experiment configs (a benchmark, not a test).

For each config it builds the model and data exactly as ``lit-i2i fit`` would (from the YAML's
``model`` and ``data`` sections), trains ``--steps`` batches after ``--warmup`` untimed ones on the
chosen accelerator, and prints batches/s and images/s. Use it to size runs and to compare CPU, GPU,
precision and channels-last settings, e.g.::

    lit-i2i bench train --configs experiments/quickstart.yaml experiments/pix2pix/digits.yaml
    lit-i2i bench train --configs experiments/cyclegan/horse2zebra.yaml --synthetic 256 --precision bf16-mixed
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
import yaml

from lit_i2i.errors import UserError

DEFAULT_CONFIGS = ["experiments/quickstart.yaml", "experiments/cyclegan/digits.yaml", "experiments/pix2pix/digits.yaml"]


class _Timer(pl.Callback):
    def __init__(self, warmup: int, steps: int):
        self.warmup, self.steps, self.t0, self.n = warmup, steps, None, 0

    def _sync(self, pl_module):
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.fit_loop.total_batch_idx + 1 == self.warmup:
            self._sync(pl_module)
            self.t0 = time.perf_counter()
        elif self.t0 is not None:
            self.n += 1
            if self.n >= self.steps:
                trainer.should_stop = True

    def on_train_end(self, trainer, pl_module):
        self._sync(pl_module)
        self.elapsed = time.perf_counter() - self.t0 if self.t0 else float("nan")


class _Synthetic(pl.LightningDataModule):
    """Random images of a given size with the batch keys of unpaired/paired data (no files needed)."""

    def __init__(self, size: int, batch_size: int, n: int = 10_000):
        super().__init__()
        self.size, self.batch_size, self.n = size, batch_size, n

    def train_dataloader(self):
        x = torch.rand(64, 3, self.size, self.size) * 2 - 1

        class DS(torch.utils.data.Dataset):
            def __len__(_):
                return self.n

            def __getitem__(_, i):
                return {"A": x[i % 64], "B": x[(i + 1) % 64]}

        return torch.utils.data.DataLoader(DS(), batch_size=self.batch_size, shuffle=False)


def bench_train_main(argv: list[str]) -> int:
    from lit_i2i.commands import _instantiate

    ap = argparse.ArgumentParser(prog="lit-i2i bench train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS)
    ap.add_argument("--steps", type=int, default=30, help="timed batches")
    ap.add_argument("--warmup", type=int, default=5, help="untimed batches first")
    ap.add_argument("--accelerator", default="auto")
    ap.add_argument("--precision", default="32-true")
    ap.add_argument("--batch_size", type=int, default=None, help="override the config's batch size")
    ap.add_argument("--synthetic", type=int, default=None, metavar="SIZE",
                    help="random SIZExSIZE images instead of the config's data (real datasets not needed)")
    a = ap.parse_args(argv)
    rows = []
    for cfg_path in a.configs:
        p = Path(cfg_path)
        if not p.is_file():
            raise UserError(f"--configs: file not found: {p}")
        cfg = yaml.safe_load(p.read_text())
        pl.seed_everything(0, verbose=False)
        model = _instantiate(cfg["model"])
        data_args = dict(cfg["data"].get("init_args") or {})
        bs = a.batch_size or data_args.get("batch_size", 1)
        if a.synthetic:
            dm = _Synthetic(a.synthetic, bs)
        else:
            data_args["batch_size"] = bs
            dm = _instantiate({"class_path": cfg["data"]["class_path"], "init_args": data_args})
        timer = _Timer(a.warmup, a.steps)
        trainer = pl.Trainer(accelerator=a.accelerator, devices=1, precision=a.precision,
                             max_epochs=10_000,
                             limit_val_batches=0, num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False, callbacks=[timer])
        trainer.fit(model, dm)
        rate = timer.n / timer.elapsed if timer.elapsed == timer.elapsed and timer.elapsed > 0 else float("nan")
        rows.append((p.as_posix(), getattr(model, "method_name", "?"), bs, rate, rate * bs, str(model.device)))
    print(f"\n{'config':<42} {'method':<10} {'batch':>5} {'batch/s':>8} {'img/s':>8}  device")
    for cfg_path, method, bs, rate, ips, dev in rows:
        print(f"{cfg_path:<42} {method:<10} {bs:>5} {rate:>8.2f} {ips:>8.1f}  {dev}")
    return 0
