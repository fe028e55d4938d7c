"""lit_i2i.metrics: FID/KID against torchmetrics and direct formulas, translation accuracy, attributes,
clustering, content/style, paired metrics, the real-feature cache, offline weight resolution, the
callback (validate/fit, checkpoint-free extractors) and one-process vs 2-process DDP agreement.

Also a script: ``python tests/test_metrics.py single|ddp OUT_DIR`` runs the callback under a Trainer
(1 process or 2-process DDP on CPU/gloo) and writes its results to OUT_DIR/results.json.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from datamodules.builtin import BuiltinDigits, indices, render
from lit_i2i.errors import UserError
from lit_i2i.metrics import (TranslationMetrics, VGGExtractor, ari, cluster_accuracy, evaluate_model, fid, kid,
                             load_digit_classifier, nmi)
from lit_i2i.metrics import weights as W
from lit_i2i.metrics.classifier import accuracy
from lit_i2i.metrics.evaluate import Evaluator, shard

HERE = Path(__file__).resolve().parent


# ------------------------------------------------------------------------------------- models
class Identity(nn.Module):
    directions = ("AtoB", "BtoA")

    def translate(self, x, direction="AtoB", reference=None):
        return x


class RandomImages(nn.Module):
    """Replaces every image with a random image of a bank (of random class): accuracy at chance."""

    directions = ("AtoB",)

    def __init__(self, bank):
        super().__init__()
        self.bank, self.g = bank, torch.Generator().manual_seed(0)

    def translate(self, x, direction="AtoB", reference=None):
        return self.bank[torch.randint(len(self.bank), (len(x),), generator=self.g)]


class Scaled(Identity):
    def translate(self, x, direction="AtoB", reference=None):
        return x * 0.8


class TinyModule(pl.LightningModule):
    """One parameter; translate is the identity. Records the mode translate was called in."""

    method_name = "tiny"
    directions = ("AtoB", "BtoA")

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.modes = []

    def translate(self, x, direction="AtoB", reference=None):
        self.modes.append(self.training)
        return x + 0 * self.w

    def training_step(self, batch, i):
        return (self.w ** 2).sum()

    def validation_step(self, batch, i):
        pass

    def test_step(self, batch, i):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _images(domain, seed=0, n=None):
    x, y, _ = render(domain, indices("all", "test")[:n], seed)
    return x.float() / 127.5 - 1, y


def _trainer(tmp_path, callbacks, **kw):
    args = dict(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                enable_checkpointing=False, default_root_dir=str(tmp_path), limit_val_batches=1, limit_test_batches=1,
                num_sanity_val_steps=0, callbacks=callbacks)
    args.update(kw)
    return pl.Trainer(**args)


# ------------------------------------------------------------------------------------- FID / KID
def _scipy_fid(a, b):
    from scipy import linalg

    a, b = a.double().numpy(), b.double().numpy()
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _direct_kid(real, fake, subsets, size, seed):
    """Binkowski et al.'s unbiased MMD^2, cubic kernel, drawing subsets exactly as torchmetrics does."""
    torch.manual_seed(seed)
    vals = []
    for _ in range(subsets):
        r = real[torch.randperm(len(real))[:size]].double().numpy()
        f = fake[torch.randperm(len(fake))[:size]].double().numpy()
        def k(a, b):
            return (a @ b.T / a.shape[1] + 1) ** 3

        kxx, kyy, kxy = k(r, r), k(f, f), k(r, f)
        m = size
        vals.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                    - 2 * kxy.sum() / m ** 2)
    return float(np.mean(vals)), float(np.std(vals))


def test_fid_of_a_set_with_itself_is_zero_and_matches_scipy():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(400, 12, generator=g)
    b = torch.randn(300, 12, generator=g) * 1.3 + 0.5
    assert abs(fid(a, a)) < 1e-6
    assert fid(a, b) == pytest.approx(_scipy_fid(a, b), rel=1e-6)


def test_fid_of_non_finite_features_is_nan_not_a_crash():
    real, fake = torch.randn(20, 8), torch.randn(20, 8)
    fake[3, 2] = float("nan")
    assert math.isnan(fid(real, fake)) and math.isnan(fid(fake, real))
    fake[3, 2] = float("inf")
    assert math.isnan(fid(real, fake))


def test_fid_and_kid_agree_with_torchmetrics_on_images():
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    torch.manual_seed(0)
    ext = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10)).double()
    ext.num_features = 10
    real, fake = torch.rand(120, 3, 8, 8).double(), (torch.rand(90, 3, 8, 8) * 0.8).double()
    tm = FrechetInceptionDistance(feature=ext, normalize=True)
    tm.update(real, real=True)
    tm.update(fake, real=False)
    with torch.no_grad():
        fr, ff = ext(real), ext(fake)
    assert fid(fr, ff) == pytest.approx(float(tm.compute()), rel=1e-9)
    tk = KernelInceptionDistance(feature=ext, subsets=7, subset_size=50, normalize=True)
    tk.update(real, real=True)
    tk.update(fake, real=False)
    torch.manual_seed(5)
    mean, std = tk.compute()
    ours = kid(fr, ff, subsets=7, subset_size=50, seed=5)
    assert ours[0] == pytest.approx(float(mean), rel=1e-9) and ours[1] == pytest.approx(float(std), rel=1e-9)
    assert ours[2] == 50


