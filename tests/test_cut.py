"""CUT / FastCUT: official parameter counts, the blur filters, PatchNCE on known inputs, the mode
defaults, F built in setup() (before the optimizers) and restored from a checkpoint, the flip of
FastCUT, which parameters each step moves, exact resume, and short CLI runs on the built-in digits
and on generated folders."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from data_factory import make_unpaired
from helpers import check_steps, recording, tiny_data, trainer
from lit_i2i.core.nce import patch_nce_loss
from lit_i2i.methods.cut import CUT
from lit_i2i.nets import count_params
from lit_i2i.nets.antialias import (AntialiasNLayerDiscriminator, AntialiasResnetGenerator, BlurDownsample,
                                    BlurUpsample, binomial_filter)
from lit_i2i.nets.patch_sample import PatchSampleF

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[1]
TINY = dict(netG="resnet", n_blocks=1, ngf=4, ndf=4, netD="n_layers", n_layers_D=2, nce_layers=(0, 4, 8, 12),
            netF_nc=8, num_patches=16, n_epochs=1, n_epochs_decay=1)
TINY_CLI = ["--model.init_args.netG", "resnet", "--model.init_args.n_blocks", "1", "--model.init_args.ngf", "4",
            "--model.init_args.ndf", "4", "--model.init_args.netF_nc", "8", "--model.init_args.nce_layers", "[0,4,8,12]",
            "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--grids.n_samples", "2"]


# ------------------------------------------------------------------------------------------ networks
def test_official_parameter_counts():
    m = CUT()  # resnet_9blocks, basic D, netF 256: the official defaults
    assert count_params(m.netG) == 11_378_179 and count_params(m.netD) == 2_764_737
    assert not hasattr(m, "netF")  # built in setup(), from G's channel counts
    assert m.netG.layer_channels([0, 4, 8, 12, 16]) == [3, 128, 256, 256, 256]
    m.setup("fit")
    assert count_params(m.netF) == 560_384
    assert isinstance(m.netD.model[2], BlurDownsample) and isinstance(m.netG.model[7], BlurDownsample)
    assert isinstance(m.netG.model[21], BlurUpsample)  # after the 9 blocks (modules 12-20)
    plain = AntialiasResnetGenerator(3, 3, 64, n_blocks=9, antialias=False, antialias_up=False)
    assert count_params(plain) == 11_378_179 and len(plain.model) == len(m.netG.model) - 4


def test_blur_filters_and_sizes():
    assert torch.equal(binomial_filter(3) * 16, torch.tensor([[1., 2, 1], [2, 4, 2], [1, 2, 1]]))
    assert torch.equal(binomial_filter(4) * 64, torch.outer(torch.tensor([1., 3, 3, 1]), torch.tensor([1., 3, 3, 1])))
    x = torch.full((1, 2, 8, 8), 0.7)
    down, up = BlurDownsample(2), BlurUpsample(2)
    assert down(x).shape == (1, 2, 4, 4) and torch.allclose(down(x), torch.full((1, 2, 4, 4), 0.7))
    assert up(x).shape == (1, 2, 16, 16) and torch.allclose(up(x), torch.full((1, 2, 16, 16), 0.7))
    assert not any(True for _ in down.parameters()) and not any(True for _ in up.parameters())
    g = AntialiasResnetGenerator(3, 3, 4, n_blocks=1)
    img = torch.rand(2, 3, 16, 16) * 2 - 1
    feats = g.features(img, [0, 4, 8, 12])
    assert [tuple(f.shape[1:]) for f in feats] == [(3, 22, 22), (8, 16, 16), (16, 8, 8), (16, 4, 4)]
    assert torch.equal(feats[0], F.pad(img, (3, 3, 3, 3), mode="reflect")) and g(img).shape == img.shape
    d = AntialiasNLayerDiscriminator(3, 4, 3)
    assert d(torch.rand(1, 3, 64, 64)).shape == (1, 1, 6, 6)  # as the official anti-aliased basic D
    with pytest.raises(ValueError, match="outside"):
        g.layer_channels([99])


# ------------------------------------------------------------------------------------------ PatchNCE
def test_patch_nce_on_known_inputs():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])          # one image, two patches
    k = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    t = 0.5  # large enough that the losses are not float32 rounding (the default 0.07 is checked below)
    # patch 0: positive q0.k0 = 1, negative q0.k1 = 0.6 (q0.k0 on the diagonal is masked to -10)
    # patch 1: positive q1.k1 = 0.8, negative q1.k0 = 0
    expected = [-math.log(math.exp(1 / t) / (math.exp(1 / t) + math.exp(-10 / t) + math.exp(0.6 / t))),
                -math.log(math.exp(0.8 / t) / (math.exp(0.8 / t) + math.exp(0 / t) + math.exp(-10 / t)))]
    got = patch_nce_loss(q, k, batch_size=1, temperature=t)
    assert got.tolist() == pytest.approx(expected, rel=1e-5)
    # two images of one patch: the negatives come from the same image only (none but the masked diagonal) ...
    own = patch_nce_loss(q, k, batch_size=2, temperature=t)
    assert own.tolist() == pytest.approx([-math.log(math.exp(1 / t) / (math.exp(1 / t) + math.exp(-10 / t))),
                                          -math.log(math.exp(0.8 / t) / (math.exp(0.8 / t) + math.exp(-10 / t)))],
                                         abs=1e-6)
    # ... or, with all negatives from the minibatch (SinCUT), from the other image too
    assert patch_nce_loss(q, k, 2, t, all_negatives_from_minibatch=True).tolist() == pytest.approx(expected, rel=1e-5)
    t = 0.07  # the default: the same formula (the losses are small, so compared absolutely)
    default = [-math.log(math.exp(1 / t) / (math.exp(1 / t) + math.exp(-10 / t) + math.exp(0.6 / t))),
               -math.log(math.exp(0.8 / t) / (math.exp(0.8 / t) + 1 + math.exp(-10 / t)))]
    assert patch_nce_loss(q, k, 1).tolist() == pytest.approx(default, abs=1e-6)
    qg = q.clone().requires_grad_(True)
    kg = k.clone().requires_grad_(True)
    patch_nce_loss(qg, kg, 1).sum().backward()
    assert kg.grad is None and qg.grad.abs().sum() > 0  # keys are a fixed target


def test_patch_sampler_shares_locations_between_query_and_key():
    pl.seed_everything(0)
    f = PatchSampleF([3, 5], nc=4)
    feats = [torch.rand(2, 3, 4, 4), torch.rand(2, 5, 2, 2)]
    out, ids = f(feats, num_patches=6)
    assert [tuple(o.shape) for o in out] == [(12, 4), (8, 4)]  # 2 images x min(6, H*W) patches
    # unit length up to the official +1e-7 in the norm (the xavier-0.02 MLP outputs are small)
    assert all(((o.norm(dim=1) > 0.99) & (o.norm(dim=1) <= 1)).all() for o in out)
    again, ids2 = f(feats, 6, ids)
    assert all(torch.equal(a, b) for a, b in zip(out, again)) and all(torch.equal(a, b) for a, b in zip(ids, ids2))
    raw = PatchSampleF([3], use_mlp=False)
    (o,), (pid,) = raw([feats[0]], 5)
    flat = feats[0].permute(0, 2, 3, 1).flatten(1, 2)[:, pid].flatten(0, 1)
    assert torch.allclose(o, flat / (flat.norm(dim=1, keepdim=True) + 1e-7)) and not list(raw.parameters())


# ------------------------------------------------------------------------------------------ options
def test_mode_defaults_and_overrides():
    cut, fast = CUT(**TINY), CUT(cut_mode="FastCUT", **{**TINY, "n_epochs": None, "n_epochs_decay": None})
    assert (cut.hparams.nce_idt, cut.hparams.lambda_NCE, cut.hparams.flip_equivariance) == (True, 1.0, False)
    assert (fast.hparams.nce_idt, fast.hparams.lambda_NCE, fast.hparams.flip_equivariance) == (False, 10.0, True)
    assert (fast.n_epochs, fast.n_epochs_decay) == (150, 50)
    assert CUT(**{**TINY, "n_epochs": None, "n_epochs_decay": None}).n_epochs_decay == 200
    assert CUT(cut_mode="fastcut", lambda_NCE=3.0, **TINY).hparams.lambda_NCE == 3.0
    assert fast.method_name == "fastcut" and cut.method_name == "cut"
    back = CUT(direction="BtoA", **TINY)
    assert back.directions == ("BtoA",)
    with pytest.raises(Exception, match="one-sided"):
        back.translate(torch.zeros(1, 3, 16, 16), "AtoB")
    with pytest.raises(ValueError, match="cut_mode"):
        CUT(cut_mode="slow")


def test_nce_terms_on_the_model_and_the_flip(monkeypatch):
    pl.seed_everything(0)
    m = CUT(**TINY)
    m.setup("fit")
    x, y = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    v = m.generator_forward(x, y)
    assert v["fake"].shape == x.shape and v["idt"].shape == y.shape and not v["flipped"]
    assert torch.allclose(v["idt"], m.netG(y), atol=1e-6)  # G on [x, y] (InstanceNorm: per image)
    terms = m.generator_losses(x, y, v)
    assert set(terms) == {"G_GAN", "NCE", "NCE_Y"}
    assert torch.allclose(m.total_generator_loss(terms), terms["G_GAN"] + (terms["NCE"] + terms["NCE_Y"]) / 2)
    pred = m.netD(v["fake"])
    assert torch.allclose(terms["G_GAN"], ((pred - 1) ** 2).mean())
    # PatchNCE by hand with the same locations: torch's generator draws them, so replay the seed
    torch.manual_seed(5)
    got = m.nce_loss(x, v["fake"])
    torch.manual_seed(5)
    fk = m.netG.features(x, TINY["nce_layers"])
    fq = m.netG.features(v["fake"], TINY["nce_layers"])
    kp, ids = m.netF(fk, 16)
    qp, _ = m.netF(fq, 16, ids)
    manual = sum(patch_nce_loss(q, k, 2).mean() for q, k in zip(qp, kp)) / 4
    assert torch.allclose(got, manual)
    fast = CUT(cut_mode="FastCUT", **TINY)
    seen = []
    fast.netG.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    monkeypatch.setattr(torch, "rand", lambda *a, **k: torch.zeros(()))  # < 0.5: flipped
    out = fast.generator_forward(x, y)
    assert out["flipped"] and out["idt"] is None and torch.equal(seen[0], x.flip(3))


# ------------------------------------------------------------------------------------------ training
def test_d_step_then_g_and_f_step(tmp_path):
    pl.seed_everything(0)
    model = recording(CUT)(**TINY)
    t = trainer(tmp_path, max_steps=4, log_every_n_steps=1)
    t.fit(model, tiny_data(train_limit=8, batch_size=2))
    assert check_steps(model, ["netG", "netF"], ["netD"]) == ["start", "D", "G", "D", "G"]
    opt_g = model.optimizer("G")
    held = {id(p) for g in opt_g.param_groups for p in g["params"]}
    assert all(id(p) in held for p in model.netF.parameters())
    for k in ("G", "D", "G_GAN", "NCE", "NCE_Y", "D_real", "D_fake"):
        assert f"train/loss_{k}" in t.callback_metrics, k


def _fit(root, epochs, ckpt=None):
    from pytorch_lightning.callbacks import ModelCheckpoint

    pl.seed_everything(3)
    model = CUT(cut_mode="FastCUT", **TINY)  # the flip draws from the RNG too
    cb = ModelCheckpoint(dirpath=root / "ckpt", save_last=True, every_n_epochs=1, save_top_k=-1)
    trainer(root, max_epochs=epochs, enable_checkpointing=True, callbacks=[cb], deterministic=True).fit(
        model, tiny_data(train_limit=8, batch_size=2), ckpt_path=ckpt)
    return model


def test_resume_is_exact_and_the_checkpoint_loads(tmp_path):
    straight = _fit(tmp_path / "a", 2)
    _fit(tmp_path / "b", 1)
    resumed = _fit(tmp_path / "c", 2, ckpt=str(tmp_path / "b" / "ckpt" / "last.ckpt"))
    sa, sb = straight.state_dict(), resumed.state_dict()
    assert sa.keys() == sb.keys() and any(k.startswith("netF.") for k in sa)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    loaded = CUT.load_from_checkpoint(tmp_path / "a" / "ckpt" / "last.ckpt", weights_only=True)
    assert torch.equal(loaded.netF.mlps[0][0].weight, straight.netF.mlps[0][0].weight)


# ------------------------------------------------------------------------------------------ CLI
def test_cli_digits_configs_train_and_translate(tmp_path, cli_env):
    from helpers import cli_fit
    from lit_i2i.commands import load_run

    for name in ("digits", "fastcut_digits"):
        ckpt, state = cli_fit(tmp_path / name, f"experiments/cut/{name}.yaml", "--trainer.max_steps", "4",
                              "--metrics.max_samples", "16", *TINY_CLI)
        assert state["global_step"] == 4 and any(k.startswith("netF.") for k in state["state_dict"])
        model, _ = load_run(ckpt)
        out = model.translate(torch.zeros(2, 3, 32, 32))
        assert out.shape == (2, 3, 32, 32) and model.directions == ("AtoB",)
        # finite: a zero feature vector (a ReLU location 0 in all 4 channels) once made every weight NaN
        assert torch.isfinite(out).all()
        assert list((tmp_path / name / "run" / "grids").glob("final_*.png"))


@pytest.mark.parametrize("config", ["horse2zebra", "cityscapes"])
def test_cli_real_layout_configs(config, tmp_path, cli_env):
    from helpers import cli_fit

    root = make_unpaired(tmp_path / "data", 3, 3, size=(36, 36))
    _, state = cli_fit(tmp_path, f"experiments/cut/{config}.yaml", "--data.init_args.root", str(root),
                       "--data.init_args.load_size", "36", "--data.init_args.crop_size", "32",
                       "--data.init_args.num_workers", "0", "--trainer.max_steps", "2", "--metrics.metrics", "[]",
                       *TINY_CLI)
    assert state["global_step"] == 2


def test_l2_normalize_has_a_finite_gradient_at_a_zero_feature():
    from lit_i2i.nets.patch_sample import l2_normalize

    x = torch.randn(5, 8)
    x[2] = 0
    x.requires_grad_(True)
    y = l2_normalize(x)
    ref = x.detach() / (x.detach().pow(2).sum(1, keepdim=True).pow(0.5) + 1e-7)  # the official form
    assert torch.allclose(y, ref, atol=1e-7) and (y[2] == 0).all()
    y.square().sum().backward()
    assert torch.isfinite(x.grad).all()
