"""Test helpers shared by the training tests: tiny trainers, models and built-in data."""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from datamodules.builtin import BuiltinDigits

TINY_CYCLEGAN = dict(netG="resnet", ngf=8, n_blocks=1, n_down=2, netD="n_layers", ndf=8, n_layers_D=2,
                     pool_size=4, n_epochs=1, n_epochs_decay=1)
TINY_PIX2PIX = dict(netG="unet_32", ngf=8, netD="n_layers", ndf=8, n_layers_D=2, use_dropout=False,
                    n_epochs=1, n_epochs_decay=1)


def tiny_data(**kw) -> BuiltinDigits:
    args = dict(train_limit=16, batch_size=4, eval_batch_size=8)
    args.update(kw)
    return BuiltinDigits(**args)


def trainer(tmp_path, **kw) -> pl.Trainer:
    args = dict(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                enable_model_summary=False, default_root_dir=str(tmp_path), num_sanity_val_steps=0,
                limit_val_batches=0)
    args.update(kw)
    return pl.Trainer(**args)


def params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict, after: dict, prefix: str) -> list[bool]:
    return [not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix) and before[k].is_floating_point()
            and "running" not in k]


def recording(cls):
    """``cls`` that snapshots its parameters at the start and after every optimizer ``step``."""
    class Recording(cls):
        def on_train_start(self):
            self.snaps = [("start", params(self))]

        def step(self, name, loss, clip=None, **kw):
            super().step(name, loss, clip, **kw)
            self.snaps.append((name, params(self)))
    Recording.__name__ = f"Recording{cls.__name__}"
    return Recording


def check_steps(model, g_prefixes, d_prefixes) -> list[str]:
    """The step names ``recording(cls)`` saw; asserts each step moved all of its own nets (G: the
    ``g_prefixes``, any other step: the ``d_prefixes``) and none of the others."""
    g_prefixes, d_prefixes = tuple(g_prefixes), tuple(d_prefixes)
    for (_, before), (name, after) in zip(model.snaps, model.snaps[1:]):
        moved = {p: any(changed(before, after, p)) for p in g_prefixes + d_prefixes}
        own, other = (g_prefixes, d_prefixes) if name == "G" else (d_prefixes, g_prefixes)
        assert all(moved[p] for p in own), (name, moved)
        assert not any(moved[p] for p in other), (name, moved)
    return [n for n, _ in model.snaps]


def cli_fit(tmp_path, config, *args):
    """``lit-i2i fit --config CONFIG ARGS`` into ``tmp_path/run``; returns (last.ckpt path, its state)."""
    from lit_i2i.cli import main

    root = tmp_path / "run"
    assert main(["fit", "--config", config, "--trainer.default_root_dir", str(root), *args]) == 0
    ckpt = root / "checkpoints" / "last.ckpt"
    return ckpt, torch.load(ckpt, weights_only=True)
