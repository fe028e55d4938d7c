"""Ground-truth metrics of the built-in accessory digits (l1_truth, l1_outside, colour_error, mask_iou,
mask_iou_best, mask_area), per-direction references and translate() options: known answers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from datamodules.builtin import BuiltinDigits, accessory_box, indices, render
from lit_i2i.errors import UserError
from lit_i2i.metrics import evaluate_model
from lit_i2i.metrics.evaluate import Evaluator

N = 24  # evaluation images per domain
TRUTH = ["l1_truth", "l1_outside", "colour_error"]


class Identity(nn.Module):
    directions = ("AtoB", "BtoA")

    def __init__(self):
        super().__init__()
        self.calls = []

    def translate(self, x, direction="AtoB", reference=None, **kw):
        self.calls.append((direction, reference is not None, kw))
        return x


class BoxMask(Identity):
    """Identity whose mask is the bar's place on every image (right on B, wrong on A)."""

    def mask(self, x):
        return accessory_box(len(x)) * 0.9


@pytest.fixture(scope="module")
def dm():
    return BuiltinDigits(a="no-accessory", b="accessory")


def f(x):
    return x.float() / 127.5 - 1


def test_ground_truth_of_the_accessory_pair(dm):
    ib = indices("B", "test")[:5]
    gt = dm.ground_truth("B", "A", "test", list(range(5)))
    assert torch.allclose(gt["image"], f(render("no-accessory", ib)[0]), atol=1e-6)
    assert torch.equal(gt["region"], render("accessory", ib)[2]) and torch.equal(gt["region"], accessory_box(5))
    a = torch.stack([dm.eval_dataset("A")[i]["image"] for i in range(3)])
    b = torch.stack([dm.eval_dataset("B")[i]["image"] for i in (4, 0, 1)])
    assert torch.allclose(a, f(render("no-accessory", indices("A", "test")[:3])[0]), atol=1e-6)
    add = dm.ground_truth("A", "B", "test", [0, 1, 2], [4, 0, 1])
    m = accessory_box(3).bool().expand(-1, 3, -1, -1)
    assert torch.equal(add["image"][~m], a[~m])  # unchanged outside the bar, bit for bit
    colour = ((b + 1) / 2 * accessory_box(3)).sum((2, 3)) / accessory_box(3).sum((2, 3))
    assert torch.allclose((add["image"][:, :, 3, 10] + 1) / 2, colour, atol=1e-6)  # the reference's bar colour
    assert dm.ground_truth("A", "B", "test", [0])["image"] is None  # no reference: the colour is undetermined
    assert BuiltinDigits().ground_truth("A", "B", "test", [0]) is None  # digits -> colored digits: none


def test_identity_known_answers(dm):
    model = BoxMask()
    r = evaluate_model(model, dm, [*TRUTH, "mask_iou", "mask_iou_best", "mask_area"], ["BtoA", "AtoB"],
                       max_samples=N, reference=["AtoB"])
    b = torch.stack([dm.eval_dataset("B")[i]["image"] for i in range(N)])
    a = torch.stack([dm.eval_dataset("A")[i]["image"] for i in range(N)])
    clean = dm.ground_truth("B", "A", "test", list(range(N)))["image"]
    assert r["l1_outside_BtoA"] == pytest.approx(0.0) and r["l1_outside_AtoB"] == pytest.approx(0.0)
    assert r["l1_truth_BtoA"] == pytest.approx(float((b - clean).abs().mean() / 2), rel=1e-5)
    inside = lambda im: ((im + 1) / 2 * accessory_box(N)).sum((2, 3)) / accessory_box(N).sum((2, 3))  # noqa: E731
    assert r["colour_error_BtoA"] == pytest.approx(float((inside(b) - inside(clean)).abs().mean()), rel=1e-5)
    assert r["colour_error_AtoB"] == pytest.approx(float((inside(a) - inside(b)).abs().mean()), rel=1e-5)
    assert r["l1_truth_AtoB"] > 0
    # the mask is the bar exactly on B (IoU 1 at every threshold below 0.9) and marks the bar's area on A
    assert r["mask_iou_BtoA"] == 1.0 and r["mask_iou_best_BtoA"] == 1.0 and r["mask_iou_best_threshold_BtoA"] == 0.05
    assert r["mask_area_BtoA"] == pytest.approx(4 * 20 / 1024)
    # the reference went to AtoB only
    assert {d: ref for d, ref, _ in model.calls} == {"BtoA": False, "AtoB": True}


def test_mask_threshold_and_translate_options(dm):
    model = BoxMask()
    r = evaluate_model(model, dm, ["mask_iou", "l1_truth"], ["BtoA", "AtoB"], max_samples=N,
                       mask_threshold=0.95, translate={"BtoA": {"mode": "intersection"}})
    assert r["mask_iou_BtoA"] == 0.0  # 0.9 is below the threshold: nothing marked
    assert "l1_truth_AtoB" not in r  # addition without a reference: no exact answer
    assert all(kw == {"mode": "intersection"} for d, _, kw in model.calls if d == "BtoA")
    assert all(kw == {} for d, _, kw in model.calls if d == "AtoB")


def test_refusals(dm):
    with pytest.raises(UserError, match="exact answer"):
        Evaluator(["l1_truth"], ["AtoB"]).plan(Identity(), BuiltinDigits())
    with pytest.raises(UserError, match="has no mask"):
        Evaluator(["mask_iou"], ["BtoA"]).plan(Identity(), dm)
    with pytest.raises(UserError, match="reference"):
        Evaluator(["l1_truth"], reference="AtoB")
    with pytest.raises(UserError, match="mask_threshold"):
        Evaluator(["mask_iou"], mask_threshold=1.5)
