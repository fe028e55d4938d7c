"""UNIT: shared layers are the same tensors, each loss term on known inputs, step order, translate, CLI."""

import math

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from helpers import check_steps, cli_fit, recording, tiny_data, trainer
from lit_i2i.methods.unit import UNIT, kl_loss
from lit_i2i.nets.vae import Decoder, Encoder, VAESpec, shared_latent_vaes, unique_parameters

TINY_UNIT = dict(ngf=8, n_res_unshared=1, n_res_shared=1, ndf=8, n_layers_D=3)


pytestmark = pytest.mark.usefixtures("one_thread")


class ConstD(nn.Module):
    """A 'discriminator' giving the same logit everywhere (known GAN losses)."""

    def __init__(self, value: float = 0.0):
        super().__init__()
        self.value = value

    def forward(self, x):
        return torch.full((x.shape[0], 1, 2, 2), self.value)


def test_kl_is_mean_of_mu_squared():
    assert kl_loss(torch.zeros(2, 4, 3, 3)) == 0
    assert kl_loss(torch.ones(2, 4, 3, 3)) == 1
    assert kl_loss(torch.full((2, 4), -2.0)) == 4
    assert torch.isclose(kl_loss(torch.tensor([0.0, 1.0, 2.0, 3.0])), torch.tensor(14 / 4))


