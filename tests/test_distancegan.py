"""DistanceGAN (both architectures): official parameter counts (the 2017 CycleGAN nets of its
repository, DiscoGAN's nets and --num_layers), the pairwise and self distances and their statistics
on known inputs, the normalised loss, the statistics computed at the start of fit without changing
the training batches and kept in checkpoints, the one-sided / cycle flags (which parameters each
step moves), exact resume, and short CLI runs on built-in data and on generated folders."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from data_factory import make_celeba, make_partition, make_unpaired
from helpers import changed, check_steps, cli_fit, recording, tiny_data, trainer
from lit_i2i.errors import UserError
from lit_i2i.methods.cyclegan import CycleGAN
from lit_i2i.methods.discogan import DiscoGAN
from lit_i2i.methods.distancegan import (DistanceDiscoGAN, DistanceGAN, distance_statistics, pair_distances,
                                         self_distance)
from lit_i2i.nets import DiscoGenerator, count_params
from lit_i2i.nets.distancegan import patchgan_2017, resnet_generator_2017

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[1]
TINY_CYCLE = dict(netG="resnet", ngf=4, n_blocks=1, n_down=2, netD="n_layers", ndf=4, n_layers_D=2, pool_size=4,
                  n_epochs=1, n_epochs_decay=1, max_items=6)
TINY_DISCO = dict(image_size=32, ngf=4, ndf=4, max_items=12)
TINY_CLI = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--grids.n_samples", "2"]


def data(**kw):
    return tiny_data(train_limit=8, batch_size=2, **kw)


def rec(cls):
    """``recording(cls)`` whose start hook still computes the statistics."""
    class Rec(recording(cls)):
        def on_train_start(self):
            cls.on_train_start(self)
            super().on_train_start()
    return Rec


# ------------------------------------------------------------------------------------------ networks
def test_official_parameter_counts():
    # the DistanceGAN repository's networks.py (2017 CycleGAN nets: zero padding, affine InstanceNorm)
    assert count_params(resnet_generator_2017(3, 3, 64, 9)) == 11_388_675
    assert count_params(resnet_generator_2017(3, 3, 64, 6)) == 7_845_123
    assert count_params(patchgan_2017(3, 64, 3)) == 2_766_529
    m = DistanceGAN(netG="resnet", n_blocks=1, ngf=4, ndf=4)  # nets "2017" by default
    assert isinstance(m, CycleGAN)
    assert count_params(m.netG_A) == count_params(resnet_generator_2017(3, 3, 4, 1))
    assert count_params(m.netD_A) == count_params(patchgan_2017(3, 4, 3))
    assert all(n.affine for n in m.netG_A.modules() if isinstance(n, nn.InstanceNorm2d))
    assert not any(isinstance(n, nn.ReflectionPad2d) and n.padding == (3, 3, 3, 3) for n in m.netG_A.modules())
    assert sum(isinstance(n, nn.ZeroPad2d) for n in m.netG_A.modules()) == 2
    current = DistanceGAN(nets="current", netG="resnet", n_blocks=1, ngf=4, ndf=4)
    assert count_params(current.netG_A) == count_params(CycleGAN(netG="resnet", n_blocks=1, ngf=4, ndf=4).netG_A)
    edges = DistanceDiscoGAN(num_layers=3)  # 64x64, DiscoGAN's nets; --num_layers 3 (edges2shoes): the generator only
    assert isinstance(edges, DiscoGAN)
    assert count_params(edges.netG_A) == 1_318_016 and count_params(edges.netD_A) == 2_765_568
    assert count_params(DiscoGenerator(3, 3, 64, 4)) == 5_513_856  # the default depth at 64x64
    assert edges.hparams.num_layers == 3 and edges.netG_A(torch.zeros(1, 3, 64, 64)).shape == (1, 3, 64, 64)


# ------------------------------------------------------------------------------------------ the loss
def test_distances_and_statistics_on_known_inputs():
    x = torch.stack([torch.zeros(3, 2, 2), torch.ones(3, 2, 2), torch.full((3, 2, 2), 3.0)])
    assert pair_distances(x).tolist() == pytest.approx([1.0, 3.0, 2.0])  # (0,1), (0,2), (1,2)
    mean, std = distance_statistics(x)
    assert mean == pytest.approx(2.0) and std == pytest.approx(math.sqrt(2 / 3))  # population std over pairs
    img = torch.zeros(1, 3, 4, 2)
    img[..., 2:, :] = 0.5  # bottom half 0.5, top half 0
    assert self_distance(img).item() == pytest.approx(0.5)
    items = torch.stack([img[0], img[0] * 2, img[0] * 4])  # half-distances 0.5, 1, 2
    mean, std = distance_statistics(items, use_self_distance=True)
    assert mean == pytest.approx(3.5 / 3) and std == pytest.approx(math.sqrt(((0.5 - 3.5 / 3) ** 2 + (1 - 3.5 / 3) ** 2
                                                                               + (2 - 3.5 / 3) ** 2) / 3))
    with pytest.raises(UserError, match="even image height"):
        self_distance(torch.zeros(1, 3, 3, 2))


def test_normalised_pairwise_and_self_losses():
    m = DistanceGAN(**TINY_CYCLE)
    m.distance_stats.copy_(torch.tensor([1.0, 2.0, 0.5, 0.25], dtype=torch.float64))  # mu_A sd_A mu_B sd_B
    m.distance_stats_ready.fill_(True)
    real = torch.stack([torch.zeros(3, 2, 2), torch.ones(3, 2, 2), torch.full((3, 2, 2), 3.0)])
    fake = torch.stack([torch.zeros(3, 2, 2), torch.full((3, 2, 2), 0.5), torch.full((3, 2, 2), 0.5)])
    # pairs: d_real (1, 3, 2) -> ((d - 1) / 2) = (0, 1, 0.5); d_fake (0.5, 0.5, 0) -> ((d - 0.5) / 0.25) = (0, 0, -2)
    assert m.distance_loss(real, fake, "A").item() == pytest.approx((0 + 1 + 2.5) / 3)
    # B -> A uses the B statistics for the input and the A statistics for the output
    assert m.distance_loss(fake, real, "B").item() == pytest.approx((0 + 1 + 2.5) / 3)
    m.hparams.unnormalized_distances = True
    assert m.distance_loss(real, fake, "A").item() == pytest.approx((0.5 + 2.5 + 2) / 3)
    disco = DistanceDiscoGAN(**TINY_DISCO, unnormalized_distances=True)  # distances of [0, 1] images: halved
    assert disco.distance_loss(real, fake, "A").item() == pytest.approx((0.5 + 2.5 + 2) / 6)
    m.hparams.use_self_distance = True
    top_bottom = torch.zeros(2, 3, 4, 2)
    top_bottom[..., 2:, :] = 1.0  # half-distance of the whole batch: 1
    assert m.distance_loss(top_bottom, torch.zeros(2, 3, 4, 2), "A").item() == pytest.approx(1.0)


def test_generator_terms_and_weights():
    pl.seed_everything(0)
    m = DistanceGAN(**TINY_CYCLE, lambda_distance_A=2.0, use_cycle_loss=True, unnormalized_distances=True)
    a, b = torch.rand(3, 3, 16, 16) * 2 - 1, torch.rand(3, 3, 16, 16) * 2 - 1
    v = m.forward_cycle(a, b)
    g = m.generator_losses(v)
    assert set(g) == {"G_A", "G_B", "distance_A", "distance_B", "cycle_A", "cycle_B"}
    assert torch.allclose(g["distance_A"], 2.0 * m.distance_loss(a, v["fake_B"], "A"))
    assert torch.allclose(g["cycle_A"], (v["rec_A"] - a).abs().mean() * 10)
    assert torch.allclose(g["G_A"], ((m.netD_A(v["fake_B"]) - 1) ** 2).mean())
    one = DistanceGAN(**TINY_CYCLE, direction="AtoB", unnormalized_distances=True)
    v = one.forward_cycle(a, b)
    assert "fake_A" not in v and set(one.generator_losses(v)) == {"G_A", "distance_A"}
    assert one.directions == ("AtoB",)
    with pytest.raises(ValueError, match="translates"):
        one.translate(b, "BtoA")
    d = DistanceDiscoGAN(**TINY_DISCO, unnormalized_distances=True, use_reconst_loss=True, direction="BtoA")
    d.iteration = 20000  # rate 0.5
    v = d.forward_cycle(a[:, :, :16].repeat(1, 1, 2, 2), b[:, :, :16].repeat(1, 1, 2, 2))
    g = d.generator_losses(v)
    assert set(g) == {"G_B", "fm_B", "cycle_B", "distance_B"}
    assert torch.allclose(g["distance_B"], 0.5 * d.distance_loss(v["real_B"], v["fake_A"], "B"))
    assert torch.allclose(g["cycle_B"], ((v["rec_B"] - v["real_B"]) / 2).pow(2).mean() * 0.5)
    assert d.directions == ("AtoB", "BtoA")  # the reconstruction trains the other generator too


# ------------------------------------------------------------------------------------------ statistics at fit start
def test_statistics_are_computed_at_fit_start_without_changing_the_batches(tmp_path):
    class Seen(DistanceGAN):
        def training_step(self, batch, batch_idx):
            self.seen = getattr(self, "seen", []) + [batch["A"].clone()]
            return super().training_step(batch, batch_idx)

    runs = []
    for normalise in (True, False):
        pl.seed_everything(0)
        m = Seen(**TINY_CYCLE, unnormalized_distances=not normalise)
        trainer(tmp_path / str(normalise), max_steps=4).fit(m, data())
        runs.append(m)
    with_stats, without = runs
    assert bool(with_stats.distance_stats_ready) and not bool(without.distance_stats_ready)
    assert all(torch.equal(x, y) for x, y in zip(with_stats.seen, without.seen))  # the random states were kept
    mu_a, sd_a, mu_b, sd_b = with_stats.distance_stats.tolist()
    assert 0 < sd_a < mu_a and 0 < sd_b < mu_b
    # the same sample again gives the same statistics; an item is a batch of 2 in this architecture
    pl.seed_everything(0)
    again = Seen(**TINY_CYCLE)
    trainer(tmp_path / "again", max_steps=2).fit(again, data())
    assert torch.equal(again.distance_stats, with_stats.distance_stats)
    a, b = again.statistics_sample(again.trainer.train_dataloader)
    assert a.shape == (4, 2, 3, 32, 32)  # 8 images in complete batches of 2 (max_items 6 allows more)
    disco = DistanceDiscoGAN(**TINY_DISCO)
    a, _ = disco.statistics_sample(again.trainer.train_dataloader)
    assert a.shape == (8, 3, 32, 32)  # images in this architecture
    with pytest.raises(UserError, match="at least 2 images"):
        trainer(tmp_path / "one", max_steps=2).fit(DistanceGAN(**TINY_CYCLE), tiny_data(train_limit=4, batch_size=1))


# ------------------------------------------------------------------------------------------ steps
def test_cycle_arch_steps_and_one_sided_flags(tmp_path):
    pl.seed_everything(0)
    both = rec(DistanceGAN)(**TINY_CYCLE)
    trainer(tmp_path / "both", max_steps=4).fit(both, data())
    assert check_steps(both, ["netG_A", "netG_B"], ["netD_A", "netD_B"]) == ["start", "G", "D", "G", "D"]
    pl.seed_everything(0)
    one = rec(DistanceGAN)(**TINY_CYCLE, direction="AtoB")
    trainer(tmp_path / "one", max_steps=4).fit(one, data())
    assert check_steps(one, ["netG_A"], ["netD_A"]) == ["start", "G", "D", "G", "D"]
    first, last = one.snaps[0][1], one.snaps[-1][1]
    assert all(torch.equal(first[k], last[k]) for k in first if k.startswith(("netG_B.", "netD_B.")))
    pl.seed_everything(0)
    cyc = rec(DistanceGAN)(**TINY_CYCLE, direction="AtoB", use_cycle_loss=True)
    trainer(tmp_path / "cyc", max_steps=2).fit(cyc, data())
    check_steps(cyc, ["netG_A", "netG_B"], ["netD_A"])  # the cycle trains G_B; D_B is never stepped
    assert cyc.directions == ("AtoB", "BtoA")


def test_disco_arch_schedule_and_one_sided(tmp_path):
    pl.seed_everything(0)
    m = rec(DistanceDiscoGAN)(**TINY_DISCO, direction="BtoA")
    t = trainer(tmp_path, max_steps=3, log_every_n_steps=1)
    t.fit(m, data())
    assert check_steps(m, ["netG_B"], ["netD_B"]) == ["start", "D", "G", "G"]
    first, last = m.snaps[0][1], m.snaps[-1][1]
    # G_A still runs (as the code's forward: its BatchNorm statistics move), but no parameter of A's side does
    assert all(torch.equal(first[k], last[k]) for k in first if k.startswith(("netG_A.", "netD_A."))
               and "running" not in k and "num_batches" not in k)
    assert "train/loss_distance_B" in t.callback_metrics and "train/loss_distance_A" not in t.callback_metrics


def _fit(root, epochs, ckpt=None, make=lambda: DistanceGAN(**TINY_CYCLE)):
    from pytorch_lightning.callbacks import ModelCheckpoint

    pl.seed_everything(1)
    m = make()
    cb = ModelCheckpoint(dirpath=root / "ckpt", save_last=True, every_n_epochs=1, save_top_k=-1)
    trainer(root, max_epochs=epochs, enable_checkpointing=True, callbacks=[cb], deterministic=True).fit(
        m, data(), ckpt_path=ckpt)
    return m


def test_resume_is_exact_and_keeps_the_statistics(tmp_path):
    straight = _fit(tmp_path / "a", 2)
    _fit(tmp_path / "b", 1)
    state = torch.load(tmp_path / "b" / "ckpt" / "last.ckpt", weights_only=True)
    assert bool(state["state_dict"]["distance_stats_ready"])
    resumed = _fit(tmp_path / "c", 2, ckpt=str(tmp_path / "b" / "ckpt" / "last.ckpt"))
    sa, sb = straight.state_dict(), resumed.state_dict()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# ------------------------------------------------------------------------------------------ CLI
@pytest.mark.parametrize("config", ["digits", "digits_discogan"])
def test_cli_builtin_configs(config, tmp_path, cli_env):
    from lit_i2i.commands import load_run

    small = (["--model.init_args.ngf", "4", "--model.init_args.ndf", "4", "--model.init_args.max_items", "8"]
             + (["--model.init_args.n_blocks", "1"] if config == "digits" else []))
    ckpt, state = cli_fit(tmp_path, f"experiments/distancegan/{config}.yaml", "--trainer.max_steps", "4",
                          "--metrics.max_samples", "16", *small, *TINY_CLI)
    assert state["global_step"] >= 4 and bool(state["state_dict"]["distance_stats_ready"])
    model, _ = load_run(ckpt)
    assert model.translate(torch.zeros(2, 3, 32, 32), model.directions[0]).shape == (2, 3, 32, 32)
    assert list((tmp_path / "run" / "grids").glob("final_*.png"))


def test_cli_horse2zebra_on_generated_folders(tmp_path, cli_env):
    root = make_unpaired(tmp_path / "data", 8, 8, size=(36, 36))  # 4 batches of 2: 6 pairs for the statistics
    _, state = cli_fit(tmp_path, "experiments/distancegan/horse2zebra.yaml", "--data.init_args.root", str(root),
                       "--data.init_args.load_size", "36", "--data.init_args.crop_size", "32",
                       "--data.init_args.num_workers", "0", "--model.init_args.netG", "resnet",
                       "--model.init_args.n_blocks", "1", "--model.init_args.ngf", "4", "--model.init_args.ndf", "4",
                       "--trainer.max_steps", "2", "--metrics.metrics", "[]", *TINY_CLI)
    assert state["global_step"] == 2


def test_cli_celeba_disco_config_on_a_generated_celeba(tmp_path, cli_env):
    root = tmp_path / "celeba"
    make_celeba(root, 60, size=(36, 44))
    make_partition(root, 60)
    _, state = cli_fit(tmp_path, "experiments/distancegan/celeba_blond_black.yaml", "--data.init_args.root", str(root),
                       "--data.init_args.test_size", "2", "--data.init_args.batch_size", "2",
                       "--data.init_args.num_workers", "0", "--model.init_args.ngf", "4", "--model.init_args.ndf", "4",
                       "--model.init_args.max_items", "8", "--trainer.max_steps", "3", "--metrics.metrics", "[]",
                       *TINY_CLI)
    assert state["global_step"] == 3


def test_assumption_score_known_answers():
    """experiments/distancegan/assumption.py: the loss and correlation of known mappings."""
    import importlib.util

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("assumption", ROOT / "experiments" / "distancegan" / "assumption.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    x = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    stats = mod.statistics(x, 1, 900)
    loss, corr = mod.score(x, x, stats, stats, 4)  # the identity with equal statistics: no loss, corr 1
    assert loss == pytest.approx(0.0, abs=1e-6) and corr == pytest.approx(1.0)
    # an affine change of the distances that the statistics undo: G(x) = 2x measured against 2x's statistics
    loss, corr = mod.score(x, 2 * x, stats, mod.statistics(2 * x, 1, 900), 4)
    assert loss == pytest.approx(0.0, abs=1e-5) and corr == pytest.approx(1.0)
    # the distance of the items of 2 images: sigma shrinks against single images (the CycleGAN-arch unit)
    assert mod.statistics(x, 2, 900)[1] < stats[1]
    # a pair of known distances: x0, x1 at mean |.| 1 apart, standardised by (0, 1) -> loss |1 - 0| = 1
    a = torch.stack([torch.zeros(1, 2, 2), torch.ones(1, 2, 2)])
    assert mod.score(a, a * 0, (0.0, 1.0), (0.0, 1.0), 2)[0] == pytest.approx(1.0)
    with pytest.raises(SystemExit, match="batch_size"):
        mod.main(["--batch_size", "1"])
    # the class AUC: two tight clusters far apart -> 1; labels that ignore the clusters -> 0.5 or below
    pts = torch.cat([torch.zeros(4, 1, 2, 2), torch.ones(4, 1, 2, 2)]) + torch.rand(8, 1, 2, 2) * 0.01
    assert mod.class_auc(pts, torch.tensor([0] * 4 + [1] * 4)) == pytest.approx(1.0)
    assert mod.class_auc(pts, torch.tensor([0, 1] * 4)) < 0.5


def test_norm_d_option():
    """nets: current takes CycleGAN's norm_D (no InstanceNorm in D); the 2017 nets refuse another one."""
    m = DistanceGAN(nets="current", netG="resnet", ngf=8, n_blocks=1, netD="n_layers", n_layers_D=2, ndf=8,
                    norm_D="none")
    assert not any(isinstance(x, nn.InstanceNorm2d) for x in m.netD_A.modules())
    assert any(isinstance(x, nn.InstanceNorm2d) for x in m.netG_A.modules())
    with pytest.raises(ValueError, match="norm_D"):
        DistanceGAN(nets="2017", norm_D="none")


