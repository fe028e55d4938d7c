"""Press et al., DIDD and MBU: the shared skeleton's widths, the zero codes, what the latent
discriminator sees, gradient clipping, MBU's mask and composite, the translate modes, each loss on
known inputs, the step order, 20-step CLI runs of the digits configs (with ``translate --mode``) and
a few steps of every CelebA config on a generated CelebA."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import yaml
from torch import nn

from data_factory import make_celeba, make_partition
from helpers import tiny_data, trainer
from lit_i2i.cli import main
from lit_i2i.errors import UserError
from lit_i2i.methods.didd import DIDD
from lit_i2i.methods.mbu import MBU
from lit_i2i.methods.press import PressEtAl
from lit_i2i.nets.content import (LatentDiscriminator, MaskDecoder, SeparateCodeBank, common_channels,
                                  composite, decoder_channels, separate_channels)

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(image_size=32, depth=4, ngf=4, dim=16, sep=2, disc_hidden=8)
METHODS = [PressEtAl, DIDD, MBU]
TINY_CLI = ["--model.init_args.ngf", "4", "--model.init_args.dim", "16", "--model.init_args.sep", "2",
            "--model.init_args.disc_hidden", "8", "--trainer.logger", "false", "--trainer.enable_progress_bar",
            "false", "--trainer.enable_model_summary", "false", "--grids.n_samples", "2"]
CELEBA_CONFIGS = sorted(str(p.relative_to(ROOT)) for d in ("press", "didd", "mbu")
                        for p in (ROOT / "experiments" / d).glob("celeba_*.yaml"))
DIGITS_CONFIGS = [f"experiments/{d}/digits_accessory.yaml" for d in ("press", "didd", "mbu")]


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.chdir(ROOT)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny nets: one thread is faster, and far faster on a busy shared CPU
    yield
    torch.set_num_threads(threads)


def metrics_off() -> list[str]:
    try:
        from lit_i2i.metrics import TranslationMetrics  # noqa: F401
    except ImportError:
        return []
    return ["--metrics.metrics", "[]"]


def images(n: int = 4, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


class Const(nn.Module):
    """A stub net returning a constant (or a tuple of constants) shaped from its input."""

    def __init__(self, *values_and_channels):
        super().__init__()
        self.spec = values_and_channels
        self.w = nn.Parameter(torch.zeros(()))  # so optimizers and toggling have something to hold

    def forward(self, x):
        outs = []
        for value, channels, size in self.spec:
            outs.append(torch.full((x.shape[0], channels, size, size), float(value)) + 0 * self.w)
        return outs[0] if len(outs) == 1 else tuple(outs)


# ---------------------------------------------------------------------------------------- architecture
def test_widths_are_the_official_ones_at_128():
    assert common_channels() == [32, 64, 128, 256, 487, 487]                 # Press / MBU e1: 1948 dims
    assert common_channels(n_separate=2) == [32, 64, 128, 256, 487, 462]     # DIDD E^c: 1848 dims
    assert separate_channels() == [32, 64, 128, 128, 128, 25]                # Press / MBU e2: 100 dims
    assert separate_channels(max_ch=512) == [32, 64, 128, 256, 512, 25]     # DIDD E^s
    assert decoder_channels() == [512, 256, 128, 64, 32]
    press, didd = PressEtAl(), DIDD()
    x = images(1, 128)
    assert press.e1(x).shape == (1, 487, 2, 2) and press.e2(x).shape == (1, 25, 2, 2)
    assert press.disc.in_features == 1948 and didd.disc.in_features == 1848
    assert didd.e_common(x).shape == (1, 462, 2, 2) and didd.e_sep_B(x).shape == (1, 25, 2, 2)
    assert press.decoder(torch.zeros(1, 512, 2, 2)).shape == (1, 3, 128, 128)
    assert didd.decoder.in_channels == 462 + 25 + 25


def _convs(net):
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


def test_e2_capacity_norms_and_spectral_norm():
    press, didd, mbu = PressEtAl(**TINY), DIDD(**TINY), MBU(**TINY)
    x = images(2)
    for m in (press, mbu):  # the small separate encoder: sep output channels, widths capped at e2_max_channels
        assert m.e2(x).shape == (2, TINY["sep"], 2, 2)
        assert max(c.out_channels for c in _convs(m.e2)) <= m.hparams.e2_max_channels
    big = PressEtAl(image_size=32, depth=4, ngf=32, dim=128, sep=8, e2_max_channels=32)
    assert [c.out_channels for c in _convs(big.e2)] == [32, 32, 32, 8]
    assert sum(p.numel() for p in big.e2.parameters()) < sum(p.numel() for p in big.e1.parameters()) / 5
    assert didd.e_sep_A(x).shape == didd.e_sep_B(x).shape == (2, TINY["sep"], 2, 2)
    # IN (Press, DIDD) vs BN (MBU); MBU's decoders use LeakyReLU
    assert any(isinstance(m, nn.InstanceNorm2d) for m in press.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in list(press.modules()) + list(didd.modules()))
    assert any(isinstance(m, nn.BatchNorm2d) for m in mbu.d_b.modules())
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in mbu.modules())
    assert any(isinstance(m, nn.LeakyReLU) for m in mbu.d_a.modules())
    assert not any(isinstance(m, nn.LeakyReLU) for m in press.decoder.modules())
    # spectral norm: every DIDD conv but the decoder's output layer; none in Press / MBU
    sn = lambda c: hasattr(c, "parametrizations") and "weight" in c.parametrizations  # noqa: E731
    dconvs = _convs(didd.decoder)
    assert all(sn(c) for c in _convs(didd.e_common) + _convs(didd.e_sep_A) + dconvs[:-1]) and not sn(dconvs[-1])
    assert not any(sn(c) for c in _convs(press) + _convs(mbu))
    # DIDD's common encoder has no norm after its second conv (as the official code)
    layers = list(didd.e_common.net)
    second = [i for i, l in enumerate(layers) if isinstance(l, nn.Conv2d)][1]
    assert isinstance(layers[second + 1], nn.LeakyReLU)
    assert len([m for m in didd.e_common.modules() if isinstance(m, nn.InstanceNorm2d)]) == TINY["depth"] - 1
    with pytest.raises(ValueError, match="multiple of"):
        PressEtAl(image_size=40, depth=4)


def test_code_bank_is_fifo_and_checkpointed():
    bank = SeparateCodeBank(3, (1, 1, 1))
    assert torch.equal(bank.sample(2), torch.zeros(2, 1, 1, 1))
    bank.push(torch.arange(2.0).view(2, 1, 1, 1))
    assert bank.sample(3).flatten().tolist() == [0.0, 1.0, 0.0]
    bank.push(torch.arange(2.0, 4.0).view(2, 1, 1, 1))
    assert sorted(bank.codes.flatten().tolist()) == [1.0, 2.0, 3.0] and int(bank.filled) == 3
    assert {"codes", "filled", "ptr"} <= set(bank.state_dict())


# ---------------------------------------------------------------------------------------- codes
def _decoder_inputs(net):
    seen = []
    net.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    return seen


def test_press_zero_code_is_exactly_zero():
    m = PressEtAl(**TINY)
    seen = _decoder_inputs(m.decoder)
    a, b = images(3, seed=1), images(3, seed=2)
    m.ae_losses(a, b)
    code_b, code_a = seen  # [e1(b), e2(b)] then [e1(a), 0]
    sep = TINY["sep"]
    assert torch.equal(code_a[:, -sep:], torch.zeros_like(code_a[:, -sep:]))
    assert torch.equal(code_a[:, :-sep], m.e1(a)) and torch.equal(code_b[:, -sep:], m.e2(b))
    assert code_b[:, -sep:].abs().sum() > 0
    seen.clear()
    m.translate(b, "BtoA")  # removal: [e1(b), 0]
    assert torch.equal(seen[0][:, -sep:], torch.zeros_like(seen[0][:, -sep:]))


def test_didd_zero_codes_are_exactly_zero():
    m = DIDD(**TINY).eval()  # eval: spectral norm does not move between the calls compared below
    seen = _decoder_inputs(m.decoder)
    a, b = images(3, seed=1), images(3, seed=2)
    m.ae_losses(a, b)
    code_a, code_b = seen
    c, s = TINY["dim"] - 2 * TINY["sep"], TINY["sep"]
    assert torch.equal(code_a[:, c + s:], torch.zeros_like(code_a[:, c + s:]))        # [E^c(a), E^s_A(a), 0]
    assert torch.equal(code_a[:, c:c + s], m.e_sep_A(a))
    assert torch.equal(code_b[:, c:c + s], torch.zeros_like(code_b[:, c:c + s]))      # [E^c(b), 0, E^s_B(b)]
    assert torch.equal(code_b[:, c + s:], m.e_sep_B(b))
    seen.clear()
    m.translate(b, mode="intersection")
    assert torch.equal(seen[0][:, c:], torch.zeros_like(seen[0][:, c:]))
    seen.clear()
    m.translate(a, mode="union", reference=b)
    assert torch.equal(seen[0][:, c:c + s], m.e_sep_A(a)) and torch.equal(seen[0][:, c + s:], m.e_sep_B(b))
    seen.clear()
    m.translate(a, "AtoB", reference=b)
    assert torch.equal(seen[0][:, c:c + s], torch.zeros_like(seen[0][:, c:c + s]))


def test_mbu_zero_codes_are_exactly_zero():
    m = MBU(**TINY)
    seen_a, seen_b = _decoder_inputs(m.d_a), _decoder_inputs(m.d_b)
    m.ae_losses(images(3, seed=1), images(3, seed=2))
    sep = TINY["sep"]
    assert len(seen_a) == 2 and all(torch.equal(c[:, -sep:], torch.zeros_like(c[:, -sep:])) for c in seen_a)
    # D_B: [e1(b), e2(b)], the transfer [e1(a), e2(b)], then [e1(a), 0]
    assert [bool(c[:, -sep:].abs().sum() == 0) for c in seen_b] == [False, False, True]


# ---------------------------------------------------------------------------------------- discriminator
@pytest.mark.parametrize("cls", METHODS)
def test_latent_discriminator_gets_only_common_codes(cls, tmp_path):
    pl.seed_everything(0)
    m = cls(**TINY)
    common = m.e_common if cls is DIDD else m.e1
    separate = [m.e_sep_A, m.e_sep_B] if cls is DIDD else [m.e2]
    common_out, separate_out, disc_in = [], [], []
    common.register_forward_hook(lambda mod, i, o: common_out.append(o.detach().clone()))
    for s in separate:
        s.register_forward_hook(lambda mod, i, o: separate_out.append(o.detach().clone()))
    m.disc.register_forward_pre_hook(lambda mod, args: disc_in.append(args[0].detach().clone()))
    trainer(tmp_path, max_steps=4).fit(m, tiny_data(a="no-accessory", b="accessory", train_limit=8))
    assert len(disc_in) == 2 * 4  # per batch: 2 in the autoencoder's confusion loss, 2 in the D step
    for x in disc_in:
        assert x.shape[1:] == (common_channels(4, 4, 16, 2, 2 if cls is DIDD else 1)[-1], 2, 2)
        assert any(x.shape == c.shape and torch.equal(x, c) for c in common_out)
        assert not any(x.shape == s.shape and torch.equal(x, s) for s in separate_out)


def test_discriminator_labels_and_encoder_target():
    """Press/MBU: D labels with-content (B) 1 and without (A) 0; DIDD: A 1, B 0 (as the code);
    the encoders push both domains to 0."""
    a, b = images(2, seed=1), images(2, seed=2)
    for cls, one in ((PressEtAl, "b"), (MBU, "b"), (DIDD, "a")):
        m = cls(**TINY).eval()  # eval: no spectral-norm power step or BatchNorm batch statistics between calls
        common = m.e_common if cls is DIDD else m.e1
        c1, c0 = m.disc_codes(a, b)
        assert torch.equal(c1, common(b if one == "b" else a)) and torch.equal(c0, common(a if one == "b" else b))
        m.disc = LatentDiscriminator(m.disc.in_features, 8)
        logits = torch.tensor([2.0, -1.0])
        m.disc.forward = lambda code, _l=logits: _l
        bce = lambda z, t: float(nn.functional.binary_cross_entropy_with_logits(z, torch.full_like(z, t)))  # noqa
        assert float(m.confusion_loss(c1, c0)) == pytest.approx(2 * bce(logits, 0.0))
        assert float(m.discriminator_loss(c1, c0)) == pytest.approx(bce(logits, 1.0) + bce(logits, 0.0))


# ---------------------------------------------------------------------------------------- steps
def weights(module: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters only (not BatchNorm statistics or spectral-norm power-iteration vectors)."""
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def moved(before: dict, after: dict, keep) -> bool:
    return any(not torch.equal(before[k], after[k]) for k in before if keep(k))


