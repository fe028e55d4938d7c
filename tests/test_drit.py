"""DRIT++: official parameter counts (computed from the layer definitions of HsinYingLee/DRIT's
networks.py), the shared content / generator layers, which parameters each of the 8 optimizers moves,
the 2-of-3 content-D cadence, the loss terms on known inputs, exact resume, translate, a CLI run."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
from conftest import ROOT
from helpers import cli_fit, params, tiny_data, trainer
from torch import nn

from lit_i2i.methods.drit import DRIT
from lit_i2i.nets import count_params
from lit_i2i.nets.drit import kl_attribute, l2_regularize, mode_seeking_loss
from lit_i2i.nets.vae import unique_parameters

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = dict(ngf=8, n_res_content=1, attr_ndf=8, gen_n_res=1, dis_ndf=8, dis_n_layer=3, content_dis_n_down=2,
            content_dis_kernel=3, content_dis_last_kernel=2, n_ep=2, n_ep_decay=0)
NETS = ("dis_A", "dis_B", "dis_A2", "dis_B2", "dis_c", "enc_c", "enc_a", "gen")


# ------------------------------------------------------------------------------------------ networks
def conv(c_in, c_out, k):  # Conv2d / ConvTranspose2d with bias
    return c_in * c_out * k * k + c_out


def linear(i, o):
    return i * o + o


def res(c):  # INSResBlock: two 3x3 convs, InstanceNorm without affine
    return 2 * conv(c, c, 3)


def basic(i, o):  # E_attr_concat's BasicBlock: 3x3 i->i, 3x3 i->o, shortcut 1x1 i->o
    return conv(i, i, 3) + conv(i, o, 3) + conv(i, o, 1)


def official_counts(concat: bool = True) -> dict[str, int]:
    """From networks.py at the options.py defaults (input 3 channels, nz 8, dis_scale 3, no SN)."""
    per_domain_c = conv(3, 64, 7) + conv(64, 128, 3) + conv(128, 256, 3) + 3 * res(256)
    counts = {"enc_c": 2 * per_domain_c + res(256)}  # E_content: convA, convB, ONE conv_share
    if concat:
        counts["enc_a"] = 2 * (conv(3, 64, 4) + basic(64, 128) + basic(128, 192) + basic(192, 256)
                               + 2 * linear(256, 8))  # E_attr_concat: fc and fcVar heads
        # G_concat: ONE dec_share, per domain 3 blocks at 256+8, ConvT 272->136 + LayerNorm(136),
        # ConvT 144->72 + LayerNorm(72), ConvT 1x1 80->3
        counts["gen"] = res(256) + 2 * (3 * res(264) + conv(272, 136, 3) + 2 * 136 + conv(144, 72, 3) + 2 * 72
                                        + conv(80, 3, 1))
    else:
        counts["enc_a"] = 2 * (conv(3, 64, 7) + conv(64, 128, 4) + conv(128, 256, 4) + 2 * conv(256, 256, 4)
                               + conv(256, 8, 1))  # E_attr
        mis = 2 * conv(256, 256, 3) + 2 * (conv(512, 512, 1) + conv(512, 256, 1))  # MisINSResBlock(256, 256)
        counts["gen"] = 2 * (4 * mis + conv(256, 128, 3) + 2 * 128 + conv(128, 64, 3) + 2 * 64 + conv(64, 3, 1)
                             + linear(8, 256) + linear(256, 256) + linear(256, 1024))  # G
    scale = conv(3, 64, 4) + conv(64, 128, 4) + conv(128, 256, 4) + conv(256, 512, 4) + conv(512, 1, 1)
    for d in ("dis_A", "dis_B", "dis_A2", "dis_B2"):
        counts[d] = 3 * scale  # MultiScaleDis, 3 scales of 4 layers
    counts["dis_c"] = 3 * conv(256, 256, 7) + conv(256, 256, 4) + conv(256, 1, 1)  # Dis_content
    return counts


@pytest.fixture(scope="module")
def official():
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        models = DRIT(), DRIT(concat=False)
    return models


def test_official_parameter_counts(official):
    expected = official_counts(True)
    assert expected == {"enc_c": 9_018_112, "enc_a": 2_688_160, "gen": 9_564_710, "dis_A": 8_271_171,
                        "dis_B": 8_271_171, "dis_A2": 8_271_171, "dis_B2": 8_271_171, "dis_c": 10_683_649}
    m, fw_model = official
    assert {n: count_params(getattr(m, n)) for n in NETS} == expected
    assert count_params(m) == sum(expected.values()) == 65_039_315
    fw = official_counts(False)
    assert (fw["enc_a"], fw["gen"]) == (5_529_872, 17_146_374)
    assert {n: count_params(getattr(fw_model, n)) for n in NETS} == fw
    assert count_params(fw_model) == 75_462_691


def test_official_sizes_and_init(official):
    m, fw_model = official
    with torch.device("meta"):
        x = torch.zeros(1, 3, 216, 216)
        c = m.enc_c(x, "A", noise=False)
        assert c.shape == (1, 256, 54, 54) and m.dis_c(c).shape == (1,)  # 54 -> 25 -> 11 -> 4 -> 1
        assert [tuple(o.shape[-2:]) for o in m.dis_A(x)] == [(13, 13), (6, 6), (3, 3)]
        assert m.gen(c, torch.zeros(1, 8), "B").shape == fw_model.gen(c, torch.zeros(1, 8), "B").shape == x.shape
        assert fw_model.enc_a(x, "A").shape == m.enc_a(x, "B")[1].shape == (1, 8)
    torch.manual_seed(0)
    m = DRIT(ngf=16, attr_ndf=16, dis_ndf=16, n_res_content=1, gen_n_res=1)
    convs = [mod for mod in m.modules() if isinstance(mod, nn.modules.conv._ConvNd)]
    assert all(abs(float(mod.weight.detach().std()) - 0.02) < 0.002 for mod in convs if mod.weight.numel() > 5_000)
    assert all(float(mod.bias.detach().abs().max()) > 0 for mod in convs)  # biases keep PyTorch's default
    fc = m.enc_a.A.fc.weight  # linear layers are not re-initialised: uniform(-1/8, 1/8) for 64 inputs
    assert float(fc.detach().abs().max()) <= 1 / 8 and float(fc.detach().std()) > 0.05


def test_shared_layers_are_one_set_of_tensors():
    m = DRIT(**TINY)
    for net in (m.enc_c, m.gen):
        ids = [id(p) for p in net.parameters()]
        assert len(ids) == len(set(ids))
        shared = {id(p) for p in net.shared.parameters()}
        assert shared and not shared & ({id(p) for p in net.A.parameters()} | {id(p) for p in net.B.parameters()})
    assert sum(k.startswith("enc_c.shared.") for k in m.state_dict()) == 4  # two convs: one copy of each
    # a loss through domain A alone and one through domain B alone both reach the same shared tensors
    w = m.enc_c.shared.conv_block[1].weight
    for d in "AB":
        m.zero_grad()
        m.enc_c(torch.rand(1, 3, 32, 32), d).sum().backward()
        assert w.grad is not None and w.grad.abs().sum() > 0
        other = m.enc_c.B if d == "A" else m.enc_c.A
        assert all(p.grad is None for p in other.parameters())
    g = m.gen.shared.conv_block[1].weight
    for d in "AB":
        m.zero_grad()
        m.gen(torch.rand(1, 32, 8, 8), torch.rand(1, 8), d).sum().backward()
        assert g.grad.abs().sum() > 0
    opt = m.build_optimizers()["enc_c"]
    held = [id(p) for grp in opt.param_groups for p in grp["params"]]
    assert len(held) == len(set(held)) == len(unique_parameters(m.enc_c))


# ------------------------------------------------------------------------------------------ losses
class ConstD(nn.Module):
    def __init__(self, value: float, shape=(2, 2)):
        super().__init__()
        self.value, self.shape = value, shape

    def forward(self, x):
        return torch.full((x.shape[0], 1, *self.shape) if self.shape else (x.shape[0],), self.value)


def bce(logit: float, target: float) -> float:
    p = 1 / (1 + math.exp(-logit))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def test_kl_regularisers_and_mode_seeking_on_known_inputs():
    mu, logvar = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, math.log(2.0)]])
    # -1/2 [(1 + 0 - 1 - 1) + (1 + ln 2 - 4 - 2)] = 3 - ln(2)/2, summed (not averaged) over the batch
    assert math.isclose(float(kl_attribute(mu, logvar)), 3 - math.log(2) / 2, rel_tol=1e-6)
    assert math.isclose(float(kl_attribute(mu.repeat(3, 1), logvar.repeat(3, 1))), 3 * (3 - math.log(2) / 2), rel_tol=1e-6)
    assert float(kl_attribute(torch.zeros(4, 8), torch.zeros(4, 8))) == 0
    assert math.isclose(float(l2_regularize(torch.tensor([0.0, 1.0, 2.0, 3.0]))), 14 / 4)
    f1, f2 = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5)
    z1, z2 = torch.zeros(1, 8), torch.full((1, 8), 2.0)
    assert math.isclose(float(mode_seeking_loss(f1, f2, z1, z2)), 1 / (0.25 + 1e-5), rel_tol=1e-6)


def _known_v(concat=True):
    z = torch.zeros(1, 3, 8, 8)
    v = {"real_A": z, "real_B": z + 0.5, "cyc_A": z + 0.25, "cyc_B": z, "self_A": z - 1.0, "self_B": z + 0.5,
         "fake_A": z, "fake_B": z, "c_A": torch.ones(1, 4, 2, 2), "c_B": torch.full((1, 4, 2, 2), 2.0),
         "mu_A": torch.tensor([[1.0, 2.0]]), "logvar_A": torch.tensor([[0.0, math.log(2.0)]]),
         "mu_B": torch.zeros(1, 2), "logvar_B": torch.zeros(1, 2), "z_A": torch.full((1, 2), 3.0),
         "z_B": torch.zeros(1, 2),
         "random_A": z, "random2_A": z + 0.5, "random_B": z, "random2_B": z + 1.0,
         "z_random": torch.zeros(1, 2), "z_random2": torch.full((1, 2), 2.0),
         "z_reg_A": torch.full((1, 2), 0.5), "z_reg_B": torch.tensor([[1.0, -3.0]])}
    return v


@pytest.mark.parametrize("concat", [True, False])
def test_loss_terms_on_known_inputs(concat):
    m = DRIT(concat=concat, **TINY)
    m.dis_A, m.dis_B, m.dis_A2, m.dis_B2 = ConstD(0.0), ConstD(2.0), ConstD(-1.0), ConstD(1.0)
    m.dis_c = ConstD(2.0, shape=None)
    v = _known_v()
    eg = m.eg_losses(v)
    kl_a = 0.01 * ((3 - math.log(2) / 2) if concat else 9.0)  # VAE KL, or mean(z_a^2) without the VAE
    expected = {"gan_A": bce(0.0, 1), "gan_B": bce(2.0, 1), "gan_content_A": bce(2.0, 0.5),
                "gan_content_B": bce(2.0, 0.5), "kl_attr_A": kl_a, "kl_attr_B": 0.0,
                "kl_content_A": 0.01 * 1, "kl_content_B": 0.01 * 4, "cross_A": 10 * 0.25, "cross_B": 10 * 0.5,
                "self_A": 10 * 1.0, "self_B": 0.0}
    assert set(eg) == set(expected)
    for k, e in expected.items():
        assert math.isclose(float(eg[k]), e, rel_tol=1e-5, abs_tol=1e-7), (k, float(eg[k]), e)
    alone = m.g_alone_losses(v)
    expected = {"gan2_A": 2 * bce(-1.0, 1), "gan2_B": 2 * bce(1.0, 1),
                "latent_A": 10 * 0.5, "latent_B": 10 * (1 + 3) / 2,  # 10 * mean|E^a(G(z)) - z|
                "ms_AB": 1 / (1.0 / 2 + 1e-5), "ms_BA": 1 / (0.5 / 2 + 1e-5)}
    assert set(alone) == set(expected)
    for k, e in expected.items():
        assert math.isclose(float(alone[k]), e, rel_tol=1e-5), (k, float(alone[k]), e)
    # discriminators: BCE real 1 + fake 0; content D: A's codes are "fake", B's "real"
    x = torch.zeros(1, 3, 8, 8)
    assert math.isclose(float(m.d_loss(m.dis_B, x, x)), bce(2.0, 1) + bce(2.0, 0), rel_tol=1e-6)
    assert math.isclose(float(m.content_d_loss(v["c_A"], v["c_B"])), bce(2.0, 0) + bce(2.0, 1), rel_tol=1e-6)
    m.hparams.no_ms = True
    assert set(m.g_alone_losses(v)) == {"gan2_A", "gan2_B", "latent_A", "latent_B"}
    assert math.isclose(float(m.g_alone_losses(v)["gan2_A"]), bce(-1.0, 1), rel_tol=1e-6)


def test_forward_wiring():
    torch.manual_seed(0)
    m = DRIT(**TINY).eval()  # eval: no content noise; the attribute codes are still sampled
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    v = m.forward_all(a, b)
    assert torch.allclose(v["fake_A"], m.gen(v["c_B"], v["z_A"], "A"), atol=1e-6)
    assert torch.allclose(v["self_B"], m.gen(v["c_B"], v["z_B"], "B"), atol=1e-6)
    assert torch.allclose(v["random2_B"], m.gen(v["c_A"], v["z_random2"], "B"), atol=1e-6)
    assert torch.allclose(v["c_rec_A"], m.enc_c(v["fake_B"], "B"))  # a's content, back from the B image
    assert torch.allclose(v["cyc_A"], m.gen(v["c_rec_A"], v["z_rec_A"], "A"), atol=1e-6)
    assert torch.allclose(v["z_reg_B"], m.enc_a(v["random_B"], "B")[0])  # latent regression uses mu
    m.train()
    assert not torch.equal(m.enc_c(a, "A"), m.enc_c(a, "A"))  # N(0, I) noise at training


# ------------------------------------------------------------------------------------------ training
def test_the_content_discriminator_alone_on_two_of_every_three_batches():
    m = DRIT(**TINY)
    m._trainer = SimpleNamespace(num_training_batches=8)
    # (i + 1) % 3 == 0, or one of the last two batches of the epoch (train.py)
    assert [m.is_full_update(i) for i in range(8)] == [False, False, True, False, False, True, True, True]
    m._trainer = SimpleNamespace(num_training_batches=float("inf"))
    assert [m.is_full_update(i) for i in range(6)] == [False, False, True, False, False, True]
    m = DRIT(**{**TINY, "d_iter": 1})
    m._trainer = SimpleNamespace(num_training_batches=8)
    assert all(m.is_full_update(i) for i in range(8))


class Recording(DRIT):
    """Snapshots the parameters after every optimizer step, with the optimizer's name."""

    def on_train_start(self):
        self.snaps = [("start", params(self))]
        self.clips = []
        for name, opt in zip(self.opt_names, self.optimizers()):
            opt.optimizer.register_step_post_hook(lambda o, a, k, name=name: self.snaps.append((name, params(self))))

    def step(self, name, loss, clip=None):
        self.clips.append((name, clip))
        super().step(name, loss, clip)