# ------------------------------------------------------------------------------------------ the MNIST -> SVHN model
TINY_DIGIT = dict(g_conv_dim=4, d_conv_dim=4, max_items=6)


def test_digit_model_official_counts():
    from lit_i2i.methods.distancegan import DistanceDigitGAN
    from lit_i2i.nets.distancegan import digit_discriminator, digit_generator

    # cyclegan_arch/mnist_to_svhn/model.py at conv_dim 64, counted by hand from its layer list:
    # G12 conv1 1*64*16 + BN 128, conv2 64*128*16 + 256, conv3 / conv4 128*128*9 + 256, deconv1 128*64*16 + 128,
    # deconv2 64*3*16 (bias-free, no BN) = 562,176; D1 1*64*16 + 64*128*16 + 256 + 128*256*16 + 512 + 256*16 = 661,248
    assert count_params(digit_generator(1, 3)) == 562_176 == count_params(digit_generator(3, 1))
    assert count_params(digit_discriminator(1)) == 661_248
    assert count_params(digit_discriminator(3)) == 663_296
    official = DistanceDigitGAN(in_ch=1, out_ch=3)
    assert [count_params(getattr(official, n)) for n in ("netG_A", "netG_B", "netD_A", "netD_B")] == [
        562_176, 562_176, 663_296, 661_248]
    grey = DistanceDigitGAN()  # the suite's 3-channel digits: 2,048 more in each first / last layer on A's side
    assert [count_params(getattr(grey, n)) for n in ("netG_A", "netG_B", "netD_B")] == [564_224, 564_224, 663_296]
    x = torch.randn(2, 1, 32, 32)
    assert official.netG_A(x).shape == (2, 3, 32, 32) and official.netD_B(x).numel() == 2
    with pytest.raises(UserError, match="exclusive"):
        DistanceDigitGAN(use_distance_loss=True, use_self_distance=True)


