"""FUNIT: official parameter counts (computed from the official layer definitions), the discriminator's
official function (in-place LeakyReLU), K-shot averaging, R1 on a known D, which parameters each
step moves, the EMA, the device-sum loss scale, exact resume, translate, and a CLI run on built-in data."""

import json
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from helpers import check_steps, cli_fit, params, recording, trainer  # noqa: E402

from datamodules.builtin_multidomain import BuiltinMultiDomain  # noqa: E402
from lit_i2i.errors import UserError  # noqa: E402
from lit_i2i.methods.funit import FUNIT  # noqa: E402
from lit_i2i.nets.content_style import num_adain_params  # noqa: E402
from lit_i2i.nets.funit import FewShotGenerator, GPPatchMcResDis, PreActResBlock  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(num_classes=10, nf=8, nf_mlp=16, latent_dim=8, n_downs_content=2, n_downs_class=3, n_res_blks=1,
            dis_nf=8, dis_n_res_blks=4)


def tiny_data(**kw) -> BuiltinMultiDomain:
    return BuiltinMultiDomain(**{"labelled": True, "second_view": False, "train_limit": 16, "batch_size": 8,
                                 "eval_batch_size": 8, **kw})


def count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ------------------------------------------------------------------------------------- networks
def conv(k, cin, cout, bias=True):  # a k x k convolution's weights and biases
    return k * k * cin * cout + (cout if bias else 0)


def res_blk(fin, fout):  # official ActFirstResBlock: two 3x3 convs (hidden min(fin, fout)), 1x1 bias-free shortcut
    h = min(fin, fout)
    return conv(3, fin, h) + conv(3, h, fout) + (conv(1, fin, fout, bias=False) if fin != fout else 0)


def test_parameter_counts_equal_the_official_networks():
    # configs/funit_animals.yaml: gen nf 64, n_res_blks 2, nf_mlp 256, latent_dim 64, n_mlp_blks 3,
    # n_downs_content 3, n_downs_class 4; dis nf 64, n_res_blks 10, num_classes 119 (networks.py layers)
    content = (conv(7, 3, 64) + conv(4, 64, 128) + conv(4, 128, 256) + conv(4, 256, 512)  # 9,472 + 131,200 + ...
               + 2 * 2 * conv(3, 512, 512))  # 2 ResBlocks x 2 convs of 2,359,808
    decoder = (2 * 2 * conv(3, 512, 512) + conv(5, 512, 256) + conv(5, 256, 128) + conv(5, 128, 64)
               + conv(7, 64, 3))  # AdaIN / InstanceNorm have no parameters
    n_adain = 2 * 2 * 2 * 512  # 2 ResBlocks x 2 AdaIN layers x (mean, std) x 512 channels
    mlp = (64 * 256 + 256) + (256 * 256 + 256) + (256 * n_adain + n_adain)
    klass = conv(7, 3, 64) + conv(4, 64, 128) + conv(4, 128, 256) + 2 * conv(4, 256, 256) + conv(1, 256, 64)
    assert (content, decoder, mlp, klass, n_adain) == (12_202_112, 13_749_891, 1_135_104, 2_779_328, 4_096)
    widths = [(64, 128), (128, 256), (256, 512), (512, 1024), (1024, 1024)]  # 5 stages of 2 blocks
    dis = conv(7, 3, 64) + sum(res_blk(f, f) + res_blk(f, g) for f, g in widths) + conv(1, 1024, 119)
    assert (content + decoder + mlp + klass, dis) == (29_866_435, 54_252_599)
    with torch.device("meta"):  # shapes only
        m = FUNIT()
        assert (count(m.G.cnt_encoder), count(m.G.decoder), count(m.G.mlp), count(m.G.enc_class_model)) == (
            content, decoder, mlp, klass)
        assert num_adain_params(m.G.decoder) == n_adain
        assert (count(m.G), count(m.D), count(m.G_ema)) == (29_866_435, 54_252_599, 29_866_435)