def _recording(cls, scale: float = 1.0):
    class Recording(cls):
        def on_train_start(self):
            self.snaps, self.norms = [("start", weights(self))], []

        def ae_losses(self, a, b):
            terms, cache = super().ae_losses(a, b)
            return {k: v * scale for k, v in terms.items()}, cache

        def discriminator_loss(self, one, zero):
            return super().discriminator_loss(one, zero) * scale

        def clip_gradients(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
            ps = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
            before = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in ps]))
            super().clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)
            after = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in ps]))
            self.norms.append((float(before), float(after), gradient_clip_val))

        def step(self, name, loss, clip=None):
            super().step(name, loss, clip)
            self.snaps.append((name, weights(self)))
    return Recording


@pytest.mark.parametrize("cls", METHODS)
def test_gradient_norms_are_clipped_to_5(cls, tmp_path):
    pl.seed_everything(0)
    m = _recording(cls, scale=1e4)(**TINY)
    trainer(tmp_path, max_steps=4).fit(m, tiny_data(a="no-accessory", b="accessory", train_limit=8))
    assert len(m.norms) == 4
    for before, after, clip in m.norms:
        assert clip == 5.0 and before > 5.0 and after == pytest.approx(5.0, rel=1e-3)


@pytest.mark.parametrize("cls", METHODS)
def test_autoencoder_step_then_discriminator_step_touch_only_their_nets(cls, tmp_path):
    pl.seed_everything(0)
    m = _recording(cls)(**TINY)
    trainer(tmp_path, max_steps=4).fit(m, tiny_data(a="no-accessory", b="accessory", train_limit=8))
    names = [n for n, _ in m.snaps]
    assert names == ["start", "G", "D", "G", "D"]
    nets = {k.split(".")[0] for k in m.snaps[0][1] if not k.startswith("disc.")}
    for (_, before), (name, after) in zip(m.snaps, m.snaps[1:]):
        moved_ae = {n: moved(before, after, lambda k, n=n: k.startswith(n + ".")) for n in nets}
        moved_d = moved(before, after, lambda k: k.startswith("disc."))
        if name == "G":
            assert all(moved_ae.values()) and not moved_d, moved_ae
        else:
            assert not any(moved_ae.values()) and moved_d
    assert int(m.bank_B.filled) > 0


