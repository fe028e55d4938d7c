"""MUNIT: official parameter counts (by arithmetic), LayerNorm / AdaIN against hand computations, the
wiring of every loss term, which parameters each optimizer step moves, exact resume across an LR
step, translate (reference-guided and seeded random style), the VGG refusal, LPIPS diversity with an
injected distance (offline), and CLI runs on built-in digits and on a generated folder."""

import math

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from helpers import check_steps, cli_fit, recording, tiny_data, trainer
from torch import nn

from lit_i2i.errors import UserError
from lit_i2i.methods.munit import MUNIT, munit_vgg
from lit_i2i.metrics.diversity import (
    l1_distance,
    lpips_distance,
    lpips_diversity,
    pair_indices,
    pairwise_diversity,
)
from lit_i2i.nets.content_style import (
    AdaIN2d,
    LayerNorm,
    assign_adain_params,
    num_adain_params,
)
from lit_i2i.nets.munit import MUNITGenerator, munit_discriminator

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"dim": 8, "n_res": 1, "mlp_dim": 16, "ndf": 8, "n_layers_D": 3, "num_scales": 2}


def count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ------------------------------------------------------------------------------------- networks
def conv(c_in, c_out, k):  # weight + bias of a k x k conv
    return c_in * c_out * k * k + c_out


def linear(d_in, d_out):
    return d_in * d_out + d_out


def test_parameter_counts_equal_the_official_networks():
    # official defaults (configs/edges2shoes_folder.yaml): gen dim 64, style_dim 8, n_downsample 2, n_res 4,
    # mlp_dim 256; dis dim 64, n_layer 4, num_scales 3; 3-channel images. From networks.py:
    style = conv(3, 64, 7) + conv(64, 128, 4) + conv(128, 256, 4) + 2 * conv(256, 256, 4) + conv(256, 8, 1)
    content = conv(3, 64, 7) + conv(64, 128, 4) + conv(128, 256, 4) + 4 * 2 * conv(256, 256, 3)  # IN: no affine
    decoder = (4 * 2 * conv(256, 256, 3)                      # AdaIN residual blocks (AdaIN holds no parameters)
               + conv(256, 128, 5) + 2 * 128                  # upsample, 5x5 conv, LayerNorm gamma + beta
               + conv(128, 64, 5) + 2 * 64 + conv(64, 3, 7))  # ..., the 7x7 output conv
    adain = 4 * 2 * 2 * 256                                   # 4 blocks x 2 AdaIN layers x (mean, std) x 256
    mlp = linear(8, 256) + linear(256, 256) + linear(256, adain)
    scale = conv(3, 64, 4) + conv(64, 128, 4) + conv(128, 256, 4) + conv(256, 512, 4) + conv(512, 1, 1)
    assert (style, content, decoder, mlp, adain, scale) == (2_764_936, 5_385_856, 5_754_627, 1_120_768, 4_096,
                                                            2_757_057)
    with torch.device("meta"):  # shapes only
        g, d = MUNITGenerator(), munit_discriminator()
        m = MUNIT()
    assert (count(g.enc_style), count(g.cnt_encoder), count(g.decoder), count(g.mlp)) == (style, content, decoder, mlp)
    assert num_adain_params(g.decoder) == adain
    assert count(g) == style + content + decoder + mlp == 15_026_187
    assert count(d) == 3 * scale == 8_271_171
    assert (count(m.gen_a), count(m.gen_b), count(m.dis_a), count(m.dis_b)) == (15_026_187,) * 2 + (8_271_171,) * 2


