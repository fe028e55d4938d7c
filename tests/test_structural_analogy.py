"""Structural analogy: the official pyramid (sizes, widths, parameter counts, upsampling), the noise
amplitude rule, which parameters each step moves, scale-by-scale training with initialisation from
the previous scale, exact resume mid-scale, inference at every inject level, the patch metrics, CLI."""

import math

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import ModelCheckpoint
from torch import nn

from datamodules.single_pair import SinglePair
from helpers import params, trainer
from lit_i2i.errors import UserError
from lit_i2i.methods.structural_analogy import StructuralAnalogy, pixel_gradient_penalty
from lit_i2i.metrics import patch as pm
from lit_i2i.nets.singan import BatchStatNorm2d, ScaleGenerator, cubic_matrix, pyramid_sizes, upsample

pytestmark = pytest.mark.usefixtures("one_thread")

# 3 scales (16, 18, 20), width 8, the finest one not residual, 3 iterations per scale
TINY = dict(img_size=20, min_size=16, nfc=8, min_nfc=8, max_nfc=8, switch_res=1, niter=3, inject_level=-2)


def count(*modules):
    return sum(p.numel() for m in modules for p in m.parameters())


def pair(size=20, steps=2):
    return SinglePair("chelsea", "coffee", size=size, steps_per_epoch=steps)


# ------------------------------------------------------------------------------- the pyramid
def test_official_pyramid_sizes_and_widths():
    sizes, f = pyramid_sizes(220, 18, 0.75, 250)
    assert sizes == [19, 24, 30, 39, 49, 63, 81, 104, 134, 172, 220]
    assert math.isclose(f, (18 / 220) ** 0.1)
    assert pyramid_sizes(220, 25)[0] == [25, 32, 41, 52, 66, 84, 107, 136, 173, 220]  # README's --min_size 25
    m = StructuralAnalogy()
    assert m.num_scales == 11 and m.widths == [32] * 4 + [64] * 4 + [128] * 3
    assert [m.residual(k) for k in range(11)] == [True] * 9 + [False] * 2  # switch_res 2
    assert not m.G_a[9].residual and m.G_a[8].residual


def test_official_parameter_counts():
    m = StructuralAnalogy()
    assert count(m.G_a, m.G_b) == 3_861_570 and count(m.D_a, m.D_b) == 3_833_878
    assert [count(m.G_a[k]) for k in (0, 4, 8)] == [29_763, 114_819, 450_819]
    assert [count(m.D_a[k]) for k in (0, 4, 8)] == [29_185, 113_665, 448_513]
    wide = StructuralAnalogy(nfc=128, min_nfc=128)  # README's --nfc 128 --min_nfc 128
    assert count(wide.G_a) == 4_959_009 and count(wide.D_a) == 4_933_643
    g = m.G_a[0]
    assert g.head.conv.padding == (1, 1) and m.D_a[0].head.conv.padding == (0, 0)
    assert m.D_a[0](torch.zeros(1, 3, 19, 19)).shape == (1, 1, 9, 9)  # 11x11 receptive field


def test_official_init():
    torch.manual_seed(0)
    m = StructuralAnalogy(img_size=64, min_size=18)
    w = torch.cat([c.weight.flatten() for c in m.G_a.modules() if isinstance(c, nn.Conv2d)])
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.002
    bn = [c for c in m.G_a.modules() if isinstance(c, nn.BatchNorm2d)]
    assert all(torch.equal(c.bias, torch.zeros_like(c.bias)) for c in bn)
    assert abs(torch.cat([c.weight for c in bn]).mean().item() - 1) < 0.01


def test_batchnorm_is_the_official_train_mode_function_in_every_mode():
    torch.manual_seed(0)
    ours, official = BatchStatNorm2d(4), nn.BatchNorm2d(4)
    ours.weight.data.normal_(1, 0.02)
    official.load_state_dict(ours.state_dict(), strict=False)
    x = torch.randn(1, 4, 9, 9)
    official.train()
    expected = official(x)
    assert torch.allclose(ours.train()(x), expected, atol=1e-6)
    assert torch.allclose(ours.eval()(x), expected, atol=1e-6)
    assert not any(True for _ in ours.buffers())  # no dead running statistics