def test_digit_model_iteration_order_and_zero_gradient_adam_steps(tmp_path):
    """D real, D fake, G a->b->a, G b->a->b; one Adam for both generators that steps both every time
    (PyTorch 0.3's in-place zero_grad): without the cycle, G21 is moved by its momentum alone in the
    a->b->a step."""
    from lit_i2i.methods.distancegan import DistanceDigitGAN

    pl.seed_everything(0)
    m = rec(DistanceDigitGAN)(**TINY_DIGIT)
    t = trainer(tmp_path, max_epochs=1, log_every_n_steps=1)
    t.fit(m, data())  # 4 iterations of batch 2
    names = [n for n, _ in m.snaps]
    assert names == ["start"] + ["D", "D", "G", "G"] * 4
    for (_, before), (name, after) in zip(m.snaps, m.snaps[1:]):
        g_moved = [any(changed(before, after, p)) for p in ("netG_A", "netG_B")]
        d_moved = [any(changed(before, after, p)) for p in ("netD_A", "netD_B")]
        assert (d_moved == [True, True]) == (name == "D") and (name == "D") != any(g_moved)
    first_G = m.snaps[2][1], m.snaps[3][1]  # before / after the very first G step (a -> b -> a)
    assert any(changed(*first_G, "netG_A")) and not any(changed(*first_G, "netG_B"))  # Adam's moments still 0
    second_iter_G = m.snaps[6][1], m.snaps[7][1]  # the second iteration's a -> b -> a step
    assert all(any(changed(*second_iter_G, p)) for p in ("netG_A", "netG_B"))  # G21 by momentum
    opt = m.optimizer("G")
    assert {int(opt.state[p]["step"]) for p in opt.param_groups[0]["params"]} == {8}  # 2 G steps x 4 iterations
    keys = set(t.callback_metrics)
    assert {"train/loss_G_A", "train/loss_G_B", "train/loss_distance_A", "train/loss_distance_B"} <= keys
    assert not any("reconst" in k for k in keys)
    assert bool(m.distance_stats_ready)


