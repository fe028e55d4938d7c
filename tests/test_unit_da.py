"""UNIT's domain adaptation: the official networks' parameter counts, the loss terms, which parameters each
step moves, the context channels, the classifier metric, and a short CLI run on built-in data."""

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from helpers import check_steps, recording, trainer
from datamodules.builtin import BuiltinDigits
from lit_i2i.methods.unit_da import UNITDomainAdaptation, _sum_sq
from lit_i2i.nets.blocks import count_params
from lit_i2i.nets.covae import CoDis32x32, CoVAE32x32

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = dict(gen_ch=8, dis_ch=8)


def test_parameter_counts_equal_the_official_networks():
    ch = 96  # exps/unit/svhn2mnist.yaml: CoVAE32x32(96, 3+2, 3, 1+2, 1) and CoDis32x32(64, 3, 1)

    def bnns(cin, cout, k):  # conv (weights + bias) + Bias2d (BN has no affine parameters)
        return cin * cout * k * k + cout + cout
    gen = (bnns(5, ch, 5) + bnns(3, ch, 5) + bnns(ch, 2 * ch, 5) + bnns(2 * ch, 4 * ch, 8) + bnns(4 * ch, 8 * ch, 1)
           + 2 * (8 * ch * 8 * ch + 8 * ch)  # the latent's mu and sigma convs
           + bnns(8 * ch, 8 * ch, 4) + bnns(8 * ch, 4 * ch, 4) + bnns(4 * ch, 2 * ch, 4)
           + 2 * bnns(2 * ch, ch, 4) + (ch * 3 + 3) + (ch * 1 + 1))
    assert count_params(CoVAE32x32(96, 5, 3, 3, 1)) == gen
    d = 64

    def conv(cin, cout, k):
        return cin * cout * k * k + cout
    dis = conv(3, d, 5) + conv(1, d, 5) + conv(d, 2 * d, 5) + conv(2 * d, 4 * d, 5) + conv(4 * d, 8 * d, 5) \
        + conv(8 * d, 2, 2) + conv(8 * d, 10, 2)
    assert count_params(CoDis32x32(64, 3, 1)) == dis
    m = UNITDomainAdaptation(b_ch=1)
    assert count_params(m.gen) == gen and count_params(m.dis) == dis
    convs = [c for c in m.dis.modules() if isinstance(c, torch.nn.Conv2d)]
    assert all(torch.all(c.bias == 0.1) for c in convs)  # xavier_weights_init


def test_shared_layers_see_both_domains_and_outputs_have_the_right_shapes():
    torch.manual_seed(0)
    m = UNITDomainAdaptation(**TINY)
    a, b = torch.rand(4, 3, 32, 32) * 2 - 1, torch.rand(4, 3, 32, 32) * 2 - 1
    x_aa, x_ba, x_ab, x_bb, mu, sd = m._pass(a, b)
    assert x_aa.shape == x_ab.shape == (4, 3, 32, 32) and mu.shape == (8, 64, 1, 1) and (sd > 0).all()
    logits, fa, fb = m.dis(a, b)
    assert logits.shape == (8, 2) and fa.shape == (4, 64, 2, 2) and m.dis.classify(a, "A").shape == (4, 10)
    assert m.xy[0, :, 0].tolist()[:3] == [-1.0, -0.9375, -0.875] and torch.equal(m.xy[1], m.xy[0].t())
    m.eval()
    assert m.translate(a).shape == (4, 3, 32, 32) and m.translate(b, "BtoA").shape == (4, 3, 32, 32)


def test_loss_terms_follow_the_official_formulas():
    torch.manual_seed(0)
    m = UNITDomainAdaptation(**TINY)
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    torch.manual_seed(1)
    g = m.generator_losses(a, b)
    torch.manual_seed(1)
    x_aa, x_ba, x_ab, x_bb, mu, sd = m._pass(a, b)
    mse = lambda x, y: F.mse_loss(x, y) * x[0].numel()  # the official ll loss: MSELoss x C x H x W
    assert torch.allclose(g["ll"], mse(x_aa, a) + mse(x_bb, b), rtol=1e-4)
    assert torch.allclose(g["kl"], 2 * (mu ** 2 + sd ** 2 - torch.log(sd ** 2)).sum() / 4, rtol=1e-4)
    assert torch.allclose(_sum_sq(torch.ones(3, 2, 2, 2)), torch.tensor(8.0))


def test_each_step_moves_only_its_network_and_the_classifier_metric(tmp_path):
    from lit_i2i.metrics import evaluate_model

    pl.seed_everything(0)
    model = recording(UNITDomainAdaptation)(**TINY)
    dm = BuiltinDigits(a="colored-digits", b="digits", train_limit=16, batch_size=4, eval_batch_size=16)
    trainer(tmp_path, max_steps=4).fit(model, dm)
    assert check_steps(model, ["gen."], ["dis."]) == ["start", "D", "G", "D", "G"]
    res = evaluate_model(model, dm, ["cls_acc"], ["AtoB"], max_samples=30, cache_dir=str(tmp_path))
    assert set(res) == {"cls_acc_A", "cls_acc_B"} and all(0 <= v <= 1 for v in res.values())


def test_cli_built_in_config_runs(tmp_path, cli_env):
    from helpers import cli_fit

    ckpt, state = cli_fit(tmp_path, "experiments/unit/da_street2digits.yaml", "--model.init_args.gen_ch", "8",
                          "--model.init_args.dis_ch", "8", "--trainer.max_steps", "4", "--trainer.logger", "false",
                          "--trainer.enable_progress_bar", "false", "--metrics.metrics", "[cls_acc]",
                          "--metrics.max_samples", "20", "--data.init_args.train_limit", "16")
    assert state["global_step"] == 4 and state["iteration"] == 2


def test_unlabelled_source_is_one_clear_error_checked_on_the_first_batch():
    from lit_i2i.errors import UserError

    m = UNITDomainAdaptation(**TINY)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with pytest.raises(UserError, match="domain A must be labelled"):
        m.training_step({"A": x, "B": x, "A_label": torch.tensor([3, -1])}, 0)
