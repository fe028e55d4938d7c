"""Built-in data: deterministic, disjoint unpaired halves, fixed test split, accessory masks."""

import numpy as np
import pytorch_lightning as pl
import pytest
import torch

from datamodules.builtin import (ACCESSORY_COLS, ACCESSORY_ROWS, MIN_CONTRAST, PALETTE, PHOTOS, BuiltinDigits, indices,
                                 photo, render)
from lit_i2i.errors import UserError


def test_halves_are_disjoint_and_cover_all_digits():
    a = np.concatenate([indices("A", "train"), indices("A", "test")])
    b = np.concatenate([indices("B", "train"), indices("B", "test")])
    assert not set(a) & set(b)
    assert len(a) + len(b) == 1797
    assert not set(indices("A", "train")) & set(indices("A", "test"))
    assert np.array_equal(indices("A", "val"), indices("A", "test"))


def test_render_is_deterministic_and_independent_of_batch():
    idx = indices("B", "train")[:6]
    x1, y1, _ = render("colored-digits", idx, seed=3)
    x2, _, _ = render("colored-digits", idx[2:4], seed=3)
    assert torch.equal(x1[2:4], x2)
    x3, _, _ = render("colored-digits", idx, seed=4)
    assert not torch.equal(x1, x3)
    assert x1.dtype == torch.uint8 and x1.shape == (6, 3, 32, 32)


def test_colored_digits_have_contrast_and_digits_are_gray():
    d, _, _ = render("digits", indices("A", "train")[:20])
    assert torch.equal(d[:, 0], d[:, 1]) and torch.equal(d[:, 1], d[:, 2])
    c, _, _ = render("colored-digits", indices("B", "train")[:50])
    luma = (0.299 * c[:, 0] + 0.587 * c[:, 1] + 0.114 * c[:, 2]).float() / 255
    spread = luma.flatten(1).quantile(0.95, dim=1) - luma.flatten(1).quantile(0.05, dim=1)
    assert (spread > MIN_CONTRAST * 0.6).all()


def test_palette_digits_use_the_four_schemes():
    idx = indices("B", "train")[:200]
    p, labels, _ = render("palette-digits", idx)
    assert torch.equal(labels, render("colored-digits", idx)[1])
    corner = p[:, :, :2, :2].float().mean((2, 3)) / 255  # the background (digits never reach the corner)
    schemes = torch.tensor([bg for _, bg in PALETTE])
    nearest = torch.cdist(corner, schemes).min(1)
    assert (nearest.values < 0.12).all()  # every background is one of the four (plus the noise, std 0.04)
    assert torch.pdist(schemes).min() > 0.3  # and the four are far apart (navy vs green: 0.39)
    assert len(set(nearest.indices.tolist())) == 4  # and every scheme occurs
    for fg, bg in PALETTE:
        lum = [0.299 * c_[0] + 0.587 * c_[1] + 0.114 * c_[2] for c_ in (fg, bg)]
        assert abs(lum[0] - lum[1]) >= MIN_CONTRAST


def test_palette_digits_are_read_by_the_colored_digit_classifier():
    from lit_i2i.metrics.classifier import DIGIT_NET_FOR, accuracy, load_digit_classifier

    assert DIGIT_NET_FOR["palette-digits"] == "colored-digits"
    x, y, _ = render("palette-digits", indices("B", "test"))
    assert accuracy(load_digit_classifier("colored-digits"), x.float() / 127.5 - 1, y) > 0.95  # measured 0.989


def test_accessory_mask_is_exact_and_only_place_that_changes():
    idx = indices("A", "test")[:8]
    with_acc, labels, mask = render("accessory", idx)
    without, labels2, mask0 = render("no-accessory", idx)
    assert torch.equal(labels, labels2) and mask0.sum() == 0
    r0, r1 = ACCESSORY_ROWS
    c0, c1 = ACCESSORY_COLS
    assert mask[:, :, r0:r1, c0:c1].eq(1).all() and mask.sum() == 8 * (r1 - r0) * (c1 - c0)
    diff = (with_acc.int() - without.int()).abs().sum(1, keepdim=True) > 0
    assert not (diff & (mask == 0)).any()  # outside the mask both renders are identical


def test_datamodule_batches_unpaired_and_paired():
    pl.seed_everything(0)
    dm = BuiltinDigits(batch_size=8)
    dm.setup("fit")
    b = next(iter(dm.train_dataloader()))
    assert b["A"].shape == b["B"].shape == (8, 3, 32, 32)
    assert b["A"].min() >= -1 and b["A"].max() <= 1 and b["A"].dtype == torch.float32
    assert b["A_label"].shape == (8,) and all(p.startswith("builtin://digits/") for p in b["A_path"])
    assert len(dm.dataset("train")) == max(len(indices("A", "train")), len(indices("B", "train")))
    paired = BuiltinDigits(paired=True, batch_size=4)
    pb = next(iter(paired.train_dataloader()))
    assert "label" in pb and pb["A"].shape == pb["B"].shape
    # paired: the same digit in both domains -> where A is bright, B differs from its background
    ev = paired.eval_dataset("A", "test")
    assert len(ev) == len(indices("all", "test"))


def test_unknown_domain_and_photo_are_user_errors():
    with pytest.raises(UserError, match="data.a"):
        BuiltinDigits(a="letters")
    with pytest.raises(UserError, match="astronaut"):
        photo("nope")


def test_photos_are_uint8_rgb():
    for name in PHOTOS:
        p = photo(name, size=64)
        assert p.dtype == torch.uint8 and p.shape == (3, 64, 64)