def test_layer_norm_and_adain_against_hand_computations():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 5)
    ln = LayerNorm(3)
    assert ((ln.gamma >= 0) & (ln.gamma <= 1)).all() and (ln.beta == 0).all()  # U(0, 1), 0
    with torch.no_grad():
        ln.gamma.copy_(torch.tensor([1.0, 2.0, 0.5]))
        ln.beta.copy_(torch.tensor([0.0, -1.0, 3.0]))
    for n in range(2):
        v = x[n].flatten().tolist()
        mean = sum(v) / len(v)
        std = math.sqrt(sum((t - mean) ** 2 for t in v) / (len(v) - 1))  # unbiased, eps added to the std
        for c, (gm, bt) in enumerate([(1.0, 0.0), (2.0, -1.0), (0.5, 3.0)]):
            want = (x[n, c] - mean) / (std + 1e-5) * gm + bt
            assert torch.allclose(ln(x)[n, c], want, atol=1e-5)
    # AdaIN: per sample and channel, (x - mean_hw) / sqrt(var_hw + eps) * std + mean, the first C assigned
    # values being the mean (bias), the next C the std (weight)
    ada = AdaIN2d(3)
    params = torch.tensor([[0.1, 0.2, 0.3, 1.0, 2.0, 3.0], [-1.0, 0.0, 1.0, 0.5, 0.25, 4.0]])
    assign_adain_params(params, nn.Sequential(ada))
    y = ada(x)
    for n in range(2):
        for c in range(3):
            v = x[n, c].flatten().tolist()
            mean = sum(v) / len(v)
            var = sum((t - mean) ** 2 for t in v) / len(v)  # biased, as batch_norm's normalisation
            want = (x[n, c] - mean) / math.sqrt(var + 1e-5) * params[n, 3 + c] + params[n, c]
            assert torch.allclose(y[n, c], want, atol=1e-5)
    # the official layer: batch_norm in training mode on a (1, N*C, H, W) view
    ref = F.batch_norm(x.reshape(1, 6, 4, 5), None, None, params[:, 3:].reshape(-1), params[:, :3].reshape(-1),
                       True, 0.1, 1e-5).reshape(2, 3, 4, 5)
    assert torch.allclose(y, ref, atol=1e-6)


def test_generator_and_discriminator_shapes():
    torch.manual_seed(0)
    g = MUNITGenerator(3, 8, 8, 2, 1, 16)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    c, s = g.codes(x)
    assert c.shape == (2, 32, 8, 8) and s.shape == (2, 8)
    assert torch.allclose(g(x), g.decode(c, s)) and g(x).shape == x.shape and g(x).abs().max() <= 1
    assert not torch.allclose(g(x, torch.randn(2, 8)), g(x))
    assert all(m.weight is None for m in g.modules() if isinstance(m, AdaIN2d))  # no graph kept after decode
    outs = munit_discriminator(3, 8, 3, 3)(x)
    assert [o.shape[-1] for o in outs] == [4, 2, 1]  # 32, 16, 8 px -> 3 stride-2 convs each


# ------------------------------------------------------------------------------------- losses
class ConstD(nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, x):
        return [torch.full((x.shape[0], 1, 2, 2), self.value), torch.full((x.shape[0], 1, 1, 1), self.value)]


def test_forward_wiring_and_every_loss_term():
    torch.manual_seed(0)
    m = MUNIT(**TINY, recon_x_cyc_w=10.0)
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    s_a, s_b = torch.randn(2, 8), torch.randn(2, 8)
    v = m.forward_all(a, b, s_a, s_b)
    ga, gb = m.gen_a, m.gen_b
    x_ba, x_ab = ga.decode(gb.encode(b), s_a), gb.decode(ga.encode(a), s_b)
    assert torch.allclose(v["fake_A"], x_ba) and torch.allclose(v["fake_B"], x_ab)
    assert torch.allclose(v["rec_A"], ga(a)) and torch.allclose(v["rec_B"], gb(b))
    assert torch.allclose(v["s_a_recon"], ga.style(x_ba)) and torch.allclose(v["c_a_recon"], gb.encode(x_ab))
    assert torch.allclose(v["cyc_A"], ga.decode(gb.encode(x_ab), ga.style(a)), atol=1e-6)
    m.dis_a, m.dis_b = ConstD(0.0), ConstD(3.0)
    g = m.generator_losses(v)
    want = {"gan_A": 2 * 1.0, "gan_B": 2 * 4.0,  # LSGAN (d - 1)^2 summed over the two scales
            "recon_x_A": 10 * (v["rec_A"] - a).abs().mean(), "recon_x_B": 10 * (v["rec_B"] - b).abs().mean(),
            "recon_s_A": (v["s_a_recon"] - s_a).abs().mean(), "recon_s_B": (v["s_b_recon"] - s_b).abs().mean(),
            "recon_c_A": (v["c_a_recon"] - v["c_a"]).abs().mean(), "recon_c_B": (v["c_b_recon"] - v["c_b"]).abs().mean(),
            "cyc_A": 10 * (v["cyc_A"] - a).abs().mean(), "cyc_B": 10 * (v["cyc_B"] - b).abs().mean()}
    assert set(g) == set(want)
    for k, w in want.items():
        assert math.isclose(float(g[k].detach()), float(w.detach() if torch.is_tensor(w) else w), rel_tol=1e-5), k
    d = m.discriminator_loss(a, b, a, b)  # real: (d - 1)^2, fake: d^2, per scale
    assert math.isclose(float(d["D_A"]), 2 * (1.0 + 0.0)) and math.isclose(float(d["D_B"]), 2 * (4.0 + 9.0))
    assert set(MUNIT(**TINY).generator_losses(MUNIT(**TINY).forward_all(a, b, s_a, s_b))) == set(want) - {"cyc_A", "cyc_B"}


