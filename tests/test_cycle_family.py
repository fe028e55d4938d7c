"""DiscoGAN and DualGAN: official net sizes, each loss term on known inputs, the update schedules, which
parameters each step touches, weight clipping, and short CLI runs of their digits configs."""

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from helpers import check_steps, cli_fit, recording, tiny_data, trainer
from lit_i2i.core import GANLoss, clip_weights_, feature_matching_loss
from lit_i2i.methods.discogan import DiscoGAN
from lit_i2i.methods.dualgan import DualGAN
from lit_i2i.nets import DiscoDiscriminator, DiscoGenerator, NLayerDiscriminator, count_params, discogan_depth
from lit_i2i.nets.dualgan import DualCritic

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_DISCO = dict(image_size=32, ngf=8, ndf=8)
TINY_DUAL = dict(netG="unet_32", ngf=8, ndf=8, image_size=32, use_dropout=False)  # the official critic
TINY_DUAL_PATCH = dict(TINY_DUAL, netD="n_layers", n_layers_D=2)  # the paper's PatchGAN, smaller


def _images(n=4, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1, torch.rand(n, 3, size, size, generator=g) * 2 - 1


def _steps(model):
    return check_steps(model, ("netG_A", "netG_B"), ("netD_A", "netD_B"))


# ------------------------------------------------------------------------------------------ DiscoGAN
def test_discogan_nets_have_the_official_sizes_at_64():
    # official model.py, 64x64, bias=False everywhere; 4x4 kernels: 16 weights per (in, out) channel pair
    convs = 3 * 64 + 64 * 128 + 128 * 256 + 256 * 512            # encoder / D's stride-2 convs
    g = 16 * (2 * convs) + 2 * (128 + 256 + 512 + 256 + 128 + 64)  # + the mirrored deconvs (512..64, 64 -> 3), BN
    d = 16 * (convs + 512 * 1) + 2 * (128 + 256 + 512)            # + the 4x4 head to one logit, BN
    assert (g, d) == (5_513_856, 2_765_568)
    depth = discogan_depth(64)
    G, D = DiscoGenerator(3, 3, 64, depth, "batch"), DiscoDiscriminator(3, 64, depth, "batch")
    assert depth == 4 and count_params(G) == g and count_params(D) == d
    convs = [m for m in [*G.modules(), *D.modules()] if isinstance(m, torch.nn.modules.conv._ConvNd)]
    assert len(convs) == 13 and all(m.bias is None for m in convs)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    y = G(x)
    assert y.shape == x.shape and y.abs().max() <= 1
    logits, feats = D.forward_features(x)
    assert logits.shape == (2, 1, 1, 1) and torch.equal(logits, D(x))
    assert [tuple(f.shape[1:]) for f in feats] == [(128, 16, 16), (256, 8, 8), (512, 4, 4)]  # relu2..relu4
    assert discogan_depth(32) == 3 and DiscoDiscriminator(3, 8, 3)(torch.rand(1, 3, 32, 32)).shape == (1, 1, 1, 1)
    with pytest.raises(ValueError):
        discogan_depth(48)


def test_feature_matching_on_crafted_features():
    real = [torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.full((2, 3), 5.0)]
    fake = [torch.tensor([[0.0, 0.0], [2.0, 2.0]]), torch.zeros(2, 3)]
    # layer 1: batch means (2, 3) vs (1, 1): mean of (1, 4) = 2.5; layer 2: (5 - 0)^2 = 25
    assert feature_matching_loss(real, fake).item() == pytest.approx(27.5)
    # the official get_fm_loss: HingeEmbeddingLoss(d^2, ones) per layer, summed
    official = sum(torch.nn.HingeEmbeddingLoss()((r.mean(0) - f.mean(0)) ** 2, torch.ones(r.shape[1:]))
                   for r, f in zip(real, fake))
    assert feature_matching_loss(real, fake).item() == pytest.approx(official.item())
    assert feature_matching_loss(real, real).item() == 0


def test_discogan_loss_terms_follow_the_official_formula():
    torch.manual_seed(0)
    model = DiscoGAN(**TINY_DISCO)
    a, b = _images()
    v = model.forward_cycle(a, b)
    for it, rate in ((0, 0.01), (9999, 0.01), (10000, 0.5)):
        model.iteration = it
        assert model.rate() == rate
        g = model.generator_losses(v)
        pred, feats_fake = model.netD_A.forward_features(v["fake_B"])
        _, feats_real = model.netD_A.forward_features(b)
        bce = F.binary_cross_entropy(torch.sigmoid(pred), torch.ones_like(pred))  # the official Sigmoid + BCELoss
        assert g["G_A"].item() == pytest.approx(bce.item() * 0.1 * (1 - rate), rel=1e-5)
        fm = feature_matching_loss(feats_real, feats_fake).item()
        assert g["fm_A"].item() == pytest.approx(fm * 0.9 * (1 - rate), rel=1e-5)
        # MSE on [0, 1] images = MSE on [-1, 1] images / 4
        assert g["cycle_A"].item() == pytest.approx(F.mse_loss(v["rec_A"], a).item() / 4 * rate, rel=1e-5)
        assert set(g) == {"G_A", "G_B", "fm_A", "fm_B", "cycle_A", "cycle_B"}
    d_real, d_fake = model.netD_A(b), model.netD_A(v["fake_B"].detach())
    expected = 0.5 * (F.binary_cross_entropy(torch.sigmoid(d_real), torch.ones_like(d_real))
                      + F.binary_cross_entropy(torch.sigmoid(d_fake), torch.zeros_like(d_fake)))
    d_loss = model.discriminator_loss(model.netD_A, b, v["fake_B"].detach())
    assert d_loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_discogan_schedule_and_options():
    model = DiscoGAN(**TINY_DISCO)
    assert [model.updates(i) for i in range(7)] == [("D",), ("G",), ("G",), ("D",), ("G",), ("G",), ("D",)]
    assert DiscoGAN(**TINY_DISCO, update_interval=None).updates(5) == ("G", "D")
    with pytest.raises(ValueError, match="update_interval"):
        DiscoGAN(**TINY_DISCO, update_interval=1)
    with pytest.raises(ValueError, match="wgangp"):
        DiscoGAN(**TINY_DISCO, gan_mode="wgangp")
    opt = model.build_optimizers()
    assert list(opt) == ["G", "D"] and opt["D"].defaults["weight_decay"] == 1e-5
    assert opt["G"].defaults["betas"] == (0.5, 0.999) and opt["G"].defaults["lr"] == 2e-4


def test_discogan_one_update_per_iteration_touches_only_its_nets(tmp_path):
    pl.seed_everything(0)
    model = recording(DiscoGAN)(**TINY_DISCO)
    t = trainer(tmp_path, max_steps=6, log_every_n_steps=1)
    t.fit(model, tiny_data())
    assert _steps(model) == ["start", "D", "G", "G", "D", "G", "G"]
    assert model.iteration == 6 and t.global_step == 6
    for k in ("G", "D", "G_A", "fm_A", "cycle_A", "D_A"):
        assert f"train/loss_{k}" in t.callback_metrics, k
    assert t.callback_metrics["train/rate"] == pytest.approx(0.01)

    pl.seed_everything(0)
    both = recording(DiscoGAN)(**TINY_DISCO, update_interval=None)
    trainer(tmp_path / "b", max_steps=4).fit(both, tiny_data())
    assert _steps(both) == ["start", "G", "D", "G", "D"]


# ------------------------------------------------------------------------------------------ DualGAN
def _official_critic_params(c, df, s):
    # duxingren14/DualGAN@fabe044 model.py discriminator: 5x5 convs with biases (strides 2, 2, 2, 1),
    # tf.contrib batch_norm (scale + offset) on h1..h3, linear(flatten(h3) -> 1)
    convs = 25 * (c * df + df * 2 * df + 2 * df * 4 * df + 4 * df * 8 * df) + (df + 2 * df + 4 * df + 8 * df)
    return convs + 2 * (2 * df + 4 * df + 8 * df) + (s // 8) ** 2 * 8 * df + 1


def test_dualgan_critic_is_the_wgan_era_official_net():
    assert _official_critic_params(3, 64, 256) == 4_832_641
    for c, df, s in ((3, 64, 256), (1, 64, 256), (3, 32, 32), (3, 8, 32)):
        assert count_params(DualCritic(c, df, s)) == _official_critic_params(c, df, s), (c, df, s)
    D = DualCritic(3, 8, 32)
    kinds = [type(m).__name__ for m in D.modules() if not isinstance(m, (torch.nn.Sequential, DualCritic))]
    assert kinds.count("Conv2d") == 4 and kinds.count("BatchNorm2d") == 3 and kinds[-1] == "Linear"
    assert [m.kernel_size + m.stride for m in D.modules() if isinstance(m, torch.nn.Conv2d)] == \
        [(5, 5, 2, 2)] * 3 + [(5, 5, 1, 1)]
    assert all(m.bias is not None for m in D.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    y = D(x)
    assert y.shape == (4, 1)
    D.eval()  # batch statistics in eval mode too (the official is_training=True), and no running buffers
    assert torch.allclose(D(x), y) and not list(D.buffers())
    # TF 'SAME' padding of a stride-2 5x5 conv on an even size: 1 pixel before, 2 after
    pad_conv = D.features[:2]
    with torch.no_grad():
        pad_conv[1].weight.fill_(1.0)
        pad_conv[1].bias.zero_()
        out = pad_conv(torch.ones(1, 3, 32, 32))
    assert out.shape[-2:] == (16, 16)
    assert out[0, 0, 0, 0].item() == 3 * 4 * 4 and out[0, 0, -1, -1].item() == 3 * 3 * 3  # symmetric pad 2: 27, 48
    with pytest.raises(ValueError, match="32x32"):
        D(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="divisible by 8"):
        DualCritic(3, 8, 36)
    model = DualGAN(**TINY_DUAL)
    assert isinstance(model.netD_A, DualCritic) and isinstance(model.netD_B, DualCritic)
    assert isinstance(DualGAN(**TINY_DUAL_PATCH).netD_A, NLayerDiscriminator)


def test_wgan_loss_and_weight_clipping_on_known_inputs():
    gan, pred = GANLoss("wgan"), torch.tensor([1.0, 3.0])
    assert gan(pred, True).item() == -2 and gan(pred, False).item() == 2
    assert gan(pred, True, for_discriminator=False).item() == -2
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    with torch.no_grad():
        net[0].weight.copy_(torch.linspace(-1, 1, 18).view(2, 1, 3, 3))
        net[1].weight.fill_(2.0)
    net[1].running_var.fill_(7.0)
    clip_weights_(net, 0.05)
    assert all(p.abs().max() <= 0.05 for p in net.parameters())
    assert net[0].weight.max() == 0.05 and net[0].weight.min() == -0.05
    assert net[1].running_var.max() == 7.0  # buffers are not clipped


@pytest.mark.parametrize("nets", [TINY_DUAL, TINY_DUAL_PATCH], ids=["official_critic", "patchgan"])
def test_dualgan_loss_terms(nets):
    torch.manual_seed(0)
    model = DualGAN(**nets)
    a, b = _images()
    v = model.forward_cycle(a, b)
    g = model.generator_losses(v)
    assert set(g) == {"G_A", "G_B", "cycle_A", "cycle_B"}  # no identity term
    assert g["G_A"].item() == pytest.approx(-model.netD_A(v["fake_B"]).mean().item(), rel=1e-5)
    assert g["cycle_A"].item() == pytest.approx((v["rec_A"] - a).abs().mean().item() * 200, rel=1e-5)
    fake = v["fake_B"].detach()
    expected = model.netD_A(fake).mean() - model.netD_A(b).mean()  # the official sum: no 1/2
    assert model.discriminator_loss(model.netD_A, b, fake).item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match="clip_value"):
        DualGAN(**TINY_DUAL, gan_mode="vanilla")
    DualGAN(**TINY_DUAL, gan_mode="vanilla", clip_value=None)  # the later official (cross-entropy) setting
    opt = model.build_optimizers()
    assert isinstance(opt["D"], torch.optim.RMSprop) and opt["D"].defaults["lr"] == 5e-5
    assert opt["D"].defaults["alpha"] == 0.9


def test_dualgan_n_critic_schedule_clipping_and_gradient_flow(tmp_path):
    pl.seed_everything(0)
    model = recording(DualGAN)(**TINY_DUAL)
    assert [model.updates(i) for i in range(4)] == [("D",), ("D",), ("D", "G"), ("D",)]
    t = trainer(tmp_path, max_steps=8, log_every_n_steps=1)
    t.fit(model, tiny_data())
    assert _steps(model) == ["start", "D", "D", "D", "G", "D", "D", "D", "G"]
    assert model.iteration == 6
    for name, snap in model.snaps[1:]:
        d = [v for k, v in snap.items() if k.startswith("netD_") and v.is_floating_point()]
        assert all(v.abs().max() <= 0.01 for v in d), name  # every critic weight, after every step
    # the clipping binds (normal(0, 0.02) init) and leaves the generators alone
    assert any(v.abs().max() == 0.01 for k, v in model.snaps[1][1].items() if k.startswith("netD_"))
    assert max(v.abs().max() for k, v in model.snaps[-1][1].items() if k.startswith("netG_")) > 0.01
    for k in ("G", "D", "G_A", "cycle_A", "D_A"):
        assert f"train/loss_{k}" in t.callback_metrics, k

    pl.seed_everything(0)
    every = recording(DualGAN)(**TINY_DUAL, n_critic=1)
    trainer(tmp_path / "b", max_steps=4).fit(every, tiny_data())
    assert _steps(every) == ["start", "D", "G", "D", "G"]


# ------------------------------------------------------------------------------------------ CLI
TINY_CLI = ["--model.init_args.ngf", "8", "--model.init_args.ndf", "8", "--trainer.enable_progress_bar", "false",
            "--trainer.logger", "false", "--trainer.limit_val_batches", "0", "--metrics.metrics", "[]",
            "--trainer.max_steps", "20", "--data.init_args.train_limit", "64"]


@pytest.mark.parametrize("method, iterations", [("discogan", 20), ("dualgan", 15)])
def test_digits_config_20_steps_then_translate(tmp_path, cli_env, method, iterations):
    from torchvision.io import read_image, write_png

    from datamodules.builtin import indices, render
    from lit_i2i.cli import main
    from lit_i2i.commands import load_run

    ckpt, state = cli_fit(tmp_path, f"experiments/{method}/digits.yaml", *TINY_CLI)
    assert ckpt.is_file() and state["global_step"] == 20
    cls = {"discogan": "DiscoGAN", "dualgan": "DualGAN"}[method]
    assert state["lit_i2i_config"]["model"]["class_path"] == f"lit_i2i.methods.{method}.{cls}"
    # DiscoGAN: one update an iteration; DualGAN: 3 critic + 1 generator updates per 3 iterations
    assert state["iteration"] == iterations
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    imgs, _, _ = render("digits", indices("A", "test")[:2])
    for i, x in enumerate(imgs):
        write_png(x, str(inp / f"d{i}.png"))
    assert main(["translate", "--ckpt", str(ckpt), "--input", str(inp), "--output", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["d0.png", "d1.png"]
    model, _ = load_run(ckpt)
    x = imgs[:1].float() / 127.5 - 1
    expected = ((model.translate(x)[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    assert (read_image(str(out / "d0.png")).int() - expected.int()).abs().max() <= 1
