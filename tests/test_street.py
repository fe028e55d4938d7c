"""street-digits: deterministic rendering, disjoint halves, the batch contract, its shipped classifier
and the domain gap to the handwritten digits that it exists for."""

import numpy as np
import pytest
import torch

from datamodules import street
from datamodules.builtin import BuiltinDigits, domain_source, indices, render
from lit_i2i.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread")


def test_rendering_is_deterministic_per_image_and_seed(tmp_path, monkeypatch):
    monkeypatch.setenv("LIT_I2I_CACHE", str(tmp_path))
    idx = np.array([3, 17, 42, 99])
    x1, y1 = street.render(idx, seed=0)
    x2, y2 = street.render(idx[1:3], seed=0)
    assert torch.equal(x1[1:3], x2) and torch.equal(y1[1:3], y2)  # independent of the other images
    x3, _ = street.render(idx, seed=1)
    assert not torch.equal(x1, x3)
    assert x1.dtype == torch.uint8 and x1.shape == (4, 3, 32, 32) and set(y1.tolist()) <= set(range(10))


def test_halves_and_splits_are_disjoint_with_fixed_sizes():
    a = set(street.indices("A", "train")) | set(street.indices("A", "test"))
    b = set(street.indices("B", "train")) | set(street.indices("B", "test"))
    assert not a & b and len(street.indices("A", "train")) == 10_000 and len(street.indices("B", "test")) == 2_000
    assert np.array_equal(indices("A", "val", "street-digits"), street.indices("A", "test"))
    assert len(street.indices("all", "test")) == 4_000


def test_images_are_coloured_cluttered_and_labels_balanced():
    x, y = street.render(np.arange(300), seed=0, cache=False)
    counts = torch.bincount(y, minlength=10)
    assert counts.min() > 15  # roughly uniform over the 10 digits
    f = x.float() / 255
    chroma = (f.max(1).values - f.min(1).values).mean()
    assert chroma > 0.08  # colour, unlike the grey digits
    luma = 0.299 * f[:, 0] + 0.587 * f[:, 1] + 0.114 * f[:, 2]
    assert (luma.flatten(1).std(1) > 0.05).float().mean() > 0.95  # a visible digit on nearly every image


def test_datamodule_batches_and_paired_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("LIT_I2I_CACHE", str(tmp_path))
    monkeypatch.setattr(street, "SPLITS", {k: (lo, lo + 24) for k, (lo, _) in street.SPLITS.items()})
    domain_source.cache_clear()
    try:
        dm = BuiltinDigits(a="digits", b="street-digits", batch_size=8)
        dm.setup("fit")
        b = next(iter(dm.train_dataloader()))
        assert b["A"].shape == b["B"].shape == (8, 3, 32, 32) and b["B"].min() >= -1 and b["B"].max() <= 1
        assert all(p.startswith("builtin://street-digits/") for p in b["B_path"])
        assert dm.builtin_domain("B") == "street-digits" and len(dm.eval_dataset("B", "test")) == 24
        imgs, labels, masks = render("street-digits", [20_000, 20_001])
        assert torch.equal(imgs, street.render([20_000, 20_001])[0]) and masks.sum() == 0
    finally:
        domain_source.cache_clear()
    with pytest.raises(UserError, match="paired"):
        BuiltinDigits(a="digits", b="street-digits", paired=True)


def test_the_shipped_classifier_reads_street_digits_but_not_handwritten_ones():
    from lit_i2i.metrics import load_digit_classifier
    from lit_i2i.metrics.classifier import accuracy, asset_name, classifier_path

    path = classifier_path("street-digits", train_if_missing=False)
    assert path.name == asset_name("street-digits") and path.parent.name == "assets"  # shipped, not trained now
    clf = load_digit_classifier("street-digits", train_if_missing=False)
    assert clf.info["test_accuracy"] >= 0.95 and clf.info["test_images"] == 4_000
    x, y = street.render(street.indices("all", "test")[:300], seed=0, cache=False)
    assert accuracy(clf, x, y) >= 0.9
    # the identity row of the digit claims: untranslated handwritten digits read far worse than the
    # colored-digits classifier reads them (0.99); measured 0.68 (README)
    d, dy, _ = render("digits", indices("all", "test"))
    assert accuracy(clf, d, dy) < 0.8