def test_upsampling_matches_the_official_imresize():
    # official contributions() for 5 -> 7 pixels at scale 4/3: the left edge drops the taps before
    # the first pixel (unsigned cast), the right edge mirrors
    expected = np.array([
        [1.0522388059701493, -0.05223880597014925, 0, 0, 0],
        [0.37324602432179604, 0.696913002806361, -0.07015902712815715, 0, 0],
        [-0.0732421875, 0.7275390625, 0.3896484375, -0.0439453125, 0],
        [0, -0.0478515625, 0.9638671875, 0.0908203125, -0.0068359375],
        [0, -0.0068359375, 0.0908203125, 0.9638671875, -0.0478515625],
        [0, 0, -0.0439453125, 0.3896484375, 0.654296875],
        [0, 0, 0, -0.1171875, 1.1171875]])
    assert np.allclose(cubic_matrix(5, 1 / 0.75), expected, atol=1e-15)
    sizes, f = pyramid_sizes()
    for s in sizes[:-1]:
        assert np.allclose(cubic_matrix(s, 1 / f).sum(1), 1)
    # uint8 truncation, then the resize, then the clamp
    x = torch.full((1, 3, 19, 19), 0.3)
    y = upsample(x, 1 / f, (24, 24))
    q = math.floor(255 * 0.65) / 255 * 2 - 1
    assert y.shape == (1, 3, 24, 24) and torch.allclose(y, torch.full_like(y, q), atol=1e-6)
    assert upsample(torch.full((1, 3, 5, 5), 3.0), 1 / 0.75).max() == 1


# ------------------------------------------------------------------------------- training
class Recording(StructuralAnalogy):
    """Snapshots after every step and the reconstruction input of every scale's first iteration."""

    def on_train_start(self):
        self.snaps, self.recs = [("start", self.iteration, params(self))], {}

    def step(self, name, loss, clip=None):
        super().step(name, loss, clip)
        self.snaps.append((name, self.iteration, params(self)))

    def draw(self, domain, n, mode, rng):
        y = super().draw(domain, n, mode, rng)
        if mode == "rec" and self.iteration % self.hparams.niter == 0:
            self.recs[(domain, n)] = y.clone()
        return y


def test_each_step_moves_only_the_current_scale_and_scales_start_from_the_previous(tmp_path):
    pl.seed_everything(0)
    m = Recording(**TINY)
    trainer(tmp_path, max_epochs=-1).fit(m, pair(steps=4))
    assert m.iteration == 9  # the run stops itself after 3 scales x 3 iterations
    names = [n for n, _, _ in m.snaps[1:]]
    assert names == [f"{k}{s}" for s in range(3) for _ in range(3) for k in ("D", "G")]
    nets = ("G_a", "G_b", "D_a", "D_b")
    for (_, _, before), (name, it, after) in zip(m.snaps, m.snaps[1:]):
        n = int(name[1:])
        if name.startswith("D") and it % 3 == 0 and n > 0:  # the scale's first step: copied from n-1
            for net in nets:
                src = {k: v for k, v in before.items() if k.startswith(f"{net}.{n - 1}.")}
                before = {**before, **{k.replace(f"{net}.{n - 1}.", f"{net}.{n}."): v for k, v in src.items()}}
            g_now = {k: v for k, v in after.items() if k.startswith(f"G_a.{n}.")}
            assert all(torch.equal(v, before[k]) for k, v in g_now.items())  # the D step left G as copied
        own = ("D_a", "D_b") if name.startswith("D") else ("G_a", "G_b")
        for net in nets:
            for k in range(3):
                moved = any(not torch.equal(before[p], after[p]) for p in before if p.startswith(f"{net}.{k}."))
                assert moved == (net in own and k == n), (name, it, net, k)


def test_noise_amplitude_rule(tmp_path):
    pl.seed_everything(0)
    m = Recording(**TINY)
    data = pair(steps=4)
    trainer(tmp_path, max_epochs=-1).fit(m, data)
    data.setup("fit")
    reals = {"A": data.dataset("train")[0]["A"][None], "B": data.dataset("train")[0]["B"][None]}
    assert torch.equal(m.noise_amps[:, 0], torch.full((2,), 0.1))  # scale 0 stores noise_amp itself
    for d, dom in enumerate("AB"):
        for n in (1, 2):
            rmse = torch.sqrt(F.mse_loss(m.real(reals[dom], n), m.recs[(dom, n)]))
            assert torch.isclose(m.noise_amps[d, n], 0.1 * rmse), (dom, n)
    assert (m.noise_amps[:, 1:] < 0.1).all() and (m.noise_amps[:, 1:] > 0).all()