def test_vgg_loss_is_instance_normed_mse_and_missing_weights_are_refused(tmp_path):
    m = MUNIT(**TINY, vgg_w=1.0, vgg_weights=str(tmp_path / "missing.pth"))
    with pytest.raises(UserError, match="vgg_w > 0 needs VGG16 weights.*file not found"):
        m.setup("fit")
    torch.manual_seed(0)
    feat = nn.Conv2d(3, 4, 3)

    class Features(nn.Module):  # an injected stand-in for the VGG features
        def forward(self, x):
            return {"relu5_3": feat(x)}
    m._frozen["vgg"] = Features()
    assert not any(k.startswith("_frozen") for k in m.state_dict())
    x, y = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    f, t = feat(x), feat(y)
    norm = lambda z: (z - z.mean((2, 3), keepdim=True)) / (z.var((2, 3), unbiased=False, keepdim=True) + 1e-5).sqrt()
    assert torch.allclose(m.vgg_loss(x, y), ((norm(f) - norm(t)) ** 2).mean(), atol=1e-6)
    vgg = munit_vgg("random")  # the official Vgg16: 13 convs, no pool4, relu5_3 at 1/8 of the input
    assert "pool4" not in vgg.names and sum(isinstance(x, nn.Conv2d) for x in vgg.features) == 13
    assert vgg(torch.zeros(1, 3, 32, 32))["relu5_3"].shape == (1, 512, 4, 4)


def test_init_kaiming_generators_gaussian_discriminators_zero_biases():
    torch.manual_seed(0)
    m = MUNIT(dim=16, n_res=1, mlp_dim=32, ndf=16, n_layers_D=3)
    w = m.dis_a.nets[0][2].weight  # 16 -> 32, 4x4
    assert abs(float(w.detach().std()) - 0.02) < 0.002
    w = m.gen_a.cnt_encoder.model[1].conv.weight  # 16 -> 32, 4x4: Kaiming fan-in std sqrt(2 / (16 * 16))
    assert abs(float(w.detach().std()) - math.sqrt(2 / 256)) < 0.01
    convs = [x for x in m.modules() if isinstance(x, (nn.Conv2d, nn.Linear))]
    assert all(float(x.bias.abs().max()) == 0 for x in convs)


# ------------------------------------------------------------------------------------- steps and resume
def test_d_step_then_g_step_touch_only_their_nets(tmp_path):
    pl.seed_everything(0)
    m = recording(MUNIT)(**TINY)
    trainer(tmp_path, max_steps=4).fit(m, tiny_data(train_limit=8))
    assert check_steps(m, ["gen_a", "gen_b"], ["dis_a", "dis_b"]) == ["start", "D", "G", "D", "G"]


