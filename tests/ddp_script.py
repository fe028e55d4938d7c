"""Run by tests/test_ddp.py: a tiny CycleGAN on a fixed global batch of 8, one process or 2-process
DDP on CPU (gloo), writing the global loss_G per batch and the final weights.

    python tests/ddp_script.py single|ddp OUT_DIR
"""

import json
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import TINY_CYCLEGAN  # noqa: E402

from lit_i2i.methods.cyclegan import CycleGAN  # noqa: E402


class FixedPairs(Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.a = torch.rand(8, 3, 32, 32, generator=g) * 2 - 1
        self.b = torch.rand(8, 3, 32, 32, generator=g) * 2 - 1

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return {"A": self.a[i], "B": self.b[i]}


class Data(pl.LightningDataModule):
    def __init__(self, batch_size):
        super().__init__()
        self.batch_size = batch_size

    def train_dataloader(self):
        return DataLoader(FixedPairs(), batch_size=self.batch_size, shuffle=False)


class Record(pl.Callback):
    def __init__(self):
        self.losses = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        local = trainer.callback_metrics["train/loss_G"].reshape(1)
        self.losses.append(pl_module.all_gather(local).float().mean().item())


def main(mode: str, out: str) -> None:
    pl.seed_everything(0)
    model = CycleGAN(**{**TINY_CYCLEGAN, "pool_size": 0})  # no pool: its draws are per process
    rec = Record()
    ddp = mode == "ddp"
    trainer = pl.Trainer(accelerator="cpu", devices=2 if ddp else 1,
                         strategy="ddp_find_unused_parameters_true" if ddp else "auto", max_steps=4,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, use_distributed_sampler=True, callbacks=[rec])
    trainer.fit(model, Data(4 if ddp else 8))
    if trainer.global_rank == 0:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "losses.json").write_text(json.dumps(rec.losses))
        torch.save(model.state_dict(), Path(out) / "weights.pt")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
