"""Training-step semantics: which parameters each optimizer step touches, exact resume, EMA, AMP."""

import pytorch_lightning as pl
import torch

from helpers import TINY_CYCLEGAN, TINY_PIX2PIX, check_steps, recording, tiny_data, trainer
from lit_i2i.methods.cyclegan import CycleGAN
from lit_i2i.methods.pix2pix import Pix2Pix




def test_cyclegan_g_step_then_d_step_touch_only_their_nets(tmp_path):
    pl.seed_everything(0)
    model = recording(CycleGAN)(**TINY_CYCLEGAN)
    trainer(tmp_path, max_steps=4).fit(model, tiny_data())
    assert check_steps(model, ["netG_A", "netG_B"], ["netD_A", "netD_B"]) == ["start", "G", "D", "G", "D"]


def test_pix2pix_d_step_then_g_step_touch_only_their_nets(tmp_path):
    pl.seed_everything(0)
    model = recording(Pix2Pix)(**TINY_PIX2PIX)
    trainer(tmp_path, max_steps=4).fit(model, tiny_data(paired=True))
    assert check_steps(model, ["netG"], ["netD"]) == ["start", "D", "G", "D", "G"]


def test_cyclegan_losses_logged_under_shared_names(tmp_path):
    pl.seed_everything(0)
    model = CycleGAN(**TINY_CYCLEGAN)
    t = trainer(tmp_path, max_steps=2, log_every_n_steps=1)
    t.fit(model, tiny_data())
    for k in ("G", "D", "G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "D_A", "D_B"):
        assert f"train/loss_{k}" in t.callback_metrics, k
    assert "train/lr" in t.callback_metrics


def test_identity_weights_match_the_reference(tmp_path):
    model = CycleGAN(**TINY_CYCLEGAN)
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    v = model.forward_cycle(a, b)
    g = model.generator_losses(v)
    idt = (model.netG_A(b) - b).abs().mean() * 10 * 0.5
    assert torch.allclose(g["idt_A"], idt)
    assert torch.allclose(g["cycle_A"], (v["rec_A"] - a).abs().mean() * 10)


def test_norm_d_sets_only_the_discriminators_norm():
    from torch import nn

    def norms(net):
        return {type(m).__name__ for m in net.modules() if isinstance(m, (nn.InstanceNorm2d, nn.BatchNorm2d))}

    default = CycleGAN(**TINY_CYCLEGAN)
    assert norms(default.netD_A) == norms(default.netG_A) == {"InstanceNorm2d"}  # the reference: one --norm
    plain = CycleGAN(**TINY_CYCLEGAN, norm_D="none")
    assert not norms(plain.netD_A) and not norms(plain.netD_B) and norms(plain.netG_A) == {"InstanceNorm2d"}
    # without a norm the convs keep their bias (blocks.py): one bias per channel more in each normed layer
    extra = sum(m.out_channels for m in default.netD_A.modules() if isinstance(m, nn.Conv2d) and m.bias is None)
    assert sum(p.numel() for p in plain.netD_A.parameters()) == sum(p.numel() for p in default.netD_A.parameters()) + extra


def _fit(tmp_path, name, epochs, ckpt=None, ema=None):
    pl.seed_everything(1)
    model = CycleGAN(**{**TINY_CYCLEGAN, "ema_decay": ema})
    from pytorch_lightning.callbacks import ModelCheckpoint

    cb = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_epochs=1, save_top_k=-1)
    t = trainer(tmp_path / name, max_epochs=epochs, enable_checkpointing=True, callbacks=[cb], deterministic=True)
    t.fit(model, tiny_data(), ckpt_path=ckpt)
    return model


def test_resume_is_exact(tmp_path):
    straight = _fit(tmp_path / "a", "run", epochs=3, ema=0.9)
    _fit(tmp_path / "b", "run", epochs=2, ema=0.9)
    resumed = _fit(tmp_path / "c", "run", epochs=3, ckpt=str(tmp_path / "b" / "ckpt" / "last.ckpt"), ema=0.9)
    sa, sb = straight.state_dict(), resumed.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k  # bitwise: pools, RNG, optimizers, schedulers and EMA all restored
    assert [torch.equal(x, y) for x, y in zip(straight.pools["fake_A"].images, resumed.pools["fake_A"].images)]


def test_ema_is_used_by_translate(tmp_path):
    model = _fit(tmp_path, "ema", epochs=1, ema=0.5)
    assert "netG_A" in model.ema
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    model.eval()
    assert torch.allclose(model.translate(x), model.ema["netG_A"].module(x))
    assert not torch.allclose(model.translate(x), model.netG_A(x))


def test_bf16_mixed_precision_step(tmp_path):
    pl.seed_everything(0)
    model = CycleGAN(**TINY_CYCLEGAN)
    t = trainer(tmp_path, max_steps=2, precision="bf16-mixed")
    t.fit(model, tiny_data())
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_checkpoint_saved_at_a_batch_end_holds_that_batch_bookkeeping(tmp_path):
    """Step-based checkpoints are saved in callbacks' on_train_batch_end, before the module's own hook:
    the iteration count, the EMA update and the per-batch LR step of that batch must already be in it."""
    from pytorch_lightning.callbacks import ModelCheckpoint

    pl.seed_everything(0)
    model = CycleGAN(**{**TINY_CYCLEGAN, "ema_decay": 0.5, "lr_interval": "step"})
    cb = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=2, save_top_k=-1, filename="{step}")
    trainer(tmp_path, max_steps=8, enable_checkpointing=True, callbacks=[cb]).fit(model, tiny_data())
    state = torch.load(tmp_path / "ckpt" / "step=8.ckpt", weights_only=True)  # saved at the end of batch 4
    assert state["iteration"] == model.iteration == 4
    assert state["lr_schedulers"][0]["last_epoch"] == 4
    final = model.state_dict()
    ema = [k for k in final if k.startswith("ema.")]
    assert ema and all(torch.equal(state["state_dict"][k], final[k]) for k in ema)
