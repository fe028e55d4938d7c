"""The CelebA attribute classifier (lit-i2i train-classifier --celeba): trains on the train partition of a
generated CelebA whose attribute is visible, loads with weights_only, and serves attr_prob."""

import numpy as np
import pytest
import torch
from PIL import Image

from data_factory import make_celeba, make_partition
from lit_i2i.errors import UserError
from lit_i2i.metrics.attribute_classifier import (AttributeClassifier, load_attribute_classifier,
                                                  save_attribute_classifier, train_attribute_classifier)

pytestmark = pytest.mark.usefixtures("one_thread")


def visible_celeba(root, n=60):
    """CelebA files in the real layout; an image with Eyeglasses has a bright band across its upper half."""
    table = make_celeba(root, n)
    make_partition(root, n)
    rng = np.random.default_rng(0)
    for name, attrs in table.items():
        img = rng.integers(0, 90, (218, 178, 3), dtype=np.uint8)
        if attrs["Eyeglasses"]:
            img[70:110] = 230
        Image.fromarray(img).save(root / "img_align_celeba" / name)
    return table


def test_trains_on_the_train_partition_and_reads_the_attribute(tmp_path, capsys):
    from lit_i2i.cli import main

    visible_celeba(tmp_path / "celeba")
    out = tmp_path / "clf.pt"
    assert main(["train-classifier", "--celeba", str(tmp_path / "celeba"), "--attribute", "Eyeglasses",
                 "--image_size", "32", "--epochs", "8", "--batch_size", "8", "--lr", "3e-3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and str(out) in printed
    model = load_attribute_classifier(out)
    assert model.info["train_images"] == 36 and model.info["test_images"] == 12  # partition 0,0,0,1,2 of 60
    assert model.info["test_accuracy"] >= 0.9, model.info
    # the metrics' path: one logit, attr_prob through the suite's attribute scores
    from lit_i2i.metrics.evaluate import ModuleExtractor
    from lit_i2i.metrics.scores import attribute_scores

    x = torch.full((4, 3, 64, 64), -0.6)
    x[:2, :, 20:32] = 0.8  # two with the band, at another size than the training size
    logits = ModuleExtractor(model, str(out))(x)["logits"]
    assert logits.shape == (4, 1)
    p_has, _ = attribute_scores(logits[:2], 1)
    p_not, _ = attribute_scores(logits[2:], 0)
    assert p_has > 0.5 and p_not > 0.5
    # nothing is overwritten
    assert main(["train-classifier", "--celeba", str(tmp_path / "celeba"), "--attribute", "Eyeglasses",
                 "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


def test_bad_input_is_one_line(tmp_path, capsys):
    from lit_i2i.cli import main

    assert main(["train-classifier", "--celeba", str(tmp_path / "missing"), "--attribute", "Eyeglasses"]) == 2
    assert main(["train-classifier", "--attribute", "Eyeglasses"]) == 2
    visible_celeba(tmp_path / "celeba", n=10)
    assert main(["train-classifier", "--celeba", str(tmp_path / "celeba"), "--attribute", "Eyeglases",
                 "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Eyeglasses" in err  # did you mean


def test_the_file_is_weights_only_and_a_foreign_file_is_refused(tmp_path):
    model = AttributeClassifier(32, "Smiling")
    p = save_attribute_classifier(model, {"attribute": "Smiling", "image_size": 32}, tmp_path / "c.pt")
    back = load_attribute_classifier(p)
    assert back.image_size == 32 and all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                                          back.state_dict().values()))
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="not a lit-i2i attribute classifier"):
        load_attribute_classifier(tmp_path / "other.pt")
    with pytest.raises(UserError, match="not found"):
        load_attribute_classifier(tmp_path / "none.pt")


def test_train_function_checks_its_numbers(tmp_path):
    visible_celeba(tmp_path / "celeba", n=10)
    with pytest.raises(UserError, match="--epochs"):
        train_attribute_classifier(str(tmp_path / "celeba"), "Eyeglasses", epochs=0)