FULL = ["dis_A", "dis_A2", "dis_B", "dis_B2", "dis_c", "enc_c", "enc_a", "gen", "enc_c", "gen"]


def test_each_step_moves_only_its_own_network(tmp_path):
    pl.seed_everything(0)
    m = Recording(**TINY)
    t = trainer(tmp_path, max_epochs=1, log_every_n_steps=1)  # every batch a logging step: every term logged
    t.fit(m, tiny_data(train_limit=8, batch_size=2))  # 4 batches: content, content, full, full (last two)
    names = [n for n, _ in m.snaps]
    assert names == ["start", "dis_c", "dis_c"] + FULL + FULL
    assert t.global_step == 22 and m.iteration == 4
    for (_, before), (name, after) in zip(m.snaps, m.snaps[1:]):
        for net in NETS:
            moved = [not torch.equal(before[k], after[k]) for k in before if k.startswith(net + ".")]
            assert all(moved) if net == name else not any(moved), (name, net)
    assert {c for n, c in m.clips if n == "dis_c"} == {5.0} and {c for n, c in m.clips if n != "dis_c"} == {None}
    steps = {n: m.optimizer(n).optimizer.state[next(iter(getattr(m, n).parameters()))]["step"] for n in NETS}
    assert steps == {"dis_A": 2, "dis_B": 2, "dis_A2": 2, "dis_B2": 2, "dis_c": 4, "enc_c": 4, "enc_a": 2, "gen": 4}
    lrs = {n: m.optimizer(n).param_groups[0]["lr"] for n in NETS}
    # one epoch done of n_ep 2, decay after 0: 1 - max(0, 1 - 0) / (2 - 0 + 1)
    assert lrs["dis_c"] == pytest.approx(4e-5 * 2 / 3) and lrs["gen"] == pytest.approx(1e-4 * 2 / 3)
    assert {m.optimizer(n).param_groups[0]["weight_decay"] for n in NETS} == {1e-4}
    assert {m.optimizer(n).param_groups[0]["betas"] for n in NETS} == {(0.5, 0.999)}
    for k in ("G", "D", "D_content", "gan_content_A", "kl_attr_B", "latent_A", "ms_AB", "gan2_B", "cross_A"):
        assert f"train/loss_{k}" in t.callback_metrics, k


