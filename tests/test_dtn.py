"""DTN: f is the shipped classifier's penultimate layer and stays fixed (or is fine-tuned), loss terms
on known inputs (ternary D, f-constancy, target identity, total variation), which parameters each
step moves, translate, exact resume, CLI runs on built-in data and on fake SVHN/MNIST files."""

import math

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import ModelCheckpoint
from torch import nn

from helpers import check_steps, cli_fit, params, recording, tiny_data, trainer
from lit_i2i.methods.dtn import DTN, total_variation

TINY = dict(ngf=8, ndf=8)

pytestmark = pytest.mark.usefixtures("one_thread")


def street(**kw):
    return tiny_data(a="street-digits", b="digits", **kw)


class ConstLogits(nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.logits = torch.tensor(logits, dtype=torch.float32)

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1)


class ConstImage(nn.Module):
    def __init__(self, value: float):
        super().__init__()
        self.value = value

    def forward(self, code):
        return torch.full((code.shape[0], 3, 32, 32), self.value)


def test_f_is_the_shipped_classifiers_penultimate_layer_and_fixed():
    from lit_i2i.metrics.classifier import load_digit_classifier

    m = DTN(**TINY)
    ref = load_digit_classifier("street-digits")
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    m.train()
    assert not m.f.training and not any(p.requires_grad for p in m.f.parameters())
    assert torch.allclose(m.encode(x), ref.features(x)) and m.encode(x).shape == (4, 64)
    opts = m.build_optimizers()
    ids = {id(p) for o in opts.values() for g in o.param_groups for p in g["params"]}
    assert not ids & {id(p) for p in m.f.parameters()}
    assert list(opts) == ["D", "G"] and opts["G"].defaults["lr"] == 3e-4 and opts["G"].defaults["betas"] == (0.5, 0.999)
    assert m.g(m.encode(x)).shape == (4, 3, 32, 32) and m.dis(x).shape == (4, 3)
    assert (m.hparams.alpha, m.hparams.beta, m.hparams.gamma) == (15.0, 15.0, 0.0)  # the paper's digit weights


def test_total_variation_on_known_images():
    assert float(total_variation(torch.ones(2, 3, 8, 8))) == 0.0
    ramp = torch.arange(8.0).expand(1, 1, 8, 8)  # +1 per column, constant down the rows
    assert math.isclose(float(total_variation(ramp, power=1.0)), 1.0)
    assert math.isclose(float(total_variation(ramp.expand(1, 3, 8, 8), power=0.5)), math.sqrt(3), rel_tol=1e-5)


def test_loss_terms_on_known_inputs():
    m = DTN(gamma=0.5, **TINY)
    m.dis = ConstLogits([0.0, 0.0, 0.0])
    s, t = torch.rand(2, 3, 32, 32) * 2 - 1, torch.full((2, 3, 32, 32), 0.5)
    assert math.isclose(float(m.discriminator_loss(s, s, t)), 3 * math.log(3), rel_tol=1e-6)
    m.g = ConstImage(0.0)
    g, v = m.generator_losses(s, t)
    f_fake, f_s = m.encode(torch.zeros(2, 3, 32, 32)), m.encode(s)
    assert math.isclose(float(g["gan"]), 2 * math.log(3), rel_tol=1e-6)
    assert torch.allclose(g["const"], 15 * F.mse_loss(f_fake, f_s))
    assert math.isclose(float(g["tid"]), 15 * 0.25, rel_tol=1e-6)
    assert float(g["tv"]) == 0 and set(g) == {"gan", "const", "tid", "tv"} and set(v) == {"fake_B", "idt_B"}
    # the ternary targets: the discriminator's 0 (G(source)), 1 (G(target)), 2 (real target)
    m.dis = ConstLogits([5.0, 0.0, 0.0])
    p = F.log_softmax(torch.tensor([5.0, 0.0, 0.0]), 0)
    assert math.isclose(float(m.discriminator_loss(s, s, t)), float(-(p[0] + p[1] + p[2])), rel_tol=1e-6)
    g, _ = m.generator_losses(s, t)
    assert math.isclose(float(g["gan"]), float(-2 * p[2]), rel_tol=1e-6)


def test_d_step_then_g_step_touch_only_their_nets_f_never(tmp_path):
    pl.seed_everything(0)
    m = recording(DTN)(**TINY)
    f0 = params(m.f)
    trainer(tmp_path, max_steps=4).fit(m, street())
    assert check_steps(m, ["g."], ["dis."]) == ["start", "D", "G", "D", "G"]
    assert all(torch.equal(f0[k], v) for k, v in m.f.state_dict().items())  # weights and BatchNorm statistics


