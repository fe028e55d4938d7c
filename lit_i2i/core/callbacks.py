"""Callbacks every run uses: image grids, the end-of-run summary (metrics.json), saving on a signal.

``ImageGrid`` draws a fixed batch of the validation data through ``pl_module.visuals`` (rows are
samples, columns the method's named visuals, named in a header strip) every ``every_n_steps``
training batches and at the end of fit; it writes PNGs to ``<run>/grids/`` and logs them to W&B (as
uint8: a float tensor logs black there) or TensorBoard. ``RunSummary`` writes ``<run>/metrics.json``
at the end of fit (``metrics_test.json`` / ``metrics_validate.json`` for those runs, so a fit's file
is never replaced), with the last logged losses and every metric the ``TranslationMetrics`` callback
computed, and prints a short table. ``SaveOnSignal`` makes SIGTERM (a preempted cluster job) and a
first Ctrl+C stop at the end of the current batch with ``last.ckpt`` saved. ``StopAfter`` ends a fit
after a number of training batches (Lightning's ``max_steps`` counts optimizer steps, which differ
by method). The run folder is ``trainer.default_root_dir``.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger
from pytorch_lightning.utilities import rank_zero_info, rank_zero_only
from pytorch_lightning.utilities.exceptions import SIGTERMException

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
        grid = visual_grid(vis, max_rows=self.n_samples, labels=True)
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
    """Writes ``metrics.json`` in the run folder at the end of fit (``metrics_<stage>.json`` at the end
    of a ``validate`` or ``test`` run) and prints it."""

    def __init__(self, filename: str = "metrics.json"):
        self.filename = filename
        self._t0 = time.time()

    def path(self, trainer) -> Path:
        """Where this run's summary goes: ``filename`` for fit, ``<stem>_<stage><suffix>`` otherwise."""
        name, stage = Path(self.filename), getattr(trainer.state.fn, "value", trainer.state.fn)
        if stage is not None and stage != "fit":
            name = name.with_name(f"{name.stem}_{stage}{name.suffix}")
        return Path(trainer.default_root_dir) / name

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
                    # the flat name (acc_AtoB) beside the logged one (val/acc_AtoB), for scripts
                    out.setdefault(k.split("/", 1)[-1], f)
        return out

    @staticmethod
    def table(data: dict) -> list[str]:
        """The printed rows: no training losses, each metric once (under its logged name when it has
        both), numbers only."""
        logged = {k.split("/", 1)[-1] for k in data if "/" in k}
        keys = [k for k in data if not k.startswith("train/") and k not in logged
                and (isinstance(data[k], str) or _number(data[k]) is not None)]
        width = max(len(k) for k in keys)
        return [f"  {k:<{width}}  {data[k]:.4f}" if isinstance(data[k], float) else f"  {k:<{width}}  {data[k]}"
                for k in keys]

    @rank_zero_only
    def write(self, trainer, pl_module) -> None:
        data = self.collect(trainer, pl_module)
        path = self.path(trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")
        print(f"\nrun summary ({path}):")
        print("\n".join(self.table(data)))

    def on_fit_end(self, trainer, pl_module):
        self.write(trainer, pl_module)

    def on_validation_end(self, trainer, pl_module):
        if trainer.state.fn == "validate":  # a `validate` run, not fit's validation
            self.write(trainer, pl_module)

    def on_test_end(self, trainer, pl_module):
        self.write(trainer, pl_module)


class Checkpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` (every option the same) that also writes ``last.ckpt`` when training
    ends between its periodic saves.

    Lightning 2.6's own one writes ``last.ckpt`` only beside a periodic checkpoint, and at the end of
    training only if it never wrote one: a run stopped by ``max_steps`` (or ``max_epochs``) after
    its last ``every_n_epochs`` save kept the state of that save as ``last.ckpt``, so ``translate``,
    ``evaluate``, the table evaluations of ``lit-i2i reproduce`` and ``--ckpt_path last`` read an
    earlier model than the one trained (e.g. step 1,780 of 2,400). Here the end of training always
    leaves ``last.ckpt`` at the final step.
    """

    def on_train_end(self, trainer, pl_module) -> None:
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        else:
            super().on_train_end(trainer, pl_module)


class StopAfter(pl.Callback):
    """Stops training after ``n`` training batches (iterations), whatever the method's optimizer steps per batch."""

    def __init__(self, n: int):
        self.n, self.seen = n, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seen += 1
        if self.seen >= self.n:
            trainer.should_stop = True


class StopNow(SIGTERMException):
    """A second Ctrl+C: stop at once, without saving (the step in progress may be half done)."""


class SaveOnSignal(pl.Callback):
    """SIGTERM (a preempted cluster job) or a first Ctrl+C during fit: stop at the end of the
    current batch, save ``last.ckpt`` in the checkpoint folder (so ``--ckpt_path last`` continues),
    and exit with 128 + the signal number (143, 130).

    SIGTERM is Lightning's own handling (its signal connector sets ``trainer.received_sigterm`` and
    the loops raise ``SIGTERMException`` at the next batch boundary, coordinated across DDP ranks);
    Ctrl+C is routed into the same path. A second Ctrl+C stops at once without saving.
    """

    def __init__(self):
        self.signum: int | None = None
        self._previous = None

    def setup(self, trainer, pl_module, stage):
        self.signum = None
        if threading.current_thread() is threading.main_thread():
            self._previous, self._pid = signal.getsignal(signal.SIGINT), os.getpid()
            signal.signal(signal.SIGINT, lambda signum, frame: self._on_sigint(trainer))

    def _on_sigint(self, trainer) -> None:
        if os.getpid() != self._pid:  # a DataLoader worker (forked with this handler): the main process decides
            return
        if self.signum == signal.SIGINT or trainer.state.fn != "fit":
            raise StopNow(128 + signal.SIGINT)
        self.signum = signal.SIGINT
        print("\nlit-i2i: interrupted: stopping at the end of this batch and saving last.ckpt "
              "(Ctrl+C again to stop at once, without saving)", file=sys.stderr, flush=True)
        trainer._signal_connector.received_sigterm = True  # the loops' own stop-at-batch-end flag

    def _restore(self) -> None:
        if self._previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._previous)
        self._previous = None

    def last_path(self, trainer) -> Path:
        cb = trainer.checkpoint_callback
        if cb is not None and getattr(cb, "dirpath", None):
            return Path(cb.dirpath) / f"{cb.CHECKPOINT_NAME_LAST}{cb.FILE_EXTENSION}"
        return Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt"

    def on_exception(self, trainer, pl_module, exception):
        self._restore()
        if not isinstance(exception, SIGTERMException):
            return
        signum = self.signum or signal.SIGTERM
        if not isinstance(exception, StopNow):
            exception.code = 128 + signum
        if isinstance(exception, StopNow) or trainer.state.fn != "fit":
            rank_zero_info(f"lit-i2i: stopped by {signal.Signals(signum).name}; nothing saved")
            return
        path = self.last_path(trainer)
        if trainer.checkpoint_callback is not None:  # so that the continued run writes last.ckpt, not last-v1.ckpt
            trainer.checkpoint_callback.last_model_path = str(path)
        trainer.save_checkpoint(path)  # the whole state (not weights only), to continue exactly
        rank_zero_info(f"lit-i2i: stopped by {signal.Signals(signum).name} at step {trainer.global_step}; saved "
                       f"{path} (continue with --ckpt_path last)")

    def teardown(self, trainer, pl_module, stage):
        self._restore()