@pytest.mark.parametrize("options", [dict(concat=False), dict(no_ms=True), dict(dis_scale=1, dis_n_layer=3,
                                                                               dis_spectral_norm=True)])
def test_variants_train(tmp_path, options):
    pl.seed_everything(0)
    m = DRIT(**{**TINY, **options})
    trainer(tmp_path, max_epochs=1).fit(m, tiny_data(train_limit=4, batch_size=2))  # 2 full iterations
    assert m.iteration == 2 and all(torch.isfinite(p).all() for p in m.parameters())


def test_both_generator_steps_use_gradients_at_the_forward_weights():
    """E^c, E^a, G step on the EG terms, then E^c, G on the "G alone" terms: both gradients are those of
    the forward's weights (the official code's second backward ran on the graph retained from before
    the first step)."""
    import copy

    from lit_i2i.core.module import frozen

    torch.manual_seed(0)
    m = DRIT(**TINY)
    ref = copy.deepcopy(m)
    opts = {k: o for k, o in m.build_optimizers().items()}
    m.optimizer = opts.__getitem__
    m.manual_backward = lambda loss, **kw: loss.backward(**kw)
    seen = []
    p0 = next(m.gen.parameters())
    opts["gen"].register_step_pre_hook(lambda o, a, k: seen.append(p0.grad.clone()))
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    torch.manual_seed(1)
    m.update_eg(m.forward_all(a, b))
    torch.manual_seed(1)
    v = ref.forward_all(a, b)
    with frozen(ref.dis_A, ref.dis_B, ref.dis_A2, ref.dis_B2, ref.dis_c):
        eg, alone = sum(ref.eg_losses(v).values()), sum(ref.g_alone_losses(v).values())
    q0 = next(ref.gen.parameters())
    (g_eg,) = torch.autograd.grad(eg, [q0], retain_graph=True)
    (g_alone,) = torch.autograd.grad(alone, [q0])
    assert len(seen) == 2
    assert torch.allclose(seen[0], g_eg, atol=1e-6) and torch.allclose(seen[1], g_alone, atol=1e-6)
    assert not torch.allclose(g_eg, g_alone)
    assert all(p.grad is None for p in m.parameters())  # nothing left for the next iteration