def test_fine_tuned_f_moves_in_g_steps_only_and_keeps_its_statistics(tmp_path):
    pl.seed_everything(0)
    m = recording(DTN)(finetune_f=True, **TINY)
    assert m.build_optimizers()["G"].param_groups[1]["lr"] == pytest.approx(3e-5)  # lr / 10
    f0 = params(m.f)
    trainer(tmp_path, max_steps=4).fit(m, street())
    assert check_steps(m, ["g.", "f."], ["dis."]) == ["start", "D", "G", "D", "G"]
    now = m.f.state_dict()
    assert all(torch.equal(f0[k], now[k]) for k in f0 if "running" in k or "num_batches" in k)  # BN in eval mode
    s, t = torch.rand(4, 3, 32, 32) * 2 - 1, torch.rand(4, 3, 32, 32) * 2 - 1
    labels = torch.tensor([0, 1, 2, 3])
    g, _ = m.generator_losses(s, t, labels)
    assert torch.allclose(g["cls"], F.cross_entropy(m.f.head(m.encode(s)), labels))
    assert "cls" not in m.generator_losses(s, t, torch.full((4,), -1))[0]  # unlabelled source: no anchor
    assert "cls" not in DTN(**TINY).generator_losses(s, t, labels)[0]


def test_translate():
    m = DTN(**TINY).eval()
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    assert torch.allclose(m.translate(x), m.g(m.f.features(x))) and m.directions == ("AtoB",)
    with pytest.raises(ValueError):
        m.translate(x, "BtoA")
    assert set(m.visuals({"A": x, "B": x})) == {"real_A", "fake_B", "real_B", "idt_B"}


def _fit(root, epochs, ckpt=None, **kw):
    pl.seed_everything(5)
    model = DTN(**TINY, **kw)
    cb = ModelCheckpoint(dirpath=root / "ckpt", save_last=True, every_n_epochs=1, save_top_k=-1, filename="{epoch}")
    t = trainer(root, max_epochs=epochs, limit_train_batches=2, enable_checkpointing=True, callbacks=[cb],
                deterministic=True)
    t.fit(model, street(), ckpt_path=ckpt)
    return model


def test_resume_is_exact(tmp_path):
    straight = _fit(tmp_path / "a", 2, finetune_f=True)
    resumed = _fit(tmp_path / "b", 2, ckpt=str(tmp_path / "a" / "ckpt" / "epoch=0.ckpt"), finetune_f=True)
    sa, sb = straight.state_dict(), resumed.state_dict()
    assert straight.iteration == resumed.iteration == 4 and sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


TINY_CLI = ["--model.init_args.ngf", "8", "--model.init_args.ndf", "8", "--trainer.enable_progress_bar", "false",
            "--trainer.logger", "false", "--trainer.limit_val_batches", "0", "--metrics.metrics", "[]",
            "--trainer.max_steps", "4", "--data.init_args.num_workers", "0", "--data.init_args.batch_size", "4"]


@pytest.mark.parametrize("finetune", ["false", "true"])
def test_cli_street_digits(tmp_path, cli_env, finetune):
    from lit_i2i.commands import load_run

    ckpt, state = cli_fit(tmp_path, "experiments/dtn/street2digits.yaml", *TINY_CLI, "--data.init_args.train_limit",
                          "16", "--model.init_args.finetune_f", finetune)
    assert state["global_step"] == 4 and state["lit_i2i_config"]["model"]["class_path"] == "lit_i2i.methods.dtn.DTN"
    model, _ = load_run(ckpt)
    assert model.hparams.finetune_f == (finetune == "true")
    assert model.translate(torch.zeros(2, 3, 32, 32)).shape == (2, 3, 32, 32)


def test_cli_svhn2mnist_on_fake_files(tmp_path, cli_env, monkeypatch):
    from data_factory import make_mnist_svhn

    root = make_mnist_svhn(tmp_path / "digits", monkeypatch)
    # f_net: svhn needs a classifier trained on SVHN (lit-i2i train-classifier); the shipped stand-in here
    ckpt, state = cli_fit(tmp_path, "experiments/dtn/svhn2mnist.yaml", *TINY_CLI, "--data.init_args.root", str(root),
                          "--model.init_args.f_net", "street-digits")
    assert state["global_step"] == 4


def test_svhn_f_without_its_classifier_is_one_line(tmp_path, monkeypatch):
    from lit_i2i.errors import UserError

    monkeypatch.setenv("LIT_I2I_CACHE", str(tmp_path))
    with pytest.raises(UserError, match="train-classifier --domain svhn"):
        DTN(f_net="svhn")