def test_no_discriminator_step_without_its_weight(tmp_path):
    m = _recording(PressEtAl)(**TINY, disc_weight=0.0)
    trainer(tmp_path, max_steps=2).fit(m, tiny_data(a="no-accessory", b="accessory", train_limit=8))
    assert [n for n, _ in m.snaps] == ["start", "G", "G"]


# ---------------------------------------------------------------------------------------- losses on known inputs
def test_press_losses_on_known_inputs():
    m = PressEtAl(**TINY)
    a, b = images(2, seed=1), images(2, seed=2)
    m.decoder = Const((0.25, 3, 32))
    m.disc = Const((0.0, 1, 1))
    m.disc.forward = lambda code: torch.zeros(code.shape[0])
    terms, _ = m.ae_losses(a, b)
    assert float(terms["recon_B"]) == pytest.approx(float(((b - 0.25) ** 2).mean()), rel=1e-5)  # MSE
    assert float(terms["recon_A"]) == pytest.approx(float(((a - 0.25) ** 2).mean()), rel=1e-5)
    assert float(terms["confusion"]) == pytest.approx(0.001 * 2 * math.log(2), rel=1e-5)
    assert set(terms) == {"recon_A", "recon_B", "confusion"}
    assert "confusion" not in PressEtAl(**TINY, disc_weight=0).ae_losses(a, b)[0]