def test_a_content_discriminator_too_deep_for_the_codes_is_refused_before_training(tmp_path):
    from lit_i2i.errors import UserError

    m = DRIT(**{**TINY, "content_dis_n_down": 3, "content_dis_kernel": 7, "content_dis_last_kernel": 4})
    with pytest.raises(UserError, match="content_dis_n_down"):  # the official D^c needs 54x54 codes
        trainer(tmp_path, max_epochs=1).fit(m, tiny_data(train_limit=4, batch_size=2))
    assert m.iteration == 0


def _fit(root, epochs, ckpt=None):
    from pytorch_lightning.callbacks import ModelCheckpoint

    pl.seed_everything(3)
    model = DRIT(**TINY)
    cb = ModelCheckpoint(dirpath=root / "ckpt", save_last=True, every_n_epochs=1, save_top_k=-1)
    trainer(root, max_epochs=epochs, enable_checkpointing=True, callbacks=[cb], deterministic=True).fit(
        model, tiny_data(train_limit=8, batch_size=2), ckpt_path=ckpt)
    return model


def test_resume_is_exact(tmp_path):
    straight = _fit(tmp_path / "a", 2)  # 2 epochs of 4 batches (content, content, full, full)
    _fit(tmp_path / "b", 1)
    resumed = _fit(tmp_path / "c", 2, ckpt=str(tmp_path / "b" / "ckpt" / "last.ckpt"))
    sa, sb = straight.state_dict(), resumed.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k  # noise, attribute samples, 8 optimizers and schedulers restored
    assert resumed.iteration == 8
    assert resumed.optimizer("enc_a").param_groups[0]["lr"] == pytest.approx(1e-4 / 3)  # 1 - 2/3 after 2 epochs
    for n in NETS:
        assert straight.optimizer(n).state_dict()["state"].keys() == resumed.optimizer(n).state_dict()["state"].keys()