def _fit(root, epochs, ckpt=None):
    from pytorch_lightning.callbacks import ModelCheckpoint

    pl.seed_everything(3)
    model = MUNIT(**TINY, recon_x_cyc_w=1.0, lr_step_size=3)  # the LR halves after iteration 3
    cb = ModelCheckpoint(dirpath=root / "ckpt", save_last=True, every_n_epochs=1, save_top_k=-1)
    t = trainer(root, max_epochs=epochs, enable_checkpointing=True, callbacks=[cb], deterministic=True)
    t.fit(model, tiny_data(train_limit=8), ckpt_path=ckpt)  # 2 iterations per epoch
    return model, t


def test_resume_is_exact_across_an_lr_step(tmp_path):
    straight, t1 = _fit(tmp_path / "a", epochs=2)
    _fit(tmp_path / "b", epochs=1)
    resumed, t2 = _fit(tmp_path / "c", epochs=2, ckpt=str(tmp_path / "b" / "ckpt" / "last.ckpt"))
    assert straight.iteration == resumed.iteration == 4
    sa, sb = straight.state_dict(), resumed.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    for o1, o2 in zip(t1.optimizers, t2.optimizers):
        assert o1.param_groups[0]["lr"] == o2.param_groups[0]["lr"] == 0.5e-4
        for p1, p2 in zip(o1.state.values(), o2.state.values()):
            assert torch.equal(p1["exp_avg"], p2["exp_avg"])


# ------------------------------------------------------------------------------------- translate
def test_translate_reference_and_seeded_random_style():
    torch.manual_seed(0)
    m = MUNIT(**TINY)
    x, ref = torch.rand(3, 3, 32, 32) * 2 - 1, torch.rand(3, 3, 32, 32) * 2 - 1
    # reference-guided: the target domain's style encoder on the reference, one for all or one per input
    assert torch.allclose(m.translate(x, "AtoB", reference=ref[:1]),
                          m.gen_b.decode(m.gen_a.encode(x), m.gen_b.style(ref[:1]).expand(3, -1)))
    assert torch.allclose(m.translate(x, "BtoA", reference=ref), m.gen_a.decode(m.gen_b.encode(x), m.gen_a.style(ref)))
    # random style: N(0, I) from a CPU generator seeded with `seed`
    s = torch.randn(3, 8, generator=torch.Generator().manual_seed(7))
    assert torch.allclose(m.translate(x, "AtoB", seed=7), m.gen_b.decode(m.gen_a.encode(x), s))
    assert torch.equal(m.translate(x, "AtoB", mode="random:7"), m.translate(x, "AtoB", seed=7))
    assert torch.equal(m.translate(x), m.translate(x, "AtoB", mode="random", seed=0))  # the metrics' default
    assert not torch.allclose(m.translate(x, seed=0), m.translate(x, seed=1))
    assert not torch.allclose(m.translate(x, seed=None), m.translate(x, seed=None))
    for kw in ({"mode": "reference"}, {"mode": "cluster:1"}, {"mode": "random:x"}, {"reference": ref[:2]}):
        with pytest.raises(UserError):
            m.translate(x, **kw)
    with pytest.raises(ValueError):
        m.translate(x, "AtoC")
    vis = m.visuals({"A": x, "B": ref})
    assert list(vis) == ["real_A", "rec_A", "AtoB s0", "AtoB s1", "AtoB s2", "AtoB ref",
                         "real_B", "rec_B", "BtoA s0", "BtoA s1", "BtoA s2", "BtoA ref"]
    assert torch.equal(vis["AtoB s1"], m.translate(x, seed=1)) and torch.equal(vis["BtoA ref"], m.translate(ref, "BtoA", reference=x))