def test_didd_losses_on_known_inputs():
    m = DIDD(**TINY, recon_weight=2.0, zero_weight=3.0)
    a, b = images(2, seed=1), images(2, seed=2)
    m.decoder = Const((-0.5, 3, 32))
    m.e_sep_A = Const((0.5, 2, 2))
    m.e_sep_B = Const((-0.25, 2, 2))
    m.disc.forward = lambda code: torch.zeros(code.shape[0])
    terms, _ = m.ae_losses(a, b)
    assert float(terms["recon_A"]) == pytest.approx(2 * float((a + 0.5).abs().mean()), rel=1e-5)  # L1
    assert float(terms["recon_B"]) == pytest.approx(2 * float((b + 0.5).abs().mean()), rel=1e-5)
    assert float(terms["zero_A"]) == pytest.approx(3 * 0.25)   # |E^s_B(a)| -> 0
    assert float(terms["zero_B"]) == pytest.approx(3 * 0.5)    # |E^s_A(b)| -> 0
    assert float(terms["confusion"]) == pytest.approx(0.001 * 2 * math.log(2), rel=1e-5)


def test_mbu_losses_on_known_inputs():
    m = MBU(**TINY, alpha1=0.7, alpha2=0.6, beta1=0.5, beta2=0.001, gamma=7.0, delta=5.0, disc_weight=0.005)
    a, b = images(2, seed=1), images(2, seed=2)
    m.d_a = Const((0.2, 3, 32))
    m.d_b = Const((0.25, 1, 32), (-0.6, 3, 32))  # mask 0.25, content -0.6
    m.disc.forward = lambda code: torch.zeros(code.shape[0])
    terms, cache = m.ae_losses(a, b)
    comp = lambda y: 0.25 * -0.6 + 0.75 * y  # noqa: E731
    assert float(terms["recon1_B"]) == pytest.approx(7 * float((comp(0.2) - b).abs().mean()), rel=1e-5)
    assert float(terms["recon1_A"]) == pytest.approx(5 * float((0.2 - a).abs().mean()), rel=1e-5)
    assert float(terms["recon2_B"]) == pytest.approx(0.7 * float((comp(b) - b).abs().mean()), rel=1e-5)
    assert float(terms["recon2_A"]) == pytest.approx(0.6 * float((comp(a) - a).abs().mean()), rel=1e-5)
    transfer = comp(a)
    assert torch.allclose(cache["transfer"], transfer)
    m.eval()  # BatchNorm: compare with running statistics on both sides
    terms, _ = m.ae_losses(a, b)
    assert float(terms["cycle_common"]) == pytest.approx(0.5 * float(((m.e1(transfer) - m.e1(a)) ** 2).mean()), rel=1e-4)
    assert float(terms["cycle_separate"]) == pytest.approx(0.001 * float(((m.e2(transfer) - m.e2(b)) ** 2).mean()),
                                                           rel=1e-4)
    assert float(terms["confusion"]) == pytest.approx(0.005 * 2 * math.log(2), rel=1e-5)