# ------------------------------------------------------------------------------------------ translate
def test_translate_is_deterministic_for_a_seed_and_leaves_the_global_rng():
    torch.manual_seed(0)
    m = DRIT(**TINY)
    x, r = torch.rand(3, 3, 32, 32) * 2 - 1, torch.rand(3, 3, 32, 32) * 2 - 1
    state = torch.get_rng_state()
    y = m.translate(x, "AtoB", seed=7)
    assert torch.equal(y, m.translate(x, "AtoB", seed=7)) and not torch.equal(y, m.translate(x, "AtoB", seed=8))
    assert torch.equal(torch.get_rng_state(), state)
    m.eval()
    assert torch.equal(m.translate(x, "AtoB", seed=7), y)  # no content noise in either mode
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(7))
    assert torch.allclose(y, m.gen(m.enc_c(x, "A"), z, "B"), atol=1e-6)
    # reference-guided: the attribute of the reference in the target domain
    mu = m.enc_a(r, "A")[0]
    assert torch.allclose(m.translate(x, "BtoA", reference=r, mode="reference_mean"),
                          m.gen(m.enc_c(x, "B"), mu, "A"), atol=1e-6)
    ref = m.translate(x, "BtoA", reference=r, seed=1)  # sampled from E^a_A(r), as test_forward_transfer
    assert torch.equal(ref, m.translate(x, "BtoA", reference=r, seed=1))
    assert m.translate(x, "AtoB", reference=r[:1]).shape == x.shape  # one reference for the whole batch
    assert torch.equal(m.translate(x, "AtoB", mode="random:8"), m.translate(x, "AtoB", seed=8))
    from lit_i2i.metrics.diversity import l1_distance, lpips_diversity

    div = lpips_diversity(m, x, "AtoB", k=3, distance=l1_distance)  # the suite's diversity door
    assert div["diversity"] > 0 and div["per_input"].shape == (3,)
    outs = m.sample(x[:1], "AtoB", n=3, seed=0)
    assert len(outs) == 3 and not torch.equal(outs[0], outs[1])
    assert torch.equal(outs[0], m.translate(x[:1], "AtoB", seed=0)) and torch.equal(outs[2], m.translate(x[:1], "AtoB", seed=2))
    with pytest.raises(ValueError):
        m.translate(x, "AtoC")
    with pytest.raises(Exception, match="reference"):
        m.translate(x, "AtoB", mode="reference")
    with pytest.raises(Exception, match="unknown mode"):
        m.translate(x, "AtoB", mode="style")
    vis = m.visuals({"A": x, "B": r})
    assert list(vis) == ["real_A", "fake_B", "random1_B", "random2_B", "self_A", "cyc_A",
                         "real_B", "fake_A", "random1_A", "random2_A", "self_B", "cyc_B"]
    assert all(t.shape == x.shape for t in vis.values())