def test_shared_layers_are_the_same_tensors_in_both_domains(tmp_path):
    m = UNIT(**TINY_UNIT)
    assert m.enc_A.shared is m.enc_B.shared and m.dec_A.shared is m.dec_B.shared
    assert m.enc_A.front is not m.enc_B.front and m.dec_A.back is not m.dec_B.back
    shared = unique_parameters(m.enc_A.shared, m.dec_A.shared)
    assert shared and {id(p) for p in shared} <= {id(p) for p in m.enc_B.parameters()} | {id(p) for p in m.dec_B.parameters()}
    # the G optimizer holds every generator tensor exactly once
    opt = m.build_optimizers()["G"]
    ids = [id(p) for g in opt.param_groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(unique_parameters(m.enc_A, m.dec_A, m.enc_B, m.dec_B))
    # a step through domain A moves the tensors domain B reads
    before = m.enc_B.shared[0].conv_block[0].weight.detach().clone()
    pl.seed_everything(0)
    trainer(tmp_path, max_steps=2).fit(m, tiny_data())
    assert m.enc_A.shared is m.enc_B.shared
    assert not torch.equal(before, m.enc_B.shared[0].conv_block[0].weight)
    # after a checkpoint round trip the layers are still one object
    path = tmp_path / "unit.ckpt"
    torch.save({"state_dict": m.state_dict(), "hyper_parameters": dict(m.hparams)}, path)
    m2 = UNIT(**TINY_UNIT)
    m2.load_state_dict(torch.load(path, weights_only=True)["state_dict"])
    assert m2.enc_A.shared is m2.enc_B.shared
    assert torch.equal(m2.enc_A.shared[0].conv_block[0].weight, m.enc_B.shared[0].conv_block[0].weight)


def test_master_variant_shares_nothing_and_scales_weights():
    m = UNIT(variant="master", **TINY_UNIT)
    assert m.enc_A.shared is not m.enc_B.shared and m.dec_A.shared is not m.dec_B.shared
    assert m.w == {"gan_w": 1.0, "kl_w": 0.01, "recon_w": 10.0, "kl_cyc_w": 0.01, "cyc_w": 10.0}
    assert m.gan.mode == "lsgan" and isinstance(m.dis_A.nets[0][0], nn.Conv2d) and len(m.dis_A.nets) == 3
    nips = UNIT(**TINY_UNIT)
    assert nips.w == {"gan_w": 10.0, "kl_w": 0.1, "recon_w": 100.0, "kl_cyc_w": 0.1, "cyc_w": 100.0}
    assert nips.gan.mode == "vanilla"
    assert UNIT(variant="master", gan_w=3.0, share_weights=True, **TINY_UNIT).w["gan_w"] == 3.0


def _known_v():
    z = torch.zeros(2, 3, 8, 8)
    return {"real_A": z, "real_B": z + 0.5, "rec_A": z + 0.5, "rec_B": z + 0.25, "fake_A": z, "fake_B": z,
            "mu_A": torch.ones(2, 4, 2, 2), "mu_B": torch.full((2, 4, 2, 2), 2.0),
            "mu_ABA": torch.full((2, 4, 2, 2), 3.0), "mu_BAB": torch.zeros(2, 4, 2, 2),
            "cyc_A": z - 0.25, "cyc_B": z + 1.5}


@pytest.mark.parametrize("variant", ["nips", "master"])
def test_generator_loss_terms_on_known_inputs(variant):
    m = UNIT(variant=variant, **TINY_UNIT)
    m.dis_A, m.dis_B = ConstD(0.0), ConstD(2.0)
    g = m.generator_losses(_known_v())
    s = 1.0 if variant == "nips" else 0.1
    if variant == "nips":  # BCE-with-logits against "real": -log(sigmoid(d))
        gan_a, gan_b = 10 * math.log(2), 10 * -math.log(1 / (1 + math.exp(-2.0)))
    else:  # LSGAN: (d - 1)^2
        gan_a, gan_b = 1.0, 1.0
    expected = {"gan_A": gan_a, "gan_B": gan_b, "kl_A": 0.1 * s * 1, "kl_B": 0.1 * s * 4, "recon_A": 100 * s * 0.5,
                "recon_B": 100 * s * 0.25, "kl_cyc_A": 0.1 * s * 9, "kl_cyc_B": 0.0, "cyc_A": 100 * s * 0.25,
                "cyc_B": 100 * s * 1.0}
    assert set(g) == set(expected)
    for k, v in expected.items():
        assert math.isclose(float(g[k]), v, rel_tol=1e-5, abs_tol=1e-6), (k, float(g[k]), v)


def test_discriminator_loss_on_known_inputs():
    m = UNIT(**TINY_UNIT)
    m.dis_A, m.dis_B = ConstD(0.0), ConstD(0.0)
    x = torch.zeros(2, 3, 8, 8)
    d = m.discriminator_loss(x, x, x, x)
    assert math.isclose(float(d["D_A"]), 10 * 2 * math.log(2), rel_tol=1e-6)  # gan_w (real + fake)
    assert math.isclose(float(d["D_B"]), 10 * 2 * math.log(2), rel_tol=1e-6)


def test_forward_wiring_and_noise():
    m = UNIT(**TINY_UNIT)
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    m.eval()
    v = m.forward_all(a, b)
    assert torch.allclose(v["fake_B"], m.dec_B(m.enc_A(a)))
    assert torch.allclose(v["rec_A"], m.dec_A(m.enc_A(a)))
    assert torch.allclose(v["mu_ABA"], m.enc_B(v["fake_B"]))
    assert torch.allclose(v["cyc_A"], m.dec_A(m.enc_B(v["fake_B"])))
    assert torch.allclose(v["cyc_B"], m.dec_B(m.enc_A(v["fake_A"])))
    m.train()
    v1, v2 = m.forward_all(a, b), m.forward_all(a, b)
    assert torch.equal(v1["mu_A"], v2["mu_A"]) and not torch.allclose(v1["rec_A"], v2["rec_A"])  # z = mu + noise
    # translate uses the mean, never noise, even in training mode
    assert torch.equal(m.translate(a), m.translate(a))
    m.eval()
    assert torch.allclose(m.translate(a, "AtoB"), m.dec_B(m.enc_A(a)))
    assert torch.allclose(m.translate(b, "BtoA"), m.dec_A(m.enc_B(b)))
    with pytest.raises(ValueError):
        m.translate(a, "AtoC")


def test_d_step_then_g_step_touch_only_their_nets(tmp_path):
    Recording = recording(UNIT)
    pl.seed_everything(0)
    m = Recording(**TINY_UNIT)
    trainer(tmp_path, max_steps=4).fit(m, tiny_data())
    assert check_steps(m, ["enc_A", "enc_B", "dec_A", "dec_B"], ["dis_A", "dis_B"]) == ["start", "D", "G", "D", "G"]


@pytest.mark.parametrize("netD", ["multiscale", "shared", "master"])
def test_discriminator_options_train(tmp_path, netD):
    pl.seed_everything(0)
    m = UNIT(**{**TINY_UNIT, "netD": netD, "n_layers_D": 2})
    if netD == "shared":
        assert m.dis_A.shared is m.dis_B.shared and m.dis_A.front is not m.dis_B.front
    else:
        assert len(m.dis_A(torch.zeros(1, 3, 32, 32))) == 3  # three scales
    trainer(tmp_path, max_steps=2).fit(m, tiny_data())
    assert all(torch.isfinite(p).all() for p in m.parameters())


def test_vae_spec_validation_and_dropout_position():
    with pytest.raises(ValueError):
        VAESpec("unit", n_down=2, n_unshared=1, n_res_unshared=1)  # per-domain blocks need all levels per domain
    with pytest.raises(ValueError):
        VAESpec("vgg")
    enc_a, _, enc_b, _ = shared_latent_vaes(VAESpec("resnet", 8, 2, 1, 0, 1, dropout=0.5))
    block = enc_a.shared[-1].conv_block
    kinds = [type(x).__name__ for x in block]
    assert kinds.index("Dropout") == kinds.index("ReLU") + 1
    assert isinstance(enc_a, Encoder) and enc_a.shared is enc_b.shared


def test_unit_in_arch_has_norms_in_the_front_convs():
    _, _, _, dec_b = shared_latent_vaes(VAESpec("unit_in", 8, 2, None, 1, 1))
    assert isinstance(dec_b, Decoder)
    assert any(isinstance(x, nn.InstanceNorm2d) for x in dec_b.back if not hasattr(x, "conv_block"))
    _, _, _, dec_b = shared_latent_vaes(VAESpec("unit", 8, 2, None, 1, 1))
    assert not any(isinstance(x, nn.InstanceNorm2d) for x in dec_b.back if not hasattr(x, "conv_block"))


# --------------------------------------------------------------------------------------- CLI
TINY_CLI = ["--model.init_args.ngf", "8", "--model.init_args.ndf", "8", "--model.init_args.n_res_unshared", "1",
            "--trainer.enable_progress_bar", "false", "--trainer.logger", "false", "--trainer.limit_val_batches", "0",
            "--metrics.metrics", "[]", "--trainer.max_steps", "20", "--data.init_args.num_workers", "0"]


def _cli_fit(tmp_path, config, *extra):
    ckpt, state = cli_fit(tmp_path, config, *TINY_CLI, *extra)
    assert state["global_step"] == 20  # 10 iterations x (D step + G step)
    assert state["lit_i2i_config"]["model"]["class_path"] == "lit_i2i.methods.unit.UNIT"
    from lit_i2i.commands import load_run

    model, _ = load_run(ckpt)
    assert model.enc_A.shared is model.enc_B.shared
    return model


def test_cli_digits_20_steps(tmp_path, cli_env):
    model = _cli_fit(tmp_path, "experiments/unit/digits.yaml", "--data.init_args.train_limit", "64")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert model.translate(x, "AtoB").shape == (2, 3, 32, 32)


def test_cli_celeba_20_steps_on_a_tiny_folder(tmp_path, cli_env):
    from data_factory import make_celeba

    make_celeba(tmp_path / "celeba", 40, size=(20, 24))
    with pytest.warns(UserWarning):  # no list_eval_partition.txt: 80/10/10 split
        _cli_fit(tmp_path, "experiments/unit/celeba.yaml", "--data.init_args.root", str(tmp_path / "celeba"),
                 "--data.init_args.center_crop", "16", "--data.init_args.crop_size", "16",
                 "--data.init_args.load_size", "16", "--trainer.check_val_every_n_epoch", "1")


def test_cli_street_20_steps_on_a_tiny_folder(tmp_path, cli_env):
    from data_factory import make_unpaired

    make_unpaired(tmp_path / "street", 6, 6, size=(40, 24))
    model = _cli_fit(tmp_path, "experiments/unit/street.yaml", "--data.init_args.root", str(tmp_path / "street"),
                     "--data.init_args.load_size", "32", "--data.init_args.crop_size", "16")
    assert model.hparams.netD == "multiscale" and model.hparams.dropout == 0.5


def test_init_follows_gaussian_weights_init_biases_untouched_master_zeroes_them():
    torch.manual_seed(0)
    nips = UNIT(ngf=8, ndf=8, n_res_unshared=1, n_layers_D=2)
    convs = [m for m in nips.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert all(abs(float(m.weight.detach().std()) - 0.02) < 0.01 for m in convs if m.weight.numel() > 500)
    assert all(m.bias is not None and m.bias.abs().max() > 0 for m in convs if m.bias is not None)  # PyTorch's default
    master = UNIT(variant="master", ngf=8, ndf=8, n_res_unshared=1, n_layers_D=2)
    assert all(float(m.bias.abs().max()) == 0 for m in master.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) and m.bias is not None)