# ---------------------------------------------------------------------------------------- MBU mask
def test_mask_in_unit_range_and_composite_formula():
    dec = MaskDecoder(16, [8, 4, 4], norm="batch", act="lrelu")
    mask, content = dec(torch.randn(5, 16, 2, 2) * 50)
    assert mask.shape == (5, 1, 32, 32) and content.shape == (5, 3, 32, 32)
    assert float(mask.min()) >= 0 and float(mask.max()) <= 1 and float(content.abs().max()) <= 1
    y = images(5)
    assert torch.allclose(composite(mask, content, y), mask * content + (1 - mask) * y)
    assert torch.equal(composite(torch.zeros_like(mask), content, y), y)
    assert torch.equal(composite(torch.ones_like(mask), content, y), content)


def test_mbu_removal_pastes_background_only_inside_the_thresholded_mask():
    m = MBU(**TINY).eval()
    x = images(3)
    last = m.d_b.net[-1]
    with torch.no_grad():
        last.bias[0] = -30.0  # mask ~ 0 everywhere: removal returns the input unchanged
    assert torch.equal(m.translate(x, "BtoA"), x)
    assert float(m.translate(x, mode="mask").max()) < -0.99
    with torch.no_grad():
        last.bias[0] = 30.0   # mask ~ 1: removal is D_A(e1(x), 0)
    expected = m.d_a(torch.cat([m.e1(x), torch.zeros(3, TINY["sep"], 2, 2)], 1))
    assert torch.allclose(m.translate(x, mode="removal"), expected)
    full = MBU(**TINY, removal_code="full").eval()
    full.load_state_dict(m.state_dict())
    assert torch.allclose(full.translate(x, "BtoA"), full.d_a(torch.cat([full.e1(x), full.e2(x)], 1)))
    mask = m.mask(x)
    assert mask.shape == (3, 1, 32, 32) and float(mask.min()) >= 0 and float(mask.max()) <= 1
    # transfer: m*c + (1-m)*x with D_B(e1(x), e2(reference))
    ref = images(3, seed=5)
    mm, cc = m.d_b(torch.cat([m.e1(x), m.e2(ref)], 1))
    assert torch.allclose(m.translate(x, "AtoB", reference=ref), mm * cc + (1 - mm) * x)