# ------------------------------------------------------------------------------------------ CLI
TINY_CLI = ["--model.init_args.ngf", "8", "--model.init_args.attr_ndf", "8", "--model.init_args.dis_ndf", "8",
            "--model.init_args.n_res_content", "1", "--model.init_args.gen_n_res", "1",
            "--data.init_args.train_limit", "8", "--trainer.max_epochs", "1", "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false", "--trainer.limit_val_batches", "0", "--metrics.metrics", "[]",
            "--grids.n_samples", "2"]


SMALL_NETS = ["--model.init_args.ngf", "8", "--model.init_args.attr_ndf", "8", "--model.init_args.dis_ndf", "8",
              "--model.init_args.n_res_content", "1", "--model.init_args.gen_n_res", "1",
              "--model.init_args.dis_n_layer", "3", "--model.init_args.content_dis_n_down", "2",
              "--model.init_args.content_dis_kernel", "3", "--model.init_args.content_dis_last_kernel", "2",
              "--trainer.max_epochs", "1", "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
              "--trainer.limit_val_batches", "0", "--metrics.metrics", "[]", "--grids.n_samples", "2",
              "--data.init_args.num_workers", "0"]


def test_every_config_builds_the_official_networks_or_its_sizes():
    import yaml

    from lit_i2i.cli import import_class

    configs = sorted((ROOT / "experiments" / "drit").glob("*.yaml"))
    assert {c.stem for c in configs} >= {"cat2dog", "portrait", "digits", "celeba_smile_glasses"}
    for path in configs:
        cfg = yaml.safe_load(path.read_text())
        assert cfg["model"]["class_path"] == "lit_i2i.methods.drit.DRIT"
        import_class(cfg["data"]["class_path"])
        with torch.device("meta"):
            m = DRIT(**cfg["model"]["init_args"])
        if not path.stem.startswith("digits"):  # the official networks (feature-wise for cat2dog / portrait)
            assert count_params(m) == (65_039_315 if m.hparams.concat else 75_462_691), path.stem
            assert cfg["data"]["init_args"]["crop_size"] == 216 and cfg["data"]["init_args"]["batch_size"] == 2


