"""The built-in digit classifiers: shipped weights, accuracy, API, version keying, deterministic training."""

from __future__ import annotations

import pytest
import torch

import lit_i2i.metrics.classifier as C
from lit_i2i.errors import UserError
from lit_i2i.metrics import load_digit_classifier
from lit_i2i.metrics.commands import train_classifier_main


@pytest.mark.parametrize("net", ["digits", "colored-digits", "accessory"])
def test_shipped_classifier_loads_frozen_and_reaches_95_percent(net):
    path = C.classifier_path(net, 0, train_if_missing=False)
    assert path.parent == C.ASSETS and path.stat().st_size < 300 * 1024
    model = load_digit_classifier(net, train_if_missing=False)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    x, y = C.labelled_set(net, "test")
    assert len(x) >= 360
    acc = C.accuracy(model, x, y)
    assert acc >= 0.95, (net, acc)
    assert abs(acc - model.info["test_accuracy"]) < 1e-9  # the number recorded at training time


def test_classifier_api_features_logits_and_any_input():
    model = load_digit_classifier("colored-digits")
    x = torch.rand(5, 3, 32, 32) * 2 - 1
    f, logits = model.features(x), model(x)
    assert f.shape == (5, model.num_features) and logits.shape == (5, 10)
    assert torch.allclose(model.head(f), logits)
    assert model(torch.rand(2, 1, 64, 64) * 2 - 1).shape == (2, 10)  # grey and larger images are adapted
    assert C.DIGIT_NET_FOR["no-accessory"] == "colored-digits"  # pixel-identical renders, the same reader
    with pytest.raises(UserError, match="unknown digit classifier"):
        load_digit_classifier("letters")


def test_mismatched_data_version_refuses_or_trains_into_cache(monkeypatch, tmp_path):
    monkeypatch.setattr(C, "DATA_VERSION", "999")
    monkeypatch.setenv("LIT_I2I_CACHE", str(tmp_path))
    with pytest.raises(UserError, match="train-classifier --domain digits"):
        C.classifier_path("digits", 0, train_if_missing=False)

    def fake_train(net, seed=0, epochs=None, verbose=True):
        return C.DigitClassifier(C.NUM_CLASSES[net]).eval(), {"data_version": "999", "arch_version": C.ARCH_VERSION,
                                                               "test_accuracy": 0.0}

    monkeypatch.setattr(C, "train_digit_classifier", fake_train)
    path = C.classifier_path("digits", 0)
    assert path == tmp_path / "classifiers" / "digit-digits-data999-arch1-seed0.pt" and path.is_file()
    assert C.classifier_path("digits", 0, train_if_missing=False) == path  # found in the cache next time


def test_training_is_deterministic_and_the_command_writes_the_file(monkeypatch, tmp_path, capsys):
    # a small recipe (256 digits, one seed per domain, one epoch) keeps this to seconds
    monkeypatch.setitem(C.RECIPES, "accessory", {"domains": {"no-accessory": [1], "accessory": [1]}, "repeats": 1,
                                                 "epochs": 1})
    real_indices = C.indices
    monkeypatch.setattr(C, "indices", lambda half, split, domain=None: real_indices(half, split, domain)[:256])
    model, info = C.train_digit_classifier("accessory", seed=3, verbose=False)
    assert train_classifier_main(["--domain", "accessory", "--seed", "3", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out
    saved = torch.load(tmp_path / C.asset_name("accessory", 3), weights_only=True)
    assert saved["info"]["test_accuracy"] == info["test_accuracy"]
    for k, v in model.state_dict().items():
        assert torch.equal(saved["state_dict"][k].to(v.dtype), v.half().to(v.dtype) if v.is_floating_point() else v), k


def test_real_dataset_classifiers_are_trained_from_the_files_never_silently(monkeypatch, tmp_path, capsys):
    from data_factory import make_mnist

    monkeypatch.setenv("LIT_I2I_CACHE", str(tmp_path / "cache"))
    with pytest.raises(UserError, match="train-classifier --domain mnist --root"):
        load_digit_classifier("mnist")
    with pytest.raises(UserError, match="--root"):
        train_classifier_main(["--domain", "mnist"])
    root = tmp_path / "digits"
    make_mnist(root, n_train=40, n_test=20)
    assert train_classifier_main(["--domain", "mnist", "--root", str(root), "--epochs", "1"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    clf = load_digit_classifier("mnist")  # found in the cache now, as the metrics will find it
    assert clf.info["test_images"] == 20 and clf.info["data_version"] == "real1"
    assert C.DIGIT_NET_FOR["svhn"] == "svhn"