# ------------------------------------------------------------------------------------- diversity
def test_lpips_diversity_with_an_injected_network_offline(tmp_path, monkeypatch):
    torch.manual_seed(0)
    m = MUNIT(**TINY)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    feats = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())  # a small stand-in for LPIPS's network

    def distance(u, v):
        return (feats(u) - feats(v)).pow(2).mean((1, 2, 3))

    r = lpips_diversity(m, x, "AtoB", k=4, seed=5, distance=distance)
    outs = [m.translate(x, "AtoB", seed=5 + i) for i in range(4)]
    want = torch.stack([distance(outs[i], outs[j]) for i in range(4) for j in range(i + 1, 4)]).mean(0)
    assert torch.allclose(r["per_input"], want) and r["k"] == 4 and math.isclose(r["diversity"], float(want.mean()),
                                                                                 rel_tol=1e-6)
    assert r["diversity"] > 0 and r["distance"] == "distance"
    assert pair_indices(4) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert pair_indices(38, "disjoint")[-1] == (36, 37) and len(pair_indices(38, "disjoint")) == 19  # MUNIT's 19 pairs
    same = torch.stack([outs[0]] * 3)
    assert float(pairwise_diversity(same, l1_distance).abs().max()) == 0
    with pytest.raises(UserError):
        lpips_diversity(m, x, k=1, distance=distance)
    # no AlexNet weights and no download: a clear refusal, never random weights
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(UserError, match="LPIPS diversity needs AlexNet weights.*alexnet"):
        lpips_distance(download=False)


# ------------------------------------------------------------------------------------- CLI
TINY_CLI = ["--model.init_args.dim", "8", "--model.init_args.ndf", "8", "--model.init_args.mlp_dim", "16",
            "--model.init_args.n_res", "1", "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
            "--metrics.metrics", "[]", "--trainer.max_steps", "4", "--data.init_args.num_workers", "0"]


def test_cli_digits_config_trains_and_translates(tmp_path, cli_env):
    from lit_i2i.commands import load_run

    ckpt, state = cli_fit(tmp_path, "experiments/munit/digits.yaml", *TINY_CLI, "--data.init_args.train_limit", "16")
    assert state["global_step"] == 4 and state["iteration"] == 2  # D step + G step per iteration
    assert state["lit_i2i_config"]["model"]["class_path"] == "lit_i2i.methods.munit.MUNIT"
    assert list((tmp_path / "run" / "grids").glob("final_*.png"))
    model, _ = load_run(ckpt)
    assert model.hparams.n_layers_D == 3 and model.hparams.recon_x_w == 10.0
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert model.translate(x, "BtoA", reference=x[:1]).shape == x.shape
    assert torch.equal(model.translate(x, seed=3), model.translate(x, seed=3))
    # the built-in benchmark's measures on that checkpoint (offline: no AlexNet weights, so L1 diversity)
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("munit_benchmark", "experiments/munit/benchmark.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--ckpt", str(ckpt), "--k", "2", "--out", str(tmp_path / "b.json")]) == 0
    res = json.loads((tmp_path / "b.json").read_text())
    assert set(res) == {"AtoB", "BtoA"} and all(0 <= r["digit_ref"] <= 1 and r["diversity"] > 0 for r in res.values())
    # where the digit is lost (experiments/where_content_is_lost.py): per direction, shares in [0, 1]
    from experiments.where_content_is_lost import main as diagnose

    assert diagnose(["--ckpt", str(ckpt), "--out", str(tmp_path / "d.json")]) == 0
    rows = next(iter(json.loads((tmp_path / "d.json").read_text()).values()))["rows"]
    assert set(rows) == {"AtoB", "BtoA"}
    assert all(set(r) == {"recon", "swap", "cross", "align", "align_own"} and all(0 <= v <= 1 for v in r.values())
               for r in rows.values())


def test_cli_summer2winter_config_on_a_generated_folder(tmp_path, cli_env):
    from data_factory import make_unpaired

    root = make_unpaired(tmp_path / "data", 3, 3, size=(36, 36))
    _, state = cli_fit(tmp_path, "experiments/munit/summer2winter.yaml", *TINY_CLI, "--data.init_args.root", str(root),
                       "--data.init_args.load_size", "36", "--data.init_args.crop_size", "32",
                       "--model.init_args.n_layers_D", "3")
    assert state["global_step"] == 4
    h = state["hyper_parameters"]
    assert h["recon_x_cyc_w"] == 10.0 and h["lr_step_size"] == 100_000 and h["lr_gamma"] == 0.5