def test_generator_reuses_the_shared_blocks_at_funit_settings():
    g = FewShotGenerator(nf=8, nf_mlp=16, latent_dim=8, n_downs_content=2, n_downs_class=3, n_res_blks=1)
    assert all(b.res_scale == 1.0 for b in g.modules() if hasattr(b, "res_scale"))  # FUNIT: x + res (TUNIT 0.1)
    kinds = [type(m).__name__ for m in g.decoder.modules()]
    assert kinds.count("AdaIN2d") == 2 and kinds.count("InstanceNorm2d") == 2  # AdaIN only in the residual blocks
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    assert g.encode(x).shape == (3, 32, 8, 8)
    assert g.enc_class_model(x).shape == (3, 8)  # MUNIT's StyleEncoder (flattened codes)
    assert g(x, x).shape == x.shape


def test_discriminator_is_the_official_function_with_its_in_place_activation():
    torch.manual_seed(0)
    blk = PreActResBlock(4, 4)
    x = torch.randn(2, 4, 6, 6)
    res = blk.conv_1(blk.conv_0(x))
    assert torch.allclose(blk(x), F.leaky_relu(x, 0.2) + res)  # the official identity shortcut carries lrelu(x)
    blk.official_inplace = False
    assert torch.allclose(blk(x), x + res)
    d = GPPatchMcResDis(3, 8, 4, num_classes=5)
    x, y = torch.randn(3, 3, 32, 32), torch.tensor([4, 0, 2])
    out, feat = d(x, y)
    pre = d.cnn_f(x)
    assert out.shape == (3, 16, 16) and feat.shape == (3, 32, 16, 16)  # widths 8 -> 16 -> 32, one pool
    assert torch.allclose(feat, F.leaky_relu(pre, 0.2))  # the head's in-place LeakyReLU: features after it
    assert torch.allclose(out, d.cnn_c(feat)[torch.arange(3), y])  # the map of each image's class


def test_k_shot_class_code_is_the_mean_of_the_references_codes():
    torch.manual_seed(0)
    m = FUNIT(**TINY).eval()
    x, refs = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(6, 3, 32, 32) * 2 - 1
    codes = m.G_ema.enc_class_model(refs).flatten(1)
    g = m.G_ema
    # K = 3 per source: source i takes references 3i ... 3i + 2
    per_source = codes.reshape(2, 3, -1).mean(1)
    assert torch.allclose(m.G_ema.class_code(refs, 3), per_source)
    assert torch.allclose(m.translate(x, reference=refs, k_shot=3), g.decode(g.encode(x), per_source), atol=1e-6)
    # K = 6 for every source: one code
    shared = codes.mean(0, keepdim=True).expand(2, -1)
    assert torch.allclose(m.translate(x, reference=refs, k_shot=6), g.decode(g.encode(x), shared), atol=1e-6)
    # no k_shot: one reference for all, or one per source
    assert torch.allclose(m.translate(x, reference=refs[:1]), g.decode(g.encode(x), codes[:1].expand(2, -1)), atol=1e-6)
    assert torch.allclose(m.translate(x, reference=refs[:2]), g.decode(g.encode(x), codes[:2]), atol=1e-6)
    assert torch.equal(m.translate(x, reference=refs, k_shot=3), m.translate(x, reference=refs, k_shot=3))
    with pytest.raises(UserError, match="k_shot"):
        m.translate(x, reference=refs)
    with pytest.raises(UserError, match="give 4 or 8"):
        m.translate(x, reference=refs, k_shot=4)
    with pytest.raises(UserError, match="class images"):
        m.translate(x)