def test_cli_cat2dog_on_a_generated_folder(tmp_path, cli_env):
    from data_factory import make_unpaired

    root = make_unpaired(tmp_path / "data", 4, 3, size=(40, 36))
    _, state = cli_fit(tmp_path, "experiments/drit/cat2dog.yaml", "--data.init_args.root", str(root),
                       "--data.init_args.load_size", "36", "--data.init_args.crop_size", "32", *SMALL_NETS)
    assert state["global_step"] == 20  # 2 batches of 2: both among the epoch's last two, full updates
    assert state["hyper_parameters"]["concat"] is False and state["hyper_parameters"]["n_ep_decay"] == 600


def test_cli_celeba_config_on_a_generated_folder(tmp_path, cli_env):
    from data_factory import make_celeba

    make_celeba(tmp_path / "celeba", 40, size=(20, 24))
    with pytest.warns(UserWarning):  # no list_eval_partition.txt: 80/10/10 split
        _, state = cli_fit(tmp_path, "experiments/drit/celeba_smile_glasses.yaml", "--data.init_args.root",
                           str(tmp_path / "celeba"), "--data.init_args.center_crop", "20",
                           "--data.init_args.load_size", "36", "--data.init_args.crop_size", "32",
                           "--trainer.limit_train_batches", "2", *SMALL_NETS)
    assert state["global_step"] == 20 and state["hyper_parameters"]["concat"] is True


@pytest.mark.parametrize("config", ["digits", "digits_accessory"])
def test_cli_digits_trains_and_translates(tmp_path, cli_env, config):
    from lit_i2i.commands import load_run

    ckpt, state = cli_fit(tmp_path, f"experiments/drit/{config}.yaml", *TINY_CLI)
    assert state["global_step"] == 22  # content, content, full (10 steps), full
    assert state["lit_i2i_config"]["model"]["class_path"] == "lit_i2i.methods.drit.DRIT"
    model, _ = load_run(ckpt)
    assert sum(k.startswith("enc_c.shared.") for k in state["state_dict"]) == 4
    x = torch.zeros(2, 3, 32, 32)
    out = model.translate(x, "BtoA", seed=0)
    assert out.shape == (2, 3, 32, 32) and torch.isfinite(out).all()
    assert list((tmp_path / "run" / "grids").glob("final_*.png"))