# ---------------------------------------------------------------------------------------- translate modes
@pytest.mark.parametrize("cls", METHODS)
def test_every_mode_shape_and_reference_rules(cls):
    m = cls(**TINY).eval()
    x, ref = images(3), images(3, seed=9)
    for name, (_, needs_ref) in m.ops.items():
        out = m.translate(x, mode=name, reference=ref if needs_ref else None)
        assert out.shape == (3, 3, 32, 32) and float(out.abs().max()) <= 1, name
        if needs_ref:
            with pytest.raises(UserError, match="reference"):
                m.translate(x, mode=name)
    for d in m.directions:  # directions work without a reference (the code bank stands in)
        assert m.translate(x, d).shape == (3, 3, 32, 32)
    one = m.translate(x, "AtoB", reference=ref[:1])  # a single reference is broadcast
    assert torch.allclose(one, m.translate(x, "AtoB", reference=ref[:1].expand(3, -1, -1, -1)))
    with pytest.raises(UserError, match="unknown mode"):
        m.translate(x, mode="nonsense")
    with pytest.raises(UserError, match="image_size"):
        m.translate(images(1, 64))
    vis = m.visuals({"A": x, "B": ref})
    assert all(v.shape[0] == 3 and v.shape[-2:] == (32, 32) and float(v.abs().max()) <= 1 for v in vis.values())


# ---------------------------------------------------------------------------------------- configs
def _yaml(path: str) -> dict:
    return yaml.safe_load((ROOT / path).read_text())


def test_celeba_configs_have_the_papers_settings():
    assert len(CELEBA_CONFIGS) == 11
    for path in CELEBA_CONFIGS:
        cfg = _yaml(path)
        m, d = cfg["model"]["init_args"], cfg["data"]["init_args"]
        assert cfg["data"]["class_path"] == "datamodules.celeba.CelebAAttributes"
        assert (m["image_size"], m["depth"], m["dim"], m["sep"], m["clip_grad"], m["lr"]) == (128, 6, 512, 25, 5.0, 2e-4)
        assert (d["crop_size"], d["batch_size"], d["flip"]) == (128, 32, True)
        method = path.split("/")[1]
        assert d["preprocess"] == ("resize" if method == "mbu" else "center_crop_resize")
        if method != "mbu":
            assert d["center_crop"] == 178
        assert m["norm"] == ("batch" if method == "mbu" else "instance")
        assert m.get("spectral_norm", False) == (method == "didd")
        assert m["disc_weight"] == {"press": 0.001, "didd": 0.001, "mbu": 0.005}[method]
    smile = _yaml("experiments/mbu/celeba_smile.yaml")["model"]["init_args"]
    assert (smile["alpha1"], smile["alpha2"], smile["beta2"], smile["gamma"], smile["delta"]) == (1.0, 1.0, 1e-4, 7.0, 5.0)
    assert _yaml("experiments/press/celeba_smile.yaml")["data"]["init_args"]["b"] == "Mouth_Slightly_Open"


def _fit(tmp_path, config, *extra) -> Path:
    root = tmp_path / Path(config).stem
    args = ["fit", "--config", config, "--trainer.default_root_dir", str(root), *TINY_CLI, *metrics_off(), *extra]
    assert main(args) == 0
    return root / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize("config", DIGITS_CONFIGS)
def test_digits_config_20_steps_through_the_cli_then_translate_modes(config, tmp_path):
    ckpt = _fit(tmp_path, config, "--trainer.max_steps", "20", "--data.init_args.train_limit", "32",
                "--data.init_args.batch_size", "8")
    state = torch.load(ckpt, weights_only=True)
    assert state["global_step"] == 20  # 10 batches x (autoencoder + discriminator)
    assert list((ckpt.parent.parent / "grids").glob("final_*.png"))
    from torchvision.io import read_image, write_png

    from datamodules.builtin import indices, render
    from lit_i2i.commands import load_run

    inp = tmp_path / "in"
    inp.mkdir()
    imgs, _, _ = render("accessory", indices("B", "test")[:2])
    for i, x in enumerate(imgs):
        write_png(x, str(inp / f"d{i}.png"))
    model, _ = load_run(ckpt)
    for mode, (_, needs_ref) in model.ops.items():
        out = tmp_path / f"out_{mode}"
        args = ["translate", "--ckpt", str(ckpt), "--input", str(inp), "--output", str(out), "--mode", mode]
        if needs_ref:
            args += ["--reference", str(inp / "d1.png")]
        assert main(args) == 0, mode
        y = read_image(str(out / "d0.png"))
        assert y.shape == (3, 32, 32)
        ref = imgs[1:2].float() / 127.5 - 1 if needs_ref else None
        expected = model.translate(imgs[:1].float() / 127.5 - 1, mode=mode, reference=ref)[0]
        assert (y.int() - ((expected.clamp(-1, 1) + 1) * 127.5).round().int()).abs().max() <= 1, mode
    needs = [k for k, (_, r) in model.ops.items() if r]
    if needs:  # a mode that needs a reference, without one: one line, exit status 2
        assert main(["translate", "--ckpt", str(ckpt), "--input", str(inp), "--output", str(tmp_path / "x"),
                     "--mode", needs[0]]) == 2