# ------------------------------------------------------------------------------------- losses
def test_r1_is_the_official_gradient_of_the_mean_output():
    # D(x)[n, h, w] = 3 sum_c x[n, c, h, w]: d mean(D) / d x = 3 / (N H W) everywhere, so
    # sum ||grad||^2 / N = N C H W (3 / (N H W))^2 / N = 9 C / (N^2 H W)
    n, c, h, w = 2, 3, 4, 4
    x = torch.randn(n, c, h, w, requires_grad=True)
    a = torch.nn.Parameter(torch.tensor(3.0))  # D's one weight
    r1 = FUNIT.r1(a * x.sum(1), x)
    assert float(r1.detach()) == pytest.approx(9 * c / (n * n * h * w))  # 0.421875
    (grad_a,) = torch.autograd.grad(r1, a)  # it trains D (create_graph): d/da a^2 C / (N^2 H W)
    assert float(grad_a) == pytest.approx(2 * 3 * c / (n * n * h * w))


def test_losses_are_scaled_by_the_world_size_to_sum_device_gradients(monkeypatch):
    torch.manual_seed(0)
    m = FUNIT(**TINY)
    seen = []
    m.step = lambda name, loss: seen.append((name, float(loss.detach())))
    m.log_losses = lambda losses, **kw: seen.append(("log", {k: float(v) for k, v in losses.items()}))
    batch = {"image": torch.rand(4, 3, 32, 32) * 2 - 1, "label": torch.tensor([0, 1, 2, 3])}
    m.training_step(batch, 0)
    (_, d1), (_, g1), (_, logged) = seen
    assert d1 == pytest.approx(logged["D_real"] + logged["D_fake"] + 10 * logged["r1"], rel=1e-5)
    assert g1 == pytest.approx(logged["adv"] + 0.1 * logged["rec"] + logged["fm_c"] + logged["fm_m"], rel=1e-5)
    monkeypatch.setattr("lit_i2i.methods.funit.dist_world", lambda: 8)
    seen.clear()
    m.training_step(batch, 0)
    (_, d8), (_, g8), (_, logged) = seen
    assert d8 == pytest.approx(8 * (logged["D_real"] + logged["D_fake"] + 10 * logged["r1"]), rel=1e-5)
    assert g8 == pytest.approx(8 * logged["G"], rel=1e-5)
    with pytest.raises(UserError, match="labelled true"):
        m.pairs({"image": batch["image"], "label": torch.tensor([0, -1, 2, 3])})


# ------------------------------------------------------------------------------------- steps, EMA
G_PARTS = ("G.cnt_encoder.", "G.decoder.", "G.mlp.", "G.enc_class_model.")


def test_each_step_moves_only_its_own_net_and_the_ema_follows_g(tmp_path):
    pl.seed_everything(0)
    m = recording(FUNIT)(**TINY)
    g0 = params(m.G)
    trainer(tmp_path, max_steps=2 * 2).fit(m, tiny_data())
    assert check_steps(m, G_PARTS, ("D.",)) == ["start", "D", "G", "D", "G"]  # dis_update, then gen_update
    assert m.iteration == 2
    # G_ema = 0.999 (0.999 G_0 + 0.001 G_1) + 0.001 G_2, G_k the weights after the k-th G step
    g1 = {k[2:]: v for k, v in m.snaps[2][1].items() if k.startswith("G.")}
    g2 = params(m.G)
    for k, v in m.G_ema.state_dict().items():
        assert torch.allclose(v, 0.999 * (0.999 * g0[k] + 0.001 * g1[k]) + 0.001 * g2[k], atol=1e-6), k
    assert m.build_optimizers()["G"].defaults["weight_decay"] == 1e-4


# ------------------------------------------------------------------------------------- resume
def _fit(root, epochs, ckpt=None):
    from pytorch_lightning.callbacks import ModelCheckpoint

    pl.seed_everything(1)
    model = FUNIT(**TINY)
    cb = ModelCheckpoint(dirpath=root / "ckpt", save_last=True, every_n_epochs=1, save_top_k=-1)
    t = trainer(root, max_epochs=epochs, enable_checkpointing=True, callbacks=[cb], deterministic=True)
    t.fit(model, tiny_data(), ckpt_path=ckpt)
    return model, t


