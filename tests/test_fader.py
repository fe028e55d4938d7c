"""Fader networks: official parameter counts, the encoder is the content skeleton's, the attribute
reaches every decoder layer, the lambda ramp, each loss on known inputs, the step order and which
parameters each step moves (with the official train/eval modes), the slider (translate with a value,
the interpolation grid, --mode as a number), exact resume, short CLI runs on the accessory digits and
on a generated CelebA, and the content-transfer benchmark's Fader row (smoke)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from data_factory import make_celeba, make_partition
from helpers import tiny_data, trainer
from lit_i2i.errors import UserError
from lit_i2i.methods.fader import FaderNetworks, ramp
from lit_i2i.methods.press import ContentTransferModule
from lit_i2i.nets import count_params
from lit_i2i.nets.content import ConvEncoder
from lit_i2i.nets.fader import FaderDecoder, encoder_outputs

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[1]
TINY = dict(image_size=32, n_layers=4, init_fm=4, max_fm=16, hid_dim=8, lambda_lat_dis=0.1, lambda_schedule=4,
            grid_n=3)
TINY_CLI = ["--model.init_args.init_fm", "4", "--model.init_args.max_fm", "16", "--model.init_args.hid_dim", "8",
            "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--grids.n_samples", "2"]


def images(n=4, size=32, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def data(**kw):
    return tiny_data(a="no-accessory", b="accessory", train_limit=8, batch_size=2, **kw)


# ------------------------------------------------------------------------------------------ networks
def test_official_parameter_counts_and_the_shared_encoder():
    m = FaderNetworks()  # 256x256, 6 layers, one binary attribute: the official defaults
    assert isinstance(m, ContentTransferModule) and isinstance(m.encoder, ConvEncoder)
    assert count_params(m.encoder) == 6_985_568 and count_params(m.decoder) == 7_014_944
    assert count_params(m.encoder) + count_params(m.decoder) == 14_000_512
    assert count_params(m.disc) == 8_655_362
    assert m.disc.in_shape == (512, 4, 4)
    small = FaderNetworks(image_size=128)  # 6 layers at 128: a 2x2 code, one conv layer in the discriminator
    assert count_params(small.disc) == 4_459_522
    ptc = FaderNetworks(image_size=64, n_layers=4, n_ptc_dis=1, lambda_ptc_dis=1.0)
    assert count_params(ptc.ptc_disc) == 695_137 and list(ptc.build_optimizers()) == ["D", "P", "G"]
    convs = [mod for mod in m.decoder.modules() if isinstance(mod, nn.ConvTranspose2d)]
    assert all(c.bias is None for c in convs) and [c.in_channels for c in convs] == [514, 514, 258, 130, 66, 34]
    layers = list(m.encoder.net)
    assert isinstance(layers[1], nn.LeakyReLU) and isinstance(layers[3], nn.BatchNorm2d)  # no norm on layer 0
    assert sum(isinstance(mod, nn.Dropout) for mod in m.disc.modules()) == 2
    with pytest.raises(ValueError, match="power-of-2"):
        FaderNetworks(image_size=48, n_layers=4)


def test_the_attribute_reaches_every_decoder_layer():
    dec = FaderDecoder(3, 4, 16, 3, 2, n_skip=1)
    seen = []
    for layer in dec.layers:
        layer.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    enc = [torch.rand(2, 3, 16, 16), torch.rand(2, 4, 8, 8), torch.rand(2, 8, 4, 4), torch.rand(2, 16, 2, 2)]
    y = torch.tensor([[0.25, 0.75], [1.0, 0.0]])
    dec(enc, y)
    # deepest first: [code 16, y]; [out 8, y, skip = encoder output 8 (n_skip 1)]; [out 4, y]
    assert [s.shape[1] for s in seen] == [16 + 2, 8 + 2 + 8, 4 + 2]
    for s, at in zip(seen, (16, 8, 4)):
        assert torch.equal(s[:, at:at + 2], y[:, :, None, None].expand(-1, -1, *s.shape[2:]))
    assert torch.equal(seen[0][:, :16], enc[3]) and torch.equal(seen[1][:, 10:], enc[2])


# ------------------------------------------------------------------------------------------ losses
def test_lambda_ramp():
    assert [ramp(1e-4, t, 500000) for t in (0, 250000, 500000, 10 ** 6)] == pytest.approx([0, 5e-5, 1e-4, 1e-4])
    assert ramp(0.3, 7, 0) == 0.3  # schedule 0: constant
    m = FaderNetworks(**TINY)
    m.iteration = 2
    assert m.lambda_lat() == pytest.approx(0.05) and m.lambda_lat(10) == pytest.approx(0.1)


def test_losses_on_known_inputs():
    pl.seed_everything(0)
    m = FaderNetworks(**TINY)
    x, label = m.inputs({"A": images(2, seed=1), "B": images(2, seed=2)})
    assert label.tolist() == [0, 0, 1, 1] and torch.equal(m.one_hot(label)[2], torch.tensor([0.0, 1.0]))
    m.iteration = 1  # lambda(t) = 0.1 * 1 / 4
    terms = m.autoencoder_losses(x, label)
    assert m.encoder.training and not m.disc.training  # the official modes of the autoencoder step
    enc = encoder_outputs(m.encoder, x)  # same modes: BatchNorm batch statistics in E and D, C without dropout
    rec = m.decoder(enc, m.one_hot(label))
    assert torch.allclose(terms["rec"], ((x - rec) ** 2).mean(), atol=1e-6)
    assert torch.allclose(terms["lat_enc"], 0.025 * F.cross_entropy(m.disc(enc[-1]), 1 - label), atol=1e-6)
    torch.manual_seed(3)
    d = m.latent_discriminator_loss(x, label)
    assert m.encoder.training and m.disc.training
    m.encoder.eval()  # the official lat_dis_step: E in eval mode, C in training mode (dropout)
    with torch.no_grad():
        code = encoder_outputs(m.encoder, x)[-1]
    torch.manual_seed(3)
    assert torch.allclose(d, F.cross_entropy(m.disc(code), label), atol=1e-6)
    # the patch discriminator with smoothed labels
    p = FaderNetworks(**{**TINY, "n_ptc_dis": 1, "lambda_ptc_dis": 1.0, "smooth_label": 0.2})
    p.ptc_disc.forward = lambda img: torch.full((len(img),), 0.6)
    bce = lambda q, t: -(t * math.log(q) + (1 - t) * math.log(1 - q))  # noqa: E731
    assert p.patch_discriminator_loss(x).item() == pytest.approx(bce(0.6, 0.8) + bce(0.6, 0.2), rel=1e-5)
    p.iteration = 2
    assert p.autoencoder_losses(x, label)["ptc_enc"].item() == pytest.approx(0.5 * bce(0.6, 0.8), rel=1e-5)


# ------------------------------------------------------------------------------------------ steps
def _weights(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def test_discriminator_step_then_autoencoder_step(tmp_path):
    class Recording(FaderNetworks):
        def on_train_start(self):
            self.snaps = [("start", _weights(self))]

        def step(self, name, loss, clip=None):
            super().step(name, loss, clip)
            self.snaps.append((name, _weights(self)))

    pl.seed_everything(0)
    m = Recording(**TINY)
    t = trainer(tmp_path, max_steps=4, log_every_n_steps=1)
    t.fit(m, data())
    assert [n for n, _ in m.snaps] == ["start", "D", "G", "D", "G"]
    for (_, before), (name, after) in zip(m.snaps, m.snaps[1:]):
        moved = {net: any(not torch.equal(before[k], after[k]) for k in before if k.startswith(net + "."))
                 for net in ("encoder", "decoder", "disc")}
        assert moved == ({"encoder": False, "decoder": False, "disc": True} if name == "D"
                         else {"encoder": True, "decoder": True, "disc": False}), (name, moved)
    for k in ("G", "D", "rec", "lat_enc"):
        assert f"train/loss_{k}" in t.callback_metrics, k
    assert float(t.callback_metrics["train/lambda_lat_dis"]) == pytest.approx(0.1 * 1 / 4)  # second batch: t = 1
    assert m.training and m.disc.training


def _fit(root, epochs, ckpt=None):
    from pytorch_lightning.callbacks import ModelCheckpoint

    pl.seed_everything(2)
    m = FaderNetworks(**TINY)
    cb = ModelCheckpoint(dirpath=root / "ckpt", save_last=True, every_n_epochs=1, save_top_k=-1)
    trainer(root, max_epochs=epochs, enable_checkpointing=True, callbacks=[cb], deterministic=True).fit(
        m, data(), ckpt_path=ckpt)
    return m


def test_resume_is_exact(tmp_path):
    straight = _fit(tmp_path / "a", 2)
    _fit(tmp_path / "b", 1)
    resumed = _fit(tmp_path / "c", 2, ckpt=str(tmp_path / "b" / "ckpt" / "last.ckpt"))
    assert resumed.iteration == straight.iteration == 8
    sa, sb = straight.state_dict(), resumed.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# ------------------------------------------------------------------------------------------ the fader
def test_translate_with_a_value_and_the_slider_grid():
    pl.seed_everything(0)
    m = FaderNetworks(**TINY).eval()
    x = images(3)
    assert torch.equal(m.translate(x, "BtoA"), m.fader(x, 0.0)) and torch.equal(m.translate(x, "AtoB"), m.fader(x, 1.0))
    assert torch.equal(m.translate(x, mode="remove"), m.fader(x, 0.0))
    assert torch.equal(m.translate(x, "AtoB", reference=images(3, seed=5)), m.fader(x, 1.0))  # no reference used
    assert torch.equal(m.translate(x, mode="0.5"), m.fader(x, 0.5))  # lit-i2i translate --mode 0.5
    assert torch.equal(m.translate(x, value=1.5), m.fader(x, 1.5))
    per_image = m.translate(x, value=torch.tensor([0.0, 1.0, 2.0]))
    assert torch.equal(per_image[1], m.fader(x, 1.0)[1])
    assert not torch.equal(m.fader(x, 0.0), m.fader(x, 1.0))
    assert m.grid_values() == pytest.approx([0.0, 0.5, 1.0])
    grid = m.interpolate(x, [0.0, 2.0])
    assert grid.shape == (3, 2, 3, 32, 32) and torch.equal(grid[:, 1], m.fader(x, 2.0))
    vis = m.visuals({"A": images(2, seed=1), "B": images(2, seed=2)})
    assert list(vis) == ["real", "rec", "alpha=0", "alpha=0.5", "alpha=1"]
    assert torch.equal(vis["real"], torch.cat([images(2, seed=1)[:1], images(2, seed=2)[:1]]))
    with pytest.raises(UserError, match="unknown mode"):
        m.translate(x, mode="sideways")
    with pytest.raises(UserError, match="built for 32x32"):
        m.translate(images(1, 16))


# ------------------------------------------------------------------------------------------ CLI
def test_cli_accessory_digits_train_and_translate(tmp_path, cli_env):
    from helpers import cli_fit
    from lit_i2i.cli import main
    from lit_i2i.commands import load_run

    ckpt, state = cli_fit(tmp_path, "experiments/fader/digits_accessory.yaml", "--trainer.max_steps", "4",
                          "--metrics.max_samples", "16", *TINY_CLI)
    assert state["global_step"] == 4 and state["iteration"] == 2
    model, _ = load_run(ckpt)
    assert model.translate(images(2), "BtoA").shape == (2, 3, 32, 32)
    inp = tmp_path / "in"
    from torchvision.io import write_png
    inp.mkdir()
    write_png(torch.zeros(3, 32, 32, dtype=torch.uint8), str(inp / "x.png"))
    assert main(["translate", "--ckpt", str(ckpt), "--input", str(inp), "--output", str(tmp_path / "out"),
                 "--mode", "0.5", "--device", "cpu"]) == 0
    assert (tmp_path / "out" / "x.png").is_file()
    grids = list((tmp_path / "run" / "grids").glob("final_*.png"))
    assert grids
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert any(k.startswith("val/attr_prob_") for k in summary)


@pytest.mark.parametrize("config", ["celeba_glasses", "celeba_facial_hair"])
def test_cli_celeba_configs_on_a_generated_celeba(config, tmp_path, cli_env):
    from helpers import cli_fit

    root = tmp_path / "celeba"
    make_celeba(root, 160, size=(36, 44))  # facial hair's clean-shaven domain is 1 in 32 of random attributes
    make_partition(root, 160)
    _, state = cli_fit(tmp_path, f"experiments/fader/{config}.yaml", "--data.init_args.root", str(root),
                       "--data.init_args.center_crop", "32", "--data.init_args.load_size", "32",
                       "--data.init_args.crop_size", "32", "--data.init_args.batch_size", "2", "--data.init_args.test_size", "1",
                       "--data.init_args.num_workers", "0", "--model.init_args.image_size", "32",
                       "--model.init_args.n_layers", "4", "--trainer.max_steps", "2", "--metrics.metrics", "[]",
                       *TINY_CLI)
    assert state["global_step"] == 2


def test_content_transfer_benchmark_has_the_fader_row(tmp_path, cli_env):
    spec = importlib.util.spec_from_file_location("ct_benchmark", ROOT / "experiments/content_transfer/benchmark.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.METHODS["fader"][1] == "experiments/fader/digits_accessory.yaml"
    assert bench.main(["--out", str(tmp_path), "--methods", "fader", "--max_steps", "2"]) == 0
    res = json.loads((tmp_path / "benchmark.json").read_text())["methods"]["fader"]
    for k in ("removal_p_accessory", "removal_l1_outside", "removal_digit_kept", "fader_slider_p_accessory_1.5"):
        assert 0 <= res[k] <= 1 or k == "removal_l1_outside", k
    header = (tmp_path / "benchmark.md").read_text().splitlines()[2]
    assert header.startswith("| metric | better | Fader networks |")  # methods are the table's columns
