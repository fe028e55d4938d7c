"""Callbacks every run uses: image grids, the end-of-run summary (metrics.json), run tags.

``ImageGrid`` draws a fixed batch of the validation data through ``pl_module.visuals`` (rows are
samples, columns the method's named visuals) every ``every_n_steps`` training batches and at the
end of fit; it writes PNGs to ``<run>/grids/`` and logs them to W&B (as uint8: a float tensor logs
black there) or TensorBoard. ``RunSummary`` writes ``<run>/metrics.json`` at the end of fit/test,
with the last logged losses and every metric the ``TranslationMetrics`` callback computed, and
prints a short table. The run folder is ``trainer.default_root_dir``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger
from pytorch_lightning.utilities import rank_zero_only

from lit_i2i.core.visuals import save_grid, visual_grid


def _collate_first(ds, n: int) -> dict:
    from torch.utils.data import default_collate

    return default_collate([ds[i] for i in range(min(n, len(ds)))])


class ImageGrid(pl.Callback):
    def __init__(self, every_n_steps: int = 500, n_samples: int = 8, split: str = "val"):
        self.every_n_steps, self.n_samples, self.split = every_n_steps, n_samples, split
        self._batch: dict | None = None
        self.last_path: Path | None = None

    def _fixed_batch(self, trainer) -> dict:
        if self._batch is None:
            dm = trainer.datamodule
            self._batch = _collate_first(dm.dataset(self.split), self.n_samples)
        return self._batch

    @rank_zero_only
    def draw(self, trainer, pl_module, tag: str) -> None:
        batch = {k: v.to(pl_module.device) if torch.is_tensor(v) else v for k, v in self._fixed_batch(trainer).items()}
        was = pl_module.training
        pl_module.eval()
        with torch.no_grad():
            vis = pl_module.visuals(batch)
        pl_module.train(was)
        grid = visual_grid(vis, max_rows=self.n_samples)
        step = trainer.global_step
        self.last_path = save_grid(grid, Path(trainer.default_root_dir) / "grids" / f"{tag}_step{step:07d}.png")
        caption = " | ".join(vis)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key=f"grids/{tag}", images=[grid.permute(1, 2, 0).numpy()], caption=[caption],
                                 step=step)
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(f"grids/{tag}", grid, step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        # every N training batches over the whole run (not within an epoch); global_step would count
        # each optimizer's step separately under manual optimization
        if self.every_n_steps and (trainer.fit_loop.total_batch_idx + 1) % self.every_n_steps == 0:
            self.draw(trainer, pl_module, "train")

    def on_fit_end(self, trainer, pl_module):
        self.draw(trainer, pl_module, "final")


def _number(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


class RunSummary(pl.Callback):
    """Writes ``metrics.json`` in the run folder at the end of fit and of test, and prints it."""

    def __init__(self, filename: str = "metrics.json"):
        self.filename = filename
        self._t0 = time.time()

    def on_fit_start(self, trainer, pl_module):
        self._t0 = time.time()

    def collect(self, trainer, pl_module) -> dict:
        out = {"method": getattr(pl_module, "method_name", type(pl_module).__name__),
               "dataset": getattr(trainer.datamodule, "name", None),
               "global_step": trainer.global_step, "epoch": trainer.current_epoch,
               "wall_time_s": round(time.time() - self._t0, 1)}
        for k, v in sorted(trainer.callback_metrics.items()):
            f = _number(v)
            if f is not None:
                out[k] = f
        for cb in trainer.callbacks:
            for k, v in (getattr(cb, "results", None) or {}).items():
                f = _number(v)
                if f is not None:
                    out[k] = f
                    # the flat name (acc_AtoB) as the issue asks, beside the logged one (val/acc_AtoB)
                    out.setdefault(k.split("/", 1)[-1], f)
        return out

    @rank_zero_only
    def write(self, trainer, pl_module) -> None:
        data = self.collect(trainer, pl_module)
        path = Path(trainer.default_root_dir) / self.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")
        keys = [k for k in data if not k.startswith("train/")]
        width = max(len(k) for k in keys)
        print(f"\nrun summary ({path}):")
        for k in keys:
            v = data[k]
            print(f"  {k:<{width}}  {v:.4f}" if isinstance(v, float) else f"  {k:<{width}}  {v}")

    def on_fit_end(self, trainer, pl_module):
        self.write(trainer, pl_module)

    def on_test_end(self, trainer, pl_module):
        self.write(trainer, pl_module)