def test_digit_model_loss_switches(tmp_path):
    from lit_i2i.methods.distancegan import DistanceDigitGAN

    a, b = torch.rand(4, 3, 32, 32) * 2 - 1, torch.rand(4, 3, 32, 32) * 2 - 1
    cyc = DistanceDigitGAN(**TINY_DIGIT, use_reconst_loss=True, use_distance_loss=False)
    terms = cyc.side_terms(a, "A")
    assert set(terms) == {"G_A", "reconst_A"}
    torch.testing.assert_close(terms["reconst_A"], ((cyc.netG_B(cyc.netG_A(a)) - a) ** 2).mean())
    self_d = DistanceDigitGAN(**TINY_DIGIT, use_distance_loss=False, use_self_distance=True, unnormalized_distances=True)
    fake = self_d.netG_B(b)
    tb, bb = b.chunk(2, dim=2)
    tf, bf = fake.chunk(2, dim=2)
    want = ((tb - bb).abs().mean() - (tf - bf).abs().mean()).abs() * 0.1  # lambda_distance_B
    torch.testing.assert_close(self_d.side_terms(b, "B")["distance_B"], want, rtol=1e-4, atol=1e-6)
    pl.seed_everything(0)
    plain = DistanceDigitGAN(**TINY_DIGIT, use_reconst_loss=True, use_distance_loss=False)
    trainer(tmp_path, max_steps=4).fit(plain, data())
    assert not bool(plain.distance_stats_ready)  # no distance term: no statistics, as the code