@pytest.fixture(scope="module")
def fake_celeba(tmp_path_factory):
    """640 generated images in the real CelebA layout; seed 4 gives every domain of every config at least
    3 images in each official split (checked here, so a change of the factory fails clearly)."""
    import numpy as np

    from datamodules.celeba import parse_expression, read_attributes

    root = tmp_path_factory.mktemp("celeba")
    make_celeba(root, 640, size=(24, 28), seed=4)
    parts = make_partition(root, 640)
    names, files, values = read_attributes(root / "list_attr_celeba.txt")
    split = np.array([parts[f] for f in files])
    for path in CELEBA_CONFIGS:
        d = _yaml(path)["data"]["init_args"]
        in_a = parse_expression(d["a"], names, "a")(values)
        in_b = parse_expression(d["b"], names, "b")(values) & ~in_a
        for mask in (in_a, in_b):
            assert min(int((mask & (split == k)).sum()) for k in (0, 1, 2)) >= 3, path
    return root


@pytest.mark.parametrize("config", CELEBA_CONFIGS)
def test_celeba_config_runs_on_a_generated_celeba(config, fake_celeba, tmp_path):
    ckpt = _fit(tmp_path, config, "--data.init_args.root", str(fake_celeba), "--trainer.max_steps", "4",
                "--data.init_args.crop_size", "32", "--data.init_args.load_size", "32",
                "--data.init_args.center_crop", "20", "--data.init_args.batch_size", "4",
                "--data.init_args.num_workers", "0", "--model.init_args.image_size", "32",
                "--model.init_args.depth", "4")
    assert torch.load(ckpt, weights_only=True)["global_step"] == 4


def test_the_content_transfer_table_runs_end_to_end_at_a_few_steps(tmp_path, cli_env, one_thread):
    """experiments/tables/content_transfer_accessory.yaml, every row at 6 steps on 16 images: each row's
    measures (the ground-truth ones, DIDD's intersection, MBU's mask, Fader's slider) reach table.md."""
    import json

    import yaml

    from lit_i2i import reproduce as R

    spec = yaml.safe_load(open("experiments/tables/content_transfer_accessory.yaml"))
    for r in spec["rows"]:
        r["overrides"] = {**r["overrides"], "trainer.max_steps": 6, "data.init_args.train_limit": 16}
        r["evaluate"] = {**(r.get("evaluate") or {}), "max_samples": 20}
    table = tmp_path / "ct.yaml"
    table.write_text(yaml.safe_dump(spec))
    assert R.reproduce_main([str(table), "--out", str(tmp_path / "out"), "--no_wandb"]) == 0
    t = json.loads((tmp_path / "out" / "table.json").read_text())
    measured = {(row, key) for row, cells in t["cells"].items() for key, c in cells.items() if c["n"] == 1}
    for key in ("l1_truth_BtoA", "l1_outside_AtoB", "colour_error_AtoB", "attr_success_BtoA", "kid_digits_AtoB"):
        assert all((row, key) in measured for row in ("press", "didd", "mbu", "fader")), key
    assert {("didd", "intersection_l1_truth_BtoA"), ("mbu", "at05_mask_iou_BtoA"), ("mbu", "mask_area_BtoA"),
            ("fader", "slider15_attr_prob_AtoB")} <= measured
    assert ("press", "mask_iou_BtoA") not in measured
    assert [c["verdict"] for c in t["claims"]] != ["not measured"] * 3
    md = (tmp_path / "out" / "table.md").read_text()
    assert "| measure | Press et al. | DIDD | MBU | Fader networks |" in md