def test_kid_matches_direct_formula_and_works_below_default_subset_size(monkeypatch):
    from lit_i2i.metrics import scores

    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(70, 6, generator=g), torch.randn(55, 6, generator=g) + 0.3
    mean, std, size = kid(real, fake, subsets=20, seed=3)  # default subset_size 1000 > 55 samples
    assert size == 55
    dm, ds = _direct_kid(real, fake, 20, 55, 3)
    assert mean == pytest.approx(dm, rel=1e-9) and std == pytest.approx(ds, rel=1e-9)
    assert kid(real, fake, subsets=20, seed=3) == (mean, std, size)  # seeded: repeatable
    # subsets smaller than the sets; the kernels-once path and torchmetrics' own loop agree
    fast = kid(real, fake, subsets=20, subset_size=30, seed=4)
    monkeypatch.setattr(scores, "KID_FAST_MAX", 0)
    slow = kid(real, fake, subsets=20, subset_size=30, seed=4)
    assert fast[2] == slow[2] == 30 and fast[:2] == pytest.approx(slow[:2], rel=1e-9)
    assert slow[:2] == pytest.approx(_direct_kid(real, fake, 20, 30, 4), rel=1e-9)


def test_fid_between_halves_of_real_digits_is_far_below_real_vs_noise():
    net = load_digit_classifier("colored-digits")
    x, _ = _images("colored-digits")
    noise = torch.rand(len(x), 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        f, fn = net.features(x), net.features(noise)
    half = len(f) // 2
    assert fid(f[:half], f[half:]) < 0.1 * fid(f, fn)


# ------------------------------------------------------------------------------------- accuracy / attributes
def test_identity_accuracy_equals_the_classifiers_own_accuracy(tmp_path):
    dm = BuiltinDigits(a="digits", b="digits")
    res = evaluate_model(Identity(), dm, ["acc"], ["AtoB"], max_samples=120, cache_dir=str(tmp_path))
    src = dm.eval_dataset("A", "test")
    x = torch.stack([src[i]["image"] for i in range(120)])
    y = torch.tensor([src[i]["label"] for i in range(120)])
    assert res["acc_AtoB"] == pytest.approx(accuracy(load_digit_classifier("digits"), x, y), abs=1e-12)
    assert res["acc_AtoB"] > 0.95


def test_random_class_translations_give_chance_accuracy(tmp_path):
    dm = BuiltinDigits(a="digits", b="digits")
    bank, _ = _images("digits")
    res = evaluate_model(RandomImages(bank), dm, ["acc"], ["AtoB"], max_samples=120, cache_dir=str(tmp_path))
    assert 0.03 < res["acc_AtoB"] < 0.2, res


def test_attribute_probability_and_success(tmp_path):
    dm = BuiltinDigits(a="no-accessory", b="accessory")
    res = evaluate_model(Identity(), dm, ["attr_prob", "attr_success"], ["AtoB", "BtoA"], max_samples=60,
                         cache_dir=str(tmp_path))
    # identity adds no accessory (AtoB) and removes none (BtoA): the target attribute is never there
    for d in ("AtoB", "BtoA"):
        assert res[f"attr_success_{d}"] < 0.05 and res[f"attr_prob_{d}"] < 0.1, res
    bank, _ = _images("accessory")
    res = evaluate_model(RandomImages(bank), dm, ["attr_success"], ["AtoB"], max_samples=60, cache_dir=str(tmp_path))
    assert res["attr_success_AtoB"] > 0.95


def test_domain_rate_counts_outputs_called_the_target_domain(tmp_path):
    from lit_i2i.metrics.classifier import domain_net, domain_pair

    assert domain_net("digits", "colored-digits") == domain_net("colored-digits", "digits")
    assert domain_pair(domain_net("digits", "colored-digits")) == ("colored-digits", "digits")
    for bad in (("digits", "digits"), ("digits", "mnist")):
        with pytest.raises(UserError, match="two different built-in domains"):
            domain_net(*bad)
    dm = BuiltinDigits(a="digits", b="colored-digits")
    res = evaluate_model(Identity(), dm, ["domain_rate"], ["AtoB", "BtoA"], max_samples=60, cache_dir=str(tmp_path))
    assert res["domain_rate_AtoB"] < 0.05 and res["domain_rate_BtoA"] < 0.05, res  # an unchanged input stays its domain
    bank, _ = _images("colored-digits")
    res = evaluate_model(RandomImages(bank), dm, ["domain_rate"], ["AtoB"], max_samples=60, cache_dir=str(tmp_path))
    assert res["domain_rate_AtoB"] > 0.95, res


# ------------------------------------------------------------------------------------- clustering
def test_clustering_scores_are_invariant_to_a_permutation_of_cluster_ids():
    true = np.repeat(np.arange(5), 20)
    perm = np.array([3, 0, 4, 1, 2])
    assert cluster_accuracy(perm[true], true) == 1.0
    assert nmi(perm[true], true) == pytest.approx(1.0) and ari(perm[true], true) == pytest.approx(1.0)
    rnd = np.random.default_rng(0).integers(0, 5, len(true))
    assert cluster_accuracy(rnd, true) < 0.5 and ari(rnd, true) < 0.1


def test_cluster_metrics_through_a_models_cluster_method(tmp_path):
    clf = load_digit_classifier("digits")

    class Clusterer(Identity):
        def cluster(self, x):
            return (clf(x).argmax(1) + 3) % 10  # the classifier's labels under other names

    dm = BuiltinDigits(a="digits", b="digits")
    res = evaluate_model(Clusterer(), dm, ["cluster_acc", "nmi", "ari"], ["AtoB"], max_samples=60,
                         cache_dir=str(tmp_path))
    x = torch.stack([dm.eval_dataset(d)[i]["image"] for d in ("A", "B") for i in range(60)])
    y = torch.tensor([dm.eval_dataset(d)[i]["label"] for d in ("A", "B") for i in range(60)])
    assert res["cluster_acc"] == pytest.approx(accuracy(clf, x, y)) and res["nmi"] > 0.9


def digits_factory():
    """A user classifier given as 'module:factory' (here the built-in digits one)."""
    return load_digit_classifier("digits")


def test_classifier_factory_option_and_reference_images(tmp_path):
    class ReturnsReference(Identity):
        def translate(self, x, direction="AtoB", reference=None):
            assert reference is not None and reference.shape == x.shape
            return reference

    dm = BuiltinDigits(a="digits", b="colored-digits", paired=True)  # reference i shows the digit of source i
    res = evaluate_model(ReturnsReference(), dm, ["acc"], ["AtoB"], max_samples=40, cache_dir=str(tmp_path),
                         reference=True)
    assert res["acc_AtoB"] > 0.9
    # identity maps digits to digits; judged by the digits classifier (a factory) instead of colored-digits'
    res = evaluate_model(Identity(), dm, ["acc", "fid_digits"], ["AtoB"], max_samples=40, cache_dir=str(tmp_path),
                         classifier={"AtoB": f"{__name__}:digits_factory"})
    assert res["acc_AtoB"] > 0.95 and res["fid_digits_AtoB"] > 0
    with pytest.raises(UserError, match="cannot import classifier factory"):
        evaluate_model(Identity(), dm, ["acc"], ["AtoB"], max_samples=4, classifier={"AtoB": "nowhere:nothing"})


# ------------------------------------------------------------------------------------- mFID, cache
def test_class_wise_fid_and_kid_subset_reported(tmp_path):
    dm = BuiltinDigits(a="digits", b="digits")
    res = evaluate_model(Identity(), dm, ["fid_digits", "kid_digits", "mfid_digits"], ["AtoB"], max_samples=120,
                         cache_dir=str(tmp_path))
    assert res["mfid_digits_classes_AtoB"] == 10 and res["mfid_digits_AtoB"] > res["fid_digits_AtoB"] > 0
    assert res["kid_digits_subset_AtoB"] == 120  # fewer samples than KID's default subset size 1000


def test_real_features_are_cached_and_reused(tmp_path, monkeypatch):
    from lit_i2i.metrics.extractors import DigitExtractor

    seen = []
    forward = DigitExtractor.forward
    monkeypatch.setattr(DigitExtractor, "forward", lambda self, x: seen.append(len(x)) or forward(self, x))
    dm = BuiltinDigits(a="digits", b="colored-digits")
    args = dict(metrics=["acc", "fid_digits"], directions=["AtoB"], max_samples=60, cache_dir=str(tmp_path))
    first = evaluate_model(Identity(), dm, **args)
    assert sum(seen) == 120 and len(list(tmp_path.glob("*.pt"))) == 1  # 60 translations + 60 real images
    seen.clear()
    second = evaluate_model(Identity(), dm, **args)  # a new evaluator, as a later run would build
    assert sum(seen) == 60 and second == first  # only the translations
    seen.clear()
    evaluate_model(Identity(), dm, **{**args, "max_samples": 50})  # another evaluation set: a new entry
    assert sum(seen) == 100 and len(list(tmp_path.glob("*.pt"))) == 2


# ------------------------------------------------------------------------------------- content / style / paired
@pytest.fixture
def random_vgg(monkeypatch):
    """Evaluators get a randomly initialised VGG16 (tests only: never a download, never a file)."""
    vgg = VGGExtractor("vgg16", "random")
    monkeypatch.setattr(W, "resolve_weights", lambda *a, **k: Path("unused"))
    net = Evaluator._net
    monkeypatch.setattr(Evaluator, "_net", lambda self, key, device: vgg if key == "vgg" else net(self, key, device))
    return vgg


def test_content_of_identity_and_style_of_identical_sets_are_zero(tmp_path, random_vgg):
    same = BuiltinDigits(a="colored-digits", b="colored-digits", paired=True)  # A and B: the same images
    res = evaluate_model(Identity(), same, ["content", "style"], ["AtoB"], max_samples=4, cache_dir=str(tmp_path))
    assert res["content_AtoB"] == 0.0 and res["style_AtoB"] == pytest.approx(0.0, abs=1e-12)
    other = BuiltinDigits(a="digits", b="colored-digits", paired=True)
    res = evaluate_model(Scaled(), other, ["content", "style"], ["AtoB"], max_samples=4, cache_dir=str(tmp_path))
    assert res["content_AtoB"] > 0 and res["style_AtoB"] > 0


def test_paired_psnr_ssim_and_lpips_skipped_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(W, "_download", lambda *a, **k: (_ for _ in ()).throw(OSError("network is unreachable")))
    dm = BuiltinDigits(a="colored-digits", b="colored-digits", paired=True)
    out = tmp_path / "m.json"
    res = evaluate_model(Scaled(), dm, ["psnr", "ssim", "lpips"], ["AtoB"], max_samples=20, out_json=str(out),
                         cache_dir=str(tmp_path))
    x = torch.stack([dm.eval_dataset("A")[i]["image"] for i in range(20)])
    u, v = ((x * 0.8 + 1) / 2).clamp(0, 1), ((x + 1) / 2)
    direct = (10 * torch.log10(1 / ((u - v) ** 2).flatten(1).mean(1))).mean()
    assert res["psnr_AtoB"] == pytest.approx(float(direct), rel=1e-5)
    assert 0 < res["ssim_AtoB"] < 1 and "lpips_AtoB" not in res
    notes = json.loads(out.read_text())["notes"]
    assert any(n.startswith("lpips skipped") and "alexnet" in n for n in notes), notes
    assert "lpips skipped" in capsys.readouterr().out


# ------------------------------------------------------------------------------------- weights offline
def _offline(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv("LIT_I2I_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.delenv("LIT_I2I_VGG_WEIGHTS", raising=False)
    monkeypatch.setattr(W, "_download", lambda *a, **k: (_ for _ in ()).throw(OSError("network is unreachable")))


def test_inception_without_weights_offline_is_a_user_error_with_instructions(monkeypatch, tmp_path):
    from lit_i2i.metrics import InceptionExtractor

    _offline(monkeypatch, tmp_path)
    spec = W.inception_spec()
    with pytest.raises(UserError) as e:
        InceptionExtractor()
    msg = str(e.value)
    for part in (spec.url, str(tmp_path / "hub" / "checkpoints" / "weights-inception-2015-12-05-6726825d.pth"),
                 "LIT_I2I_INCEPTION_WEIGHTS", "--metrics.inception_weights"):
        assert part in msg, (part, msg)
    with pytest.raises(UserError, match="InceptionV3"):  # the callback's setup says so before any training
        Evaluator(["fid", "kid"]).plan(Identity(), BuiltinDigits())
    with pytest.raises(UserError, match="LIT_I2I_VGG_WEIGHTS"):
        VGGExtractor("vgg19")
    with pytest.raises(UserError, match="file not found"):
        InceptionExtractor(weights=str(tmp_path / "missing.pth"))


def test_inception_weights_resolve_from_env_and_hub_cache_and_load(monkeypatch, tmp_path):
    from torch_fidelity import feature_extractor_inceptionv3 as tfi

    from lit_i2i.metrics import InceptionExtractor

    _offline(monkeypatch, tmp_path)
    # a randomly initialised torch-fidelity InceptionV3, built without any file, saved as a state dict
    with monkeypatch.context() as m:
        m.setattr(tfi, "load_state_dict_from_url", lambda *a, **k: {})
        m.setattr(tfi.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd, strict=True: None)
        net = tfi.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = tmp_path / "inception.pth"
    torch.save(net.state_dict(), path)
    monkeypatch.setenv("LIT_I2I_INCEPTION_WEIGHTS", str(path))
    ext = InceptionExtractor()
    assert not any(p.requires_grad for p in ext.parameters())
    ext.train()
    assert not ext.training
    with torch.no_grad():
        f = ext(torch.rand(2, 3, 32, 32) * 2 - 1)["features"]
    assert f.shape == (2, 2048) and torch.isfinite(f).all()
    monkeypatch.delenv("LIT_I2I_INCEPTION_WEIGHTS")
    cached = W.hub_cache_file(W.inception_spec())
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")
    assert W.resolve_weights(W.inception_spec()) == cached


def test_vgg_loads_torchvision_weights_from_the_env_variable(monkeypatch, tmp_path):
    from torchvision.models.vgg import cfgs, make_layers

    _offline(monkeypatch, tmp_path)
    layers = make_layers(cfgs["D"])  # a torchvision-format file (features.* keys) with random weights
    path = tmp_path / "vgg16.pth"
    torch.save({f"features.{k}": v for k, v in layers.state_dict().items()}, path)
    monkeypatch.setenv("LIT_I2I_VGG_WEIGHTS", str(path))
    vgg = VGGExtractor("vgg16")
    assert torch.equal(vgg.features[0].weight, layers[0].weight) and vgg.name == "vgg16-imagenet-vgg16"
    assert not any(p.requires_grad for p in vgg.parameters())


def test_random_vgg19_is_seeded_named_apart_from_imagenet_and_evaluates_content_and_style(monkeypatch, tmp_path):
    """``vgg_weights: random``: a randomly initialised VGG-19 from a fixed seed, with no file and no network
    (offline here, so any look-up would fail): the same seed gives the same weights and features in two
    constructions, whatever the global random state (left untouched); another seed gives others; its name, the
    real-feature cache's key, says random and differs from the ImageNet extractor's; an evaluation with it on tiny
    built-in data gives content 0 and style 0 for the identity on identical sets, finite positive numbers otherwise."""
    from lit_i2i.metrics import extractors as E

    _offline(monkeypatch, tmp_path)
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(7)) * 2 - 1
    torch.manual_seed(1)
    state = torch.random.get_rng_state()
    a = VGGExtractor("vgg19", "random")
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator is not consumed
    torch.manual_seed(2)
    b = VGGExtractor("vgg19", E.RANDOM_WEIGHTS)
    b2 = VGGExtractor("vgg19", " Random ")  # spelled loosely: the same network
    other = VGGExtractor("vgg19", "random", seed=1)
    with torch.no_grad():
        fa, fb, fb2, fo = a(x), b(x), b2(x), other(x)
    assert set(fa) == {"relu4_2", "relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"}
    assert all(torch.equal(fa[k], fb[k]) and torch.equal(fa[k], fb2[k]) for k in fa)
    assert not torch.equal(fa["relu4_2"], fo["relu4_2"])
    assert all(torch.isfinite(v).all() and v.abs().sum() > 0 for v in fa.values())  # not a dead deep layer
    w = a.features[2].weight  # conv1_2, 64 -> 64: torchvision's Kaiming normal, fan_out
    assert abs(float(w.std()) - math.sqrt(2 / (64 * 9))) < 0.005 and float(a.features[2].bias.abs().max()) == 0
    assert a.random and a.name == b.name == "vgg19-random-seed0" and other.name == "vgg19-random-seed1"
    with monkeypatch.context() as m:  # the ImageNet extractor's name, from a torchvision-format file (not read)
        m.setattr(E, "resolve_weights", lambda *args, **kw: Path("vgg19-dcbb9e9d.pth"))
        m.setattr(E.torch, "load", lambda *args, **kw: {f"features.{k}": v for k, v in
                                                        E.random_vgg_features("vgg19").state_dict().items()})
        imagenet = VGGExtractor("vgg19")
    assert not imagenet.random and imagenet.name == "vgg19-imagenet-vgg19-dcbb9e9d" and "random" not in imagenet.name
    assert torch.equal(imagenet.features[0].weight, a.features[0].weight)  # the same tensors, still apart by name
    # through the evaluator, as a table's evaluate section gives it (no monkeypatched extractor)
    cache = tmp_path / "cache"
    same = BuiltinDigits(a="colored-digits", b="colored-digits", paired=True)
    res = evaluate_model(Identity(), same, ["content", "style"], ["AtoB"], max_samples=4, vgg_weights="random",
                         cache_dir=str(cache))
    assert res["content_AtoB"] == 0.0 and res["style_AtoB"] == pytest.approx(0.0, abs=1e-12)
    out = tmp_path / "eval.json"
    res = evaluate_model(Scaled(), BuiltinDigits(a="digits", b="colored-digits"), ["content", "style"],
                         ["AtoB", "BtoA"], max_samples=6, vgg_weights="random", cache_dir=str(cache),
                         out_json=str(out))
    assert all(math.isfinite(res[k]) and res[k] > 0 for k in ("content_AtoB", "style_AtoB", "content_BtoA",
                                                              "style_BtoA"))
    assert any("vgg19-random-seed0" in n and "not comparable" in n for n in json.loads(out.read_text())["notes"])
    cached = [p.name for p in cache.glob("*.pt")]
    assert cached and all("vgg19-random-seed0" in n for n in cached)  # real-target Grams keyed by the random name


# ------------------------------------------------------------------------------------- callback, entry point
def test_callback_logs_shared_names_restores_mode_and_keeps_extractors_out_of_checkpoints(tmp_path):
    dm = BuiltinDigits(a="digits", b="colored-digits", eval_batch_size=16)
    cb = TranslationMetrics(metrics=["acc", "fid_digits", "kid_digits"], directions=["AtoB", "BtoA"], max_samples=24,
                            cache_dir=str(tmp_path / "cache"))
    model = TinyModule()
    trainer = _trainer(tmp_path, [cb])
    trainer.validate(model, dm, verbose=False)
    for d in ("AtoB", "BtoA"):
        for m in ("acc", "fid_digits", "kid_digits"):
            assert f"val/{m}_{d}" in trainer.callback_metrics and f"val/{m}_{d}" in cb.results
    assert cb.results["val/kid_digits_subset_AtoB"] == 24
    assert model.modes and not any(model.modes)  # translate ran in eval mode
    model.train()
    cb.evaluator.run(model, dm)
    assert model.training  # ... and the train mode is restored
    assert set(model.state_dict()) == {"w"} and cb.state_dict() == {}
    trainer.test(model, dm, verbose=False)
    assert "test/acc_AtoB" in cb.results


def test_callback_every_n_epochs_during_fit(tmp_path):
    dm = BuiltinDigits(a="digits", b="digits", train_limit=8, batch_size=4)
    cb = TranslationMetrics(metrics=["acc"], every_n_epochs=2, max_samples=10, cache_dir=str(tmp_path))
    calls = []
    run = cb.evaluate
    cb.evaluate = lambda trainer, module, stage: calls.append(trainer.current_epoch) or run(trainer, module, stage)
    _trainer(tmp_path, [cb], max_epochs=4, limit_train_batches=1).fit(TinyModule(), dm)
    assert calls == [1, 3] and "val/acc_AtoB" in cb.results


def test_unknown_metric_and_missing_classifier_are_user_errors():
    with pytest.raises(UserError, match="unknown metric"):
        TranslationMetrics(metrics=["fid", "sharpness"])

    class Photos:
        name, domains = "h2z", ("A", "B")

        def eval_dataset(self, domain, split="test"):
            return []

    class NamedPhotos(Photos):
        def builtin_domain(self, domain):
            return {"A": "horse", "B": "zebra"}[domain]

    with pytest.raises(UserError, match="classifier of the target domain 'B' of AtoB"):
        Evaluator(["acc"]).plan(Identity(), Photos())
    with pytest.raises(UserError, match="classifier of the target domain 'zebra' of AtoB"):
        Evaluator(["acc"]).plan(Identity(), NamedPhotos())
    with pytest.raises(UserError, match="not <source>to<target>"):
        Evaluator(["acc"], ["AtoC"]).plan(Identity(), BuiltinDigits())


def test_evaluate_model_prints_a_table_writes_json_and_logs_a_wandb_table(tmp_path, capsys):
    import wandb

    class FakeWandbLogger:
        def __init__(self):
            self.metrics, self.logged = {}, []
            self.experiment = self

        def log_metrics(self, m):
            self.metrics.update(m)

        def log_table(self, *a, **k):  # what makes it W&B-like
            raise AssertionError("evaluate_model builds the wandb.Table itself")

        def log(self, d):
            self.logged.append(d)

    logger = FakeWandbLogger()
    out = tmp_path / "eval.json"
    res = evaluate_model(Identity(), BuiltinDigits(), ["acc", "fid_digits"], ["AtoB", "BtoA"], max_samples=20,
                         out_json=str(out), cache_dir=str(tmp_path), logger=logger)
    payload = json.loads(out.read_text())
    assert payload["metrics"] == res and set(res) == {"acc_AtoB", "acc_BtoA", "fid_digits_AtoB", "fid_digits_BtoA"}
    table = capsys.readouterr().out
    assert "AtoB" in table and "fid_digits" in table
    assert logger.metrics["test/acc_AtoB"] == res["acc_AtoB"]
    assert isinstance(logger.logged[0]["test/metrics_table"], wandb.Table)


# ------------------------------------------------------------------------------------- DDP
def test_shards_tile_the_evaluation_set_without_duplicates():
    for n in (2, 7, 101):
        for world in (1, 2, 3):
            if n >= world:
                assert [i for r in range(world) for i in shard(n, r, world)] == list(range(n))


def _run_ddp_script(out: Path, world: int = 2) -> dict:
    """Start the ranks of a ``strategy="ddp"`` Trainer ourselves, in parallel (as torchrun would: Lightning
    sees LOCAL_RANK and does not launch them itself), so their imports overlap."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port), "WORLD_SIZE": str(world), "NODE_RANK": "0",
            "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, str(HERE / "test_metrics.py"), "ddp", str(out)],
                              env={**base, "LOCAL_RANK": str(r), "RANK": str(r)}, cwd=str(HERE.parent),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in range(world)]
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(log[-3000:] for log in logs)
    return json.loads((out / "results.json").read_text())


def test_two_process_ddp_gives_the_single_process_numbers(tmp_path):
    single = _script_main("single", str(tmp_path / "single"))
    result = _run_ddp_script(tmp_path / "ddp")
    assert result["world_size"] == 2
    ddp = result["runs"]
    assert single[0]["results"].keys() == ddp[0]["results"].keys()
    # acc, fid_digits, kid_digits (+subset), mfid_digits (+classes); kid_digits_std is unavailable (41 of 41
    # images in every subset) and so not logged
    assert len(single[0]["results"]) == 2 * 6
    for run in range(2):  # run 2: real features from the cache (written by rank 0)
        for part in ("results", "logged"):
            for k, v in single[run][part].items():
                assert ddp[run][part][k] == pytest.approx(v, rel=1e-5, abs=1e-8), (run, part, k)
    assert single[0]["results"]["val/kid_digits_subset_AtoB"] == 41  # ranks held 20 and 21 images


def _script_main(mode: str, out: str) -> list[dict]:
    """One Trainer (1 process, or 2-process DDP on CPU/gloo) validating twice with the metrics callback."""
    ddp = mode == "ddp"
    Path(out).mkdir(parents=True, exist_ok=True)
    dm = BuiltinDigits(a="digits", b="colored-digits", eval_batch_size=16)
    cb = TranslationMetrics(metrics=["acc", "fid_digits", "kid_digits", "mfid_digits"], directions=["AtoB", "BtoA"],
                            max_samples=41, batch_size=8, cache_dir=str(Path(out) / "cache"))
    trainer = _trainer(Path(out), [cb], devices=2 if ddp else 1, strategy="ddp" if ddp else "auto")
    runs = []
    for _ in range(2):
        trainer.validate(TinyModule(), dm, verbose=False)
        runs.append({"results": dict(cb.results),
                     "logged": {k: float(v) for k, v in trainer.callback_metrics.items()}})
    if trainer.global_rank == 0:
        (Path(out) / "results.json").write_text(json.dumps({"world_size": trainer.world_size, "runs": runs}))
    return runs


if __name__ == "__main__":
    _script_main(sys.argv[1], sys.argv[2])
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # an explicit teardown: left to interpreter exit, gloo's threads sometimes abort the process after the work
        # is done ("terminate called without an active exception", exit status != 0)
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


# ------------------------------------------------------------------------------------- review fixes
def test_mfid_groups_fakes_by_their_target_class_not_their_source_label(tmp_path):
    from lit_i2i.metrics.evaluate import target_classes

    src = torch.tensor([0, 0, 1, 1])
    assert torch.equal(target_classes({"label": src, "target_label": torch.tensor([1, 1, 0, 0])}, src),
                       torch.tensor([1, 1, 0, 0]))  # reference-guided: the reference's class
    assert torch.equal(target_classes({"label": src}, torch.tensor([5, 5, 5])), torch.full((4,), 5))  # one-class domain
    assert torch.equal(target_classes({"label": src}, torch.tensor([0, 1, 1])), src)  # content labels kept

    class ReturnsReference(Identity):
        def translate(self, x, direction="AtoB", reference=None):
            return reference

    # unpaired digits: reference i is the B digit i, a different digit than source i; the translation IS the
    # reference, so grouped by target class every class compares like with like
    dm = BuiltinDigits(a="digits", b="digits")
    res = evaluate_model(ReturnsReference(), dm, ["mfid_digits"], ["AtoB"], max_samples=150, cache_dir=str(tmp_path),
                         reference=True)
    by_source = evaluate_model(RandomImages(_images("digits")[0]), dm, ["mfid_digits"], ["AtoB"], max_samples=150,
                               cache_dir=str(tmp_path))
    assert res["mfid_digits_classes_AtoB"] == 10 and res["mfid_digits_AtoB"] < 1e-6 < by_source["mfid_digits_AtoB"]


def test_attribute_scores_follow_the_classifier_output_shape():
    from lit_i2i.metrics.scores import attribute_scores

    one = torch.tensor([[2.0], [-2.0], [0.0], [4.0]])  # one logit: sigmoid, not a softmax over one column (= 1)
    p, s = attribute_scores(one, 1)
    assert p == pytest.approx(float(torch.sigmoid(one).mean())) and s == 0.5
    assert attribute_scores(one, 0)[0] == pytest.approx(1 - p)
    two = torch.tensor([[0.0, 1.0], [3.0, 0.0]])
    assert attribute_scores(two, 1)[0] == pytest.approx(float(two.softmax(1)[:, 1].mean()))
    multi = torch.zeros(3, 40)
    multi[:, 31] = torch.tensor([5.0, -5.0, 5.0])  # CelebA's Smiling column
    assert attribute_scores(multi, 1, index=31)[1] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="multi-label head"):
        attribute_scores(multi, 1)
    with pytest.raises(ValueError, match="shape"):
        attribute_scores(torch.zeros(2, 3, 4), 1)


def test_attribute_classifier_spec_with_a_column(tmp_path):
    from lit_i2i.metrics.evaluate import parse_attribute_spec

    assert parse_attribute_spec("pkg.mod:celeba#31@0") == ("pkg.mod:celeba", 0, 31)
    assert parse_attribute_spec("accessory") == ("accessory", 1, None)
    with pytest.raises(UserError, match="COLUMN"):
        parse_attribute_spec("pkg.mod:f#x@1")


def test_kid_std_is_unavailable_when_every_subset_is_the_whole_set_and_the_global_rngs_are_untouched(tmp_path):
    real, fake = torch.randn(50, 8), torch.randn(50, 8) + 0.5
    torch.manual_seed(123)
    before = torch.get_rng_state()
    mean, std, size = kid(real, fake, subset_size=1000)
    assert size == 50 and math.isnan(std) and mean > 0
    assert torch.equal(torch.get_rng_state(), before)
    m2, std2, size2 = kid(real, fake[:40], subset_size=1000)
    assert size2 == 40 and std2 > 0
    dm = BuiltinDigits(a="digits", b="digits")
    res = evaluate_model(Identity(), dm, ["kid_digits"], ["AtoB"], max_samples=30, cache_dir=str(tmp_path),
                         out_json=str(tmp_path / "m.json"))
    assert math.isnan(res["kid_digits_std_AtoB"])
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved["metrics"]["kid_digits_std_AtoB"] is None and any("unavailable" in n for n in saved["notes"])


def test_similarity_to_the_input_is_one_for_a_copy_and_drops_for_a_change():
    dm = BuiltinDigits(batch_size=8)
    dm.setup("test")
    same = evaluate_model(Identity(), dm, ["ssim_input", "l1_input"], ["AtoB"], max_samples=16)
    assert same["ssim_input_AtoB"] == pytest.approx(1.0, abs=1e-5) and same["l1_input_AtoB"] == 0

    class Darker(Identity):
        def translate(self, x, direction="AtoB", reference=None):
            return (x - 0.5).clamp(-1, 1)

    changed = evaluate_model(Darker(), dm, ["ssim_input", "l1_input"], ["AtoB"], max_samples=16)
    # background pixels are already -1 (clamped, unchanged): the change is 0.5 on the strokes only
    assert changed["ssim_input_AtoB"] < 0.99 and 0.05 < changed["l1_input_AtoB"] < 0.5


def test_patch_and_structure_metrics_on_a_single_pair():
    """The single-image measures through the evaluator (structural analogy's table): one image a domain;
    the input itself keeps all structure, the target image itself has the target's patches exactly."""
    from datamodules.single_pair import SinglePair
    from lit_i2i.metrics import patch as pm

    dm = SinglePair(a="chelsea", b="coffee", size=32)
    names = ["swd", "coherence", "completeness", "ssim_lowpass", "corr_lowpass", "corr_edges"]
    a, b = dm.eval_dataset("A")[0]["image"][None], dm.eval_dataset("B")[0]["image"][None]

    class Target(Identity):  # every output is the other image
        def translate(self, x, direction="AtoB", reference=None):
            return (b if direction == "AtoB" else a).expand_as(x)

    same = evaluate_model(Identity(), dm, names, ["AtoB", "BtoA"])
    assert same["ssim_lowpass_AtoB"] == pytest.approx(1.0) and same["corr_edges_BtoA"] == pytest.approx(1.0)
    assert same["swd_AtoB"] == pytest.approx(pm.swd_pyramid(a, b)["swd"]) and same["swd_AtoB"] > 0.1
    assert same["coherence_BtoA"] == pytest.approx(pm.patch_nn(b, a)["coherence"]) and same["coherence_BtoA"] > 0
    copy = evaluate_model(Target(), dm, names, ["AtoB"])
    assert copy["swd_AtoB"] == 0 and copy["coherence_AtoB"] == 0 and copy["completeness_AtoB"] == 0
    assert copy["ssim_lowpass_AtoB"] == pytest.approx(pm.structure_scores(b, a)["ssim_lowpass"])
    assert copy["ssim_lowpass_AtoB"] < 0.9
    with pytest.raises(UserError, match="at least 2"):  # a distribution metric still needs two images
        evaluate_model(Identity(), dm, ["swd", "style"], ["AtoB"], vgg_weights="random")