def test_digit_model_resume_is_exact(tmp_path):
    from lit_i2i.methods.distancegan import DistanceDigitGAN

    def fit(root, epochs, ckpt=None):
        return _fit(root, epochs, ckpt, make=lambda: DistanceDigitGAN(**TINY_DIGIT))

    straight = fit(tmp_path / "a", 2)
    fit(tmp_path / "b", 1)
    resumed = fit(tmp_path / "c", 2, ckpt=str(tmp_path / "b" / "ckpt" / "last.ckpt"))
    sa, sb = straight.state_dict(), resumed.state_dict()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    so, ro = straight.optimizer("G").state_dict()["state"], resumed.optimizer("G").state_dict()["state"]
    assert all(torch.equal(so[i]["exp_avg"], ro[i]["exp_avg"]) for i in so)


def test_cli_digit_model_configs(tmp_path, cli_env, monkeypatch):
    from data_factory import make_mnist_svhn
    from lit_i2i.commands import load_run

    small = ["--model.init_args.g_conv_dim", "4", "--model.init_args.d_conv_dim", "4",
             "--model.init_args.max_items", "4", "--trainer.max_steps", "8"]
    ckpt, state = cli_fit(tmp_path / "builtin", "experiments/distancegan/digits_mnist2svhn.yaml", *small,
                          "--data.init_args.train_limit", "16", "--data.init_args.batch_size", "4",
                          "--metrics.max_samples", "16", *TINY_CLI)
    assert state["global_step"] == 8 and bool(state["state_dict"]["distance_stats_ready"])
    model, _ = load_run(ckpt)
    assert model.translate(torch.zeros(2, 3, 32, 32), "BtoA").shape == (2, 3, 32, 32)
    assert list((tmp_path / "builtin" / "run" / "grids").glob("final_*.png"))
    root = make_mnist_svhn(tmp_path / "digits", monkeypatch)
    _, state = cli_fit(tmp_path / "real", "experiments/distancegan/mnist2svhn.yaml", *small, *TINY_CLI,
                       "--data.init_args.root", str(root), "--data.init_args.num_workers", "0",
                       "--data.init_args.batch_size", "2",
                       "--metrics.metrics", "[]")
    assert state["global_step"] == 8