def test_gradient_penalty_is_per_pixel_over_channels():
    class Linear(nn.Module):  # D(x) = sum_c w_c x_c at every pixel: gradient w at each pixel
        def forward(self, x):
            return (x * torch.tensor([3.0, 4.0, 0.0]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    real, fake = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    assert math.isclose(float(pixel_gradient_penalty(Linear(), real, fake, 0.1)), 0.1 * (5 - 1) ** 2, rel_tol=1e-6)


def _fit(root, model, ckpt=None, every=None):
    cb = ModelCheckpoint(dirpath=root / "ckpt", save_last=True, save_top_k=-1, every_n_train_steps=every,
                         every_n_epochs=None if every else 1, filename="{step}")
    t = trainer(root, max_epochs=-1, enable_checkpointing=True, callbacks=[cb])
    t.fit(model, pair(steps=4), ckpt_path=ckpt)
    return model


def test_resume_is_exact_mid_scale_and_mid_epoch(tmp_path):
    pl.seed_everything(3)
    straight = _fit(tmp_path / "a", StructuralAnalogy(**TINY), every=2)  # a checkpoint after every iteration
    assert straight.iteration == 9
    # 2 optimizer steps per iteration, 4 iterations per epoch, 3 per scale: step 10 = 5 iterations done,
    # inside scale 1 and inside epoch 1; step 6 = at the start of scale 1, inside epoch 0
    for step in (10, 6):
        pl.seed_everything(3)
        resumed = _fit(tmp_path / f"r{step}", StructuralAnalogy(**TINY),
                       ckpt=str(tmp_path / "a" / "ckpt" / f"step={step}.ckpt"))
        assert resumed.iteration == 9
        sa, sb = straight.state_dict(), resumed.state_dict()
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), (step, k)


# ------------------------------------------------------------------------------- inference
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    pl.seed_everything(0)
    m = StructuralAnalogy(**TINY)
    trainer(tmp_path_factory.mktemp("sa"), max_epochs=-1).fit(m, pair(steps=9))
    return m.eval()


def test_inference_at_every_inject_level(trained):
    m = trained
    a = pair().eval_source("A")[0][0][None].float() / 127.5 - 1
    outs = {}
    for k in list(range(m.num_scales)) + [-1, -3]:
        y = m.translate(a, "AtoB", inject_level=k)
        assert y.shape == (1, 3, 20, 20) and torch.isfinite(y).all()
        outs[k] = y
    assert torch.equal(outs[-1], outs[2]) and torch.equal(outs[-3], outs[0])
    assert not torch.equal(outs[0], outs[2])
    # injecting at the finest scale is eval.py's G_b(real_a, real_a); the finest scale is not residual here
    assert torch.allclose(outs[2], m.G_b[2](a), atol=1e-6)
    assert torch.equal(m.translate(a, "AtoB"), outs[m.resolve_inject(m.hparams.inject_level)])
    # deterministic, and each image is translated on its own (per-image BatchNorm statistics)
    b = pair().eval_source("B")[0][0][None].float() / 127.5 - 1
    both = m.translate(torch.cat([a, b]), "AtoB", inject_level=0)
    assert torch.allclose(both[:1], outs[0], atol=1e-6)
    assert torch.allclose(both[1:], m.translate(b, "AtoB", inject_level=0), atol=1e-6)
    assert m.translate(b, "BtoA").shape == (1, 3, 20, 20)
    with pytest.raises(UserError, match="inject_level"):
        m.translate(a, "AtoB", inject_level=3)
    with pytest.raises(UserError, match="mode"):
        m.translate(a, "AtoB", mode="removal")


def test_samples_and_their_translations(trained):
    m = trained
    s = m.sample(3, "A", seed=1)
    assert s.shape == (3, 3, 20, 20) and not torch.equal(s[0], s[1])
    assert torch.equal(s, m.sample(3, "A", seed=1))
    st = m.sample_and_translate(3, "AtoB", seed=1)
    assert torch.equal(st["sample"], s)
    assert torch.allclose(st["translation"], m.translate(s, "AtoB", mode="sample"), atol=1e-6)
    assert torch.allclose(st["translation"][:1], m.G_b[2](s[:1]), atol=1e-6)
    v = m.visuals({"A": s[:1], "B": s[1:2]})
    assert list(v) == ["real_A", "fake_B", "real_B", "fake_A", "sample_A", "sample_AtoB", "sample_B", "sample_BtoA"]
    assert {t.shape for t in v.values()} == {(1, 3, 20, 20)}


def test_partly_trained_model_uses_its_trained_scales():
    m = StructuralAnalogy(**TINY)
    m.iteration = 4  # inside scale 1
    assert m.top_scale() == 1
    x = torch.zeros(1, 3, 20, 20)
    assert m.translate(x, "AtoB", inject_level=2).shape == (1, 3, 20, 20)  # clamped to scale 1
    assert m.sample(1, "B").shape == (1, 3, 20, 20)


def test_options_are_checked():
    with pytest.raises(UserError, match="inject_level"):
        StructuralAnalogy(**{**TINY, "inject_level": 5})
    with pytest.raises(UserError, match="min_size"):
        StructuralAnalogy(img_size=20, min_size=30)


# ------------------------------------------------------------------------------- patch metrics
def _img(seed=0, size=48):
    g = torch.Generator().manual_seed(seed)
    x = F.interpolate(torch.rand(1, 3, size // 8, size // 8, generator=g), size=(size, size), mode="bilinear")
    return (x + 0.1 * torch.rand(1, 3, size, size, generator=g)).clamp(0, 1) * 2 - 1


def test_patch_metrics_are_zero_on_the_image_itself_and_grow_with_a_perturbation():
    x = _img()
    g = torch.Generator().manual_seed(5)
    noise = torch.randn(x.shape, generator=g)
    assert pm.swd_pyramid(x, x)["swd"] == 0
    nn_ = pm.patch_nn(x, x)
    assert nn_["coherence"] == 0 and nn_["completeness"] == 0
    swd, coh, comp = [], [], []
    for s in (0.05, 0.1, 0.2):
        y = (x + s * noise).clamp(-1, 1)
        swd.append(pm.swd_pyramid(y, x)["swd"])
        r = pm.patch_nn(y, x)
        coh.append(r["coherence"]), comp.append(r["completeness"])
    assert 0 < swd[0] < swd[1] < swd[2] and 0 < coh[0] < coh[1] < coh[2] and 0 < comp[0] < comp[1] < comp[2]
    # a colour shift shows (both sets are normalised with the reference's statistics)
    assert pm.swd_pyramid((x + 0.3).clamp(-1, 1), x)["swd"] > pm.swd_pyramid((x + 0.1).clamp(-1, 1), x)["swd"] > 0
    # a rearrangement keeps most patches but not the structure
    rolled = x.roll(x.shape[-1] // 2, dims=-1)
    assert pm.structure_scores(rolled, x)["ssim_lowpass"] < 0.9


def test_structure_scores_are_one_on_the_image_and_fall_as_it_is_replaced():
    a, other = _img(0), _img(1)
    s = pm.structure_scores(a, a)
    assert all(math.isclose(v, 1, abs_tol=1e-6) for v in s.values())
    last = s
    for t in (0.25, 0.5, 0.75):
        cur = pm.structure_scores((1 - t) * a + t * other, a)
        assert all(cur[k] < last[k] for k in cur), (t, cur, last)
        last = cur
    # the size of x does not matter (it is resized to a's)
    assert pm.structure_scores(F.interpolate(a, size=(24, 24), mode="bilinear", antialias=True), a)["corr_lowpass"] > 0.95


def test_laplacian_pyramid_reconstructs_and_sifid_with_a_stand_in_network():
    x = _img(size=64)
    levels = pm.laplacian_pyramid(x, 16)
    assert [lv.shape[-1] for lv in levels] == [64, 32, 16]
    # SIFID's Frechet distance: 1-D Gaussians (mu 0, var 1) vs (mu 2, var 4) -> 4 + 1 + 4 - 2 * 2 = 5
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(200000, 1, generator=g), torch.randn(200000, 1, generator=g) * 2 + 2
    assert abs(pm.frechet_distance(u, v) - 5) < 0.05
    conv = nn.Conv2d(3, 8, 3)
    torch.manual_seed(0)
    feats = lambda im: conv(pm._nchw(im)).detach()  # noqa: E731 - a spatial feature map without weights files
    assert abs(pm.sifid(x, x, feats)) < 1e-6
    y1, y2 = (x + 0.1 * torch.randn(x.shape)).clamp(-1, 1), (x + 0.3 * torch.randn(x.shape)).clamp(-1, 1)
    assert 0 < pm.sifid(y1, x, feats) < pm.sifid(y2, x, feats)


# ------------------------------------------------------------------------------- CLI
CONFIG = "experiments/structural_analogy/cpu.yaml"
TINY_CLI = ["--model.init_args.img_size", "20", "--model.init_args.min_size", "16", "--data.init_args.size", "20",
            "--model.init_args.nfc", "8", "--model.init_args.min_nfc", "8", "--model.init_args.max_nfc", "8",
            "--model.init_args.niter", "2", "--model.init_args.inject_level", "-2", "--data.init_args.steps_per_epoch", "3",
            "--trainer.logger", "false", "--trainer.enable_progress_bar", "false", "--grids.every_n_steps", "0"]


def _cli(tmp_path, *extra):
    from lit_i2i.cli import main

    root = tmp_path / "run"
    assert main(["fit", "--config", CONFIG, "--trainer.default_root_dir", str(root), *TINY_CLI, *extra]) == 0
    state = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["iteration"] == 6 and len(list((root / "grids").glob("final_*.png"))) == 1
    return root


def test_cli_fit_on_two_built_in_photographs_then_translate(tmp_path, cli_env):
    from lit_i2i.cli import main
    from torchvision.io import read_image, write_png

    root = _cli(tmp_path, "--data.init_args.a", "astronaut", "--data.init_args.b", "rocket")
    img = tmp_path / "in.png"
    write_png(torch.randint(0, 255, (3, 30, 40), dtype=torch.uint8), str(img))
    out = tmp_path / "out"
    assert main(["translate", "--ckpt", str(root / "checkpoints" / "last.ckpt"), "--input", str(img),
                 "--output", str(out), "--device", "cpu"]) == 0
    assert read_image(str(out / "in.png")).shape == (3, 20, 20)


def test_cli_fit_on_two_image_files(tmp_path, cli_env):
    from torchvision.io import write_png

    a, b = tmp_path / "a.png", tmp_path / "b.jpg"
    g = torch.Generator().manual_seed(0)
    write_png(torch.randint(0, 255, (3, 37, 29), dtype=torch.uint8, generator=g), str(a))
    from torchvision.io import write_jpeg
    write_jpeg(torch.randint(0, 255, (3, 25, 50), dtype=torch.uint8, generator=g), str(b))
    _cli(tmp_path, "--data.init_args.a", str(a), "--data.init_args.b", str(b))


def test_batch_size_must_be_one(tmp_path, cli_env):
    from lit_i2i.cli import main

    code = main(["fit", "--config", CONFIG, "--trainer.default_root_dir", str(tmp_path / "r"), *TINY_CLI,
                 "--data.init_args.batch_size", "2"])
    assert code == 2


def test_benchmark_smoke(tmp_path, cli_env):
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("sa_benchmark", "experiments/structural_analogy/benchmark.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--out", str(tmp_path / "b"), "--smoke", "--pairs", "chelsea:coffee"]) == 0
    res = json.loads((tmp_path / "b" / "results.json").read_text())
    methods = {r["method"] for r in res["rows"]}
    assert {"SA", "SA_beta0", "CycleGAN", "source", "target", "SA samples", "SA@0"} <= methods
    src = next(r for r in res["rows"] if r["method"] == "source")
    tgt = next(r for r in res["rows"] if r["method"] == "target")
    assert src["ssim_lowpass"] == pytest.approx(1) and tgt["swd"] == 0 and tgt["coherence"] == 0
    assert (tmp_path / "b" / "pictures" / "chelsea_coffee.png").is_file() and (tmp_path / "b" / "table.md").is_file()