def test_resume_is_exact(tmp_path):
    straight, t1 = _fit(tmp_path / "a", epochs=2)  # 16 images, batches of 8 = 4 pairs: 2 iterations per epoch
    _fit(tmp_path / "b", epochs=1)
    resumed, t2 = _fit(tmp_path / "c", epochs=2, ckpt=str(tmp_path / "b" / "ckpt" / "last.ckpt"))
    sa, sb = straight.state_dict(), resumed.state_dict()
    assert sa.keys() == sb.keys() and straight.iteration == resumed.iteration == 4
    assert any(k.startswith("G_ema.") for k in sa)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k  # G, G_ema, D
    for oa, ob in zip(t1.optimizers, t2.optimizers):
        for a, b in zip(oa.state.values(), ob.state.values()):
            assert all(torch.equal(a[k], b[k]) for k in a if torch.is_tensor(a[k])) and a["step"] == b["step"]


# ------------------------------------------------------------------------------------- CLI
CLI_TINY = ["--model.init_args.nf", "8", "--model.init_args.nf_mlp", "16", "--model.init_args.latent_dim", "8",
            "--model.init_args.n_res_blks", "1", "--model.init_args.dis_nf", "8",
            "--model.init_args.dis_n_res_blks", "4", "--trainer.max_steps", "4", "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false", "--data.init_args.batch_size", "4",
            "--data.init_args.num_workers", "0"]


def test_cli_on_built_in_digits(tmp_path, cli_env):
    ckpt, state = cli_fit(tmp_path, "experiments/funit/digits.yaml", *CLI_TINY, "--data.init_args.train_limit", "16",
                          "--metrics.max_samples", "8", "--metrics.directions", "[0to5]")
    assert state["iteration"] == 2 and state["global_step"] == 4  # a D and a G step per iteration
    assert state["lit_i2i_config"]["model"]["class_path"] == "lit_i2i.methods.funit.FUNIT"
    assert list((tmp_path / "run" / "grids").glob("final_*.png"))
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {"val/acc_0to5", "val/mfid_digits_0to5"} <= set(summary)  # reference-guided metrics at the end of fit
    from lit_i2i.commands import load_run

    model, _ = load_run(ckpt)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    y = model.translate(x, "AtoB", reference=x[:1])
    assert y.shape == x.shape and torch.equal(y, model.translate(x, reference=x[:1]))  # deterministic
    vis = model.visuals({"image": x})
    assert list(vis) == ["content", "class", "output (ema)", "rec. (ema)", "output (G)", "rec. (G)"]
    assert torch.equal(vis["class"][0], x[1])
    assert torch.equal(vis["output (ema)"], model.translate(x, reference=x.roll(-1, 0)))


def test_animal_faces_layout_and_config_on_a_generated_folder(tmp_path, cli_env):
    import importlib.util

    from data_factory import make_folder

    spec = importlib.util.spec_from_file_location("funit_prepare", HERE.parent / "experiments/funit/prepare_data.py")
    prep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prep)
    src = tmp_path / "animals"
    for i, name in enumerate(["n02085620", "n02085782", "n02086240"]):  # the last is one of the 30 test classes
        make_folder(src / name, 6, (40, 36), seed=i)
    dst = tmp_path / "funit_animal_faces"
    assert prep.animal_faces(src, dst, n_view=2) == {"train_classes": 2, "unseen_classes": 1, "train_images": 12}
    assert sorted(p.name for p in (dst / "train").iterdir()) == ["n02085620", "n02085782"]
    assert len(list((dst / "test" / "n02085620").iterdir())) == 2
    assert len(list((dst / "unseen" / "n02086240").iterdir())) == 6
    _, state = cli_fit(tmp_path, "experiments/funit/animal_faces.yaml", *CLI_TINY, "--data.init_args.root", str(dst),
                       "--model.init_args.num_classes", "2", "--data.init_args.load_size", "36",
                       "--data.init_args.crop_size", "32", "--trainer.accelerator", "cpu", "--trainer.devices", "1",
                       "--trainer.strategy", "auto")
    assert state["iteration"] == 2 and state["hyper_parameters"]["num_classes"] == 2
