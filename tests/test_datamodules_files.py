"""Tests of the file-based datamodules: folders, aligned pairs, multi-domain, one-shot, CelebA, single pair.

Tiny noise-image folders are written by ``data_factory`` into ``tmp_path``. Each datamodule is checked
for its batch contract (keys, shapes, float32 in [-1, 1], labels), its particular behaviour (joint
transforms, direction, fresh one-shot augmentations, label fractions, attribute expressions), its
determinism, a DistributedSampler split, and a UserError naming the path or option for bad input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DistributedSampler

from data_factory import (make_aligned, make_celeba, make_corrupt, make_folder, make_image, make_multidomain,
                          make_partition, make_two_folders, make_unpaired)
from datamodules.base import TranslationDataModule
from datamodules.builtin import domain_source
from datamodules.celeba import CelebAAttributes, parse_expression
from datamodules.folders import AlignedFolders, UnpairedFolders
from datamodules.multidomain import MultiDomainFolders
from datamodules.oneshot import OneShot
from datamodules.single_pair import SinglePair
from lit_i2i.errors import UserError

FACIAL_HAIR = "Male and (Mustache or Goatee or not No_Beard)"


def first_batch(dm: TranslationDataModule, stage: str = "fit") -> dict:
    dm.setup(stage)
    return next(iter(dm.train_dataloader()))


def assert_images(x: torch.Tensor, shape: tuple[int, ...]) -> None:
    assert x.dtype == torch.float32
    assert tuple(x.shape) == shape
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert x.min() < -0.5 and x.max() > 0.5  # noise images span the range: not all-constant


def raises_naming(*needles: str):
    """pytest.raises(UserError) whose message must contain every needle."""
    class _Ctx:
        def __enter__(self):
            self.ctx = pytest.raises(UserError)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            handled = self.ctx.__exit__(*exc)
            msg = str(self.info.value)
            for n in needles:
                assert str(n) in msg, f"{n!r} not in error message: {msg}"
            return handled
    return _Ctx()


def shards_cover(ds) -> None:
    """Two DistributedSampler shards (no shuffle) are disjoint and cover the dataset."""
    assert len(ds) % 2 == 0, "use an even length: the sampler pads odd ones with repeats"
    shards = [list(DistributedSampler(ds, num_replicas=2, rank=r, shuffle=False)) for r in (0, 1)]
    assert set(shards[0]).isdisjoint(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(len(ds)))
    return shards


# --------------------------------------------------------------------------------------------------
# UnpairedFolders
# --------------------------------------------------------------------------------------------------

def unpaired(root, **kw) -> UnpairedFolders:
    opts = dict(root=str(root), preprocess="resize_and_crop", load_size=20, crop_size=16, batch_size=2)
    return UnpairedFolders(**{**opts, **kw})


def test_unpaired_batch_contract(tmp_path):
    root = make_unpaired(tmp_path / "h2z", n_a=5, n_b=3, size=(24, 20))
    dm = unpaired(root)
    b = first_batch(dm)
    assert set(b) == {"A", "B", "A_path", "B_path", "A_label", "B_label"}
    assert_images(b["A"], (2, 3, 16, 16))
    assert_images(b["B"], (2, 3, 16, 16))
    assert all("trainA" in p for p in b["A_path"]) and all("trainB" in p for p in b["B_path"])
    assert b["A_label"].tolist() == [-1, -1]
    assert len(dm.dataset("train")) == 5  # the larger domain
    assert dm.name == "h2z" and dm.domains == ("A", "B")
    # evaluation: deterministic, center crop, from testA
    ev = dm.eval_dataset("A", "test")
    assert len(ev) == 2 and "testA" in ev[0]["path"]
    assert torch.equal(ev[0]["image"], ev[0]["image"])


def test_unpaired_random_pairing_over_epochs(tmp_path):
    root = make_unpaired(tmp_path / "d", n_a=6, n_b=6)
    ds = unpaired(root).dataset("train")
    pl.seed_everything(0)
    pairings = {tuple(ds[i]["B_path"] for i in range(6)) for _ in range(4)}
    assert len(pairings) > 1  # B is redrawn every epoch
    assert [Path(ds[i]["A_path"]).name for i in range(6)] == [f"{i:03d}.png" for i in range(6)]


def test_unpaired_val_falls_back_to_test_then_uses_val(tmp_path):
    root = make_unpaired(tmp_path / "d", 3, 3)
    dm = unpaired(root)
    assert all("testA" in str(f) for f in dm.eval_source("A", "val").files)
    root2 = make_unpaired(tmp_path / "d2", 3, 3, val=True)
    dm2 = unpaired(root2)
    assert all("valB" in str(f) for f in dm2.eval_source("B", "val").files)
    val = dm2.dataset("val")
    assert [val[i]["B_path"] for i in range(2)] == [val[i]["B_path"] for i in range(2)]  # no random pairing


def test_unpaired_channels_follow_config(tmp_path):
    root = make_unpaired(tmp_path / "d", 2, 2)
    make_image(root / "trainA" / "gray.png", (16, 16), seed=9, channels=1)
    gray = unpaired(root, channels=1).dataset("train")[0]
    assert gray["A"].shape[0] == 1 and gray["B"].shape[0] == 1
    rgb = unpaired(root, channels=3).dataset("train")
    assert rgb[2]["A"].shape[0] == 3 and rgb[2]["A_path"].endswith("gray.png")


def test_unpaired_deterministic_under_seed(tmp_path):
    root = make_unpaired(tmp_path / "d", 4, 4, size=(24, 24))
    dm = unpaired(root)

    def draw(seed):
        pl.seed_everything(seed)
        return first_batch(dm)

    b0, b0_again, b1 = draw(0), draw(0), draw(1)
    assert torch.equal(b0["A"], b0_again["A"]) and b0["B_path"] == b0_again["B_path"]
    assert not torch.equal(b0["A"], b1["A"]) or b0["B_path"] != b1["B_path"]


def test_unpaired_ddp_shards(tmp_path):
    root = make_unpaired(tmp_path / "d", 6, 3)
    ds = unpaired(root).dataset("train")
    shards = shards_cover(ds)
    a_paths = [{ds[i]["A_path"] for i in s} for s in shards]
    assert a_paths[0].isdisjoint(a_paths[1]) and len(a_paths[0] | a_paths[1]) == 6


def test_unpaired_bad_input(tmp_path):
    with raises_naming("data.root", tmp_path / "missing"):
        unpaired(tmp_path / "missing").check()
    root = make_unpaired(tmp_path / "d", 2, 2)
    for f in (root / "trainB").iterdir():
        f.unlink()
    with raises_naming("data.root", root / "trainB", "no images"):
        unpaired(root).check()
    (root / "trainB").rmdir()
    with raises_naming(root / "trainB", "not found"):
        unpaired(root).check()


def test_unpaired_missing_test_folder(tmp_path):
    root = make_unpaired(tmp_path / "d", 2, 2)
    for f in (root / "testA").iterdir():
        f.unlink()
    (root / "testA").rmdir()
    with raises_naming(root / "valA", root / "testA"):
        unpaired(root).setup("fit")  # validation needs valA or testA


def test_unpaired_checks_only_what_the_stage_reads(tmp_path):
    root = make_unpaired(tmp_path / "d", 2, 2)
    for d in ("trainA", "trainB"):
        for f in (root / d).iterdir():
            f.unlink()
        (root / d).rmdir()
    unpaired(root).setup("test")  # a test-only folder is enough to evaluate
    with raises_naming(root / "trainA"):
        unpaired(root).setup("fit")


def test_unpaired_corrupt_file_and_skip(tmp_path):
    root = make_unpaired(tmp_path / "d", 3, 2)
    bad = make_corrupt(root / "trainA" / "zzz_bad.png")
    with raises_naming(bad, "skip_bad_files"):
        unpaired(root).check()
    dm = unpaired(root, skip_bad_files=True)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        dm.check()
    assert bad not in dm.eval_source("A", "train").files and len(dm.eval_source("A", "train")) == 3


def test_unpaired_too_small_for_crop_and_bad_options(tmp_path):
    root = make_unpaired(tmp_path / "d", 2, 2, size=(16, 16))
    small = make_image(root / "trainB" / "small.png", (10, 30))
    with raises_naming(small, "crop size"):
        unpaired(root, preprocess="crop", crop_size=12).check()
    unpaired(root, preprocess="resize_and_crop", load_size=20, crop_size=12).check()  # resized first: fine
    with raises_naming("data.crop_size", "data.load_size"):
        unpaired(root, load_size=8, crop_size=16).check()
    with raises_naming("data.preprocess", "bogus"):
        unpaired(root, preprocess="bogus").check()
    with raises_naming("data.channels"):
        unpaired(root, channels=2).check()


# --------------------------------------------------------------------------------------------------
# AlignedFolders
# --------------------------------------------------------------------------------------------------

def aligned(root, **kw) -> AlignedFolders:
    opts = dict(root=str(root), preprocess="resize_and_crop", load_size=20, crop_size=12, batch_size=2)
    return AlignedFolders(**{**opts, **kw})


def test_aligned_batch_and_joint_transform(tmp_path):
    root = make_aligned(tmp_path / "facades", 4, size=16, identical=True)
    dm = aligned(root)
    b = first_batch(dm)
    assert {"A", "B", "A_path", "B_path"} <= set(b)
    assert_images(b["A"], (2, 3, 12, 12))
    assert b["A_path"] == b["B_path"]
    ds = dm.dataset("train")
    pl.seed_everything(0)
    crops = set()
    for _ in range(6):
        item = ds[0]
        assert torch.equal(item["A"], item["B"])  # identical halves stay identical: one crop and flip
        crops.add(item["A"].sum().item())
    assert len(crops) > 1  # the crop/flip is random


def test_aligned_halves_differ_and_direction_swaps(tmp_path):
    root = make_aligned(tmp_path / "facades", 2, size=16)
    ab = aligned(root, preprocess="none", stride=1)
    ba = aligned(root, preprocess="none", stride=1, direction="BtoA")
    xa, _, pa = ab.eval_source("A", "test")[0]
    xb, _, pb = ab.eval_source("B", "test")[0]
    assert xa.shape == (3, 16, 16) and pa == pb and not torch.equal(xa, xb)
    assert torch.equal(ba.eval_source("A", "test")[0][0], xb)
    assert torch.equal(ba.eval_source("B", "test")[0][0], xa)
    v_ab, v_ba = ab.dataset("val")[1], ba.dataset("val")[1]
    assert torch.equal(v_ab["A"], v_ba["B"]) and torch.equal(v_ab["B"], v_ba["A"])
    assert not torch.equal(v_ab["A"], v_ab["B"])


def test_aligned_two_folders_layout(tmp_path):
    root = make_two_folders(tmp_path / "pairs", 4, size=16, identical=True)
    dm = aligned(root)
    assert dm.resolved_layout() == "two_folders"
    b = first_batch(dm)
    assert_images(b["A"], (2, 3, 12, 12))
    assert torch.equal(b["A"], b["B"])
    assert [Path(p).name for p in b["A_path"]] == [Path(p).name for p in b["B_path"]]
    assert all("trainA" in p for p in b["A_path"]) and all("trainB" in p for p in b["B_path"])
    shards_cover(dm.dataset("train"))


def test_aligned_ddp_shards(tmp_path):
    root = make_aligned(tmp_path / "f", 4, size=16)
    ds = aligned(root).dataset("train")
    shards = shards_cover(ds)
    paths = [{ds[i]["A_path"] for i in s} for s in shards]
    assert paths[0].isdisjoint(paths[1]) and len(paths[0] | paths[1]) == 4


def test_aligned_bad_width(tmp_path):
    root = make_aligned(tmp_path / "f", 2, size=16)
    wide = make_image(root / "train" / "wide.png", (40, 16))
    with raises_naming(wide, "twice"):
        aligned(root).check()


def test_aligned_unmatched_names(tmp_path):
    root = make_two_folders(tmp_path / "p", 3, size=16)
    make_image(root / "trainA" / "lonely.png", (16, 16))
    make_image(root / "trainB" / "orphan.png", (16, 16))
    with raises_naming("lonely.png", "orphan.png", "data.root", root / "trainA"):
        aligned(root).check()


def test_aligned_pair_size_mismatch_and_small_halves(tmp_path):
    root = make_two_folders(tmp_path / "p", 2, size=16)
    make_image(root / "trainB" / "000.png", (20, 20))
    with raises_naming(root / "trainA" / "000.png", root / "trainB" / "000.png"):
        aligned(root).check()
    combined = make_aligned(tmp_path / "c", 2, size=10)
    with raises_naming(combined / "train" / "000.png", "each half", "crop size"):
        aligned(combined, preprocess="crop", crop_size=12).check()


def test_aligned_bad_layout_and_options(tmp_path):
    (tmp_path / "empty").mkdir()
    with raises_naming("data.root", tmp_path / "empty", "trainA"):
        aligned(tmp_path / "empty").check()
    root = make_aligned(tmp_path / "f", 2, size=16)
    with raises_naming("data.direction"):
        aligned(root, direction="AB").check()
    with raises_naming("data.layout"):
        aligned(root, layout="side_by_side").check()
    with raises_naming("data.root", root / "trainA"):
        aligned(root, layout="two_folders").check()


# --------------------------------------------------------------------------------------------------
# MultiDomainFolders
# --------------------------------------------------------------------------------------------------

DOMAINS = ["dog", "cat", "wild"]


def multidomain(root, **kw) -> MultiDomainFolders:
    opts = dict(root=str(root), preprocess="resize", crop_size=16, batch_size=4)
    return MultiDomainFolders(**{**opts, **kw})


def test_multidomain_batch_labels_and_eval(tmp_path):
    root = make_multidomain(tmp_path / "afhq", DOMAINS, n=4)
    dm = multidomain(root)
    assert dm.domains == ("cat", "dog", "wild")  # sorted
    b = first_batch(dm)
    assert set(b) == {"image", "label", "path"}
    assert_images(b["image"], (4, 3, 16, 16))
    ds = dm.dataset("train")
    assert len(ds) == 12
    for i in range(len(ds)):
        item = ds[i]
        assert item["label"] == dm.domains.index(Path(item["path"]).parent.name)
    src = dm.eval_source("wild", "test")
    assert len(src) == 2 and all(f.parent == root / "test" / "wild" for f in src.files)
    assert all(src[i][1] == 2 for i in range(len(src)))
    sub = multidomain(root, domains=["wild", "cat"])
    assert sub.domains == ("wild", "cat") and len(sub.dataset("train")) == 8


def test_multidomain_second_view(tmp_path):
    root = make_multidomain(tmp_path / "afhq", DOMAINS, n=2, size=(20, 20))
    dm = multidomain(root, second_view=True)
    b = first_batch(dm)
    assert set(b) == {"image", "view", "label", "path"}
    assert_images(b["view"], (4, 3, 16, 16))
    assert not torch.equal(b["image"], b["view"])
    plain = multidomain(root, second_view=True, flip=False, view_rotation=0, view_translate=0, view_shear=0,
                        view_scale=None, view_color_jitter=0, view_hue=0).dataset("train")[0]
    assert torch.equal(plain["image"], plain["view"])  # every view augmentation switched off: same image
    assert "view" not in dm.dataset("val")[0]


def test_multidomain_unlabelled_and_label_fraction(tmp_path):
    root = make_multidomain(tmp_path / "afhq", DOMAINS, n=10)
    ds = multidomain(root, labelled=False).dataset("train")
    assert {ds[i]["label"] for i in range(len(ds))} == {-1}
    assert multidomain(root, labelled=False).dataset("val")[0]["label"] >= 0  # evaluation keeps labels

    def labels(**kw):
        return multidomain(root, **kw).dataset("train").source.labels

    half = labels(label_fraction=0.5, seed=3)
    for k in range(3):
        dom = half[10 * k:10 * (k + 1)]
        assert sum(lab == k for lab in dom) == 5 and sum(lab == -1 for lab in dom) == 5
    assert half == labels(label_fraction=0.5, seed=3)
    assert half != labels(label_fraction=0.5, seed=4)
    assert sum(lab >= 0 for lab in labels(label_fraction=0.01)) == 3  # at least one per domain
    assert -1 not in labels(label_fraction=1.0)


def test_random_datamodules_deterministic_under_seed(tmp_path):
    root = make_multidomain(tmp_path / "afhq", DOMAINS, n=2, size=(20, 20))
    modules = [multidomain(root, second_view=True), OneShot(a_color_jitter=0.3),
               aligned(make_aligned(tmp_path / "f", 2))]
    for dm in modules:
        ds = dm.dataset("train")

        def draw(seed):
            pl.seed_everything(seed)
            return [ds[i] for i in range(2)]

        first, again, other = draw(0), draw(0), draw(1)
        for key in ("view", "A", "B"):
            if key in first[0]:
                assert all(torch.equal(x[key], y[key]) for x, y in zip(first, again)), (type(dm), key)
                assert not all(torch.equal(x[key], y[key]) for x, y in zip(first, other)), (type(dm), key)


def test_multidomain_ddp_shards(tmp_path):
    root = make_multidomain(tmp_path / "afhq", DOMAINS, n=4)
    ds = multidomain(root).dataset("train")
    shards = shards_cover(ds)
    paths = [{ds[i]["path"] for i in s} for s in shards]
    assert paths[0].isdisjoint(paths[1]) and len(paths[0] | paths[1]) == 12


def test_multidomain_bad_input(tmp_path):
    root = make_multidomain(tmp_path / "afhq", DOMAINS, n=2)
    with raises_naming("data.domains", "zebra"):
        multidomain(root, domains=["cat", "zebra"]).check()
    with raises_naming("data.label_fraction"):
        multidomain(root, label_fraction=1.5).check()
    for f in (root / "test" / "dog").iterdir():
        f.unlink()
    with raises_naming(root / "test" / "dog", "no images"):
        multidomain(root).check()
    (root / "test" / "dog").rmdir()
    with raises_naming(root / "test" / "dog", "not found"):
        multidomain(root).check()
    with raises_naming(root / "test" / "dog"):
        multidomain(root).setup("fit")  # validation falls back to test, which lacks dog
    with raises_naming("data.root", tmp_path / "nope"):
        multidomain(tmp_path / "nope").check()


# --------------------------------------------------------------------------------------------------
# OneShot
# --------------------------------------------------------------------------------------------------

def test_oneshot_builtin_batch_and_fresh_augmentation():
    dm = OneShot(a_builtin="digits", b_builtin="colored-digits", batch_size=4)
    b = first_batch(dm)
    assert set(b) == {"A", "B", "A_path", "B_path", "A_label", "B_label"}
    assert_images(b["A"], (4, 3, 32, 32))
    assert_images(b["B"], (4, 3, 32, 32))
    assert len(set(b["A_path"])) == 1  # one shot
    ds = dm.dataset("train")
    assert len(ds) == len(domain_source("colored-digits", "B", "train", 0))
    draws = [ds[i]["A"] for i in range(4)] + [ds[0]["A"] for _ in range(3)]
    assert all(not torch.equal(draws[0], d) for d in draws[1:])  # every item re-augments the same image
    off = OneShot(augment=False).dataset("train")
    assert torch.equal(off[0]["A"], off[0]["A"]) and torch.equal(off[0]["A"], off[5]["A"])
    raw = off.a[0][0]  # no augmentation at all: the shot itself, only normalised
    assert torch.allclose(off[0]["A"], raw.float() / 127.5 - 1, atol=1e-6)


def test_oneshot_each_augmentation_can_be_switched_off():
    base = dict(a_scale=None, a_rotation=0.0, a_flip=False, a_color_jitter=0.0)
    assert torch.equal(*(OneShot(**base).dataset("train")[0]["A"] for _ in range(2)))
    for opt, value in (("a_scale", (0.5, 0.9)), ("a_rotation", 30.0), ("a_color_jitter", 0.5)):
        ds = OneShot(**{**base, opt: value}).dataset("train")
        pl.seed_everything(0)
        assert any(not torch.equal(ds[0]["A"], ds[0]["A"]) for _ in range(5)), opt


def test_oneshot_k_digits_from_seed_and_eval_on_held_out_test():
    dm = OneShot(k=3, seed=5)
    shots = dm.eval_source("A", "train")
    assert len(shots) == 3 and len({shots[i][2] for i in range(3)}) == 3
    assert [shots[i][2] for i in range(3)] == [OneShot(k=3, seed=5).eval_source("A", "train")[i][2] for i in range(3)]
    assert [shots[i][2] for i in range(3)] != [OneShot(k=3, seed=6).eval_source("A", "train")[i][2] for i in range(3)]
    test = dm.eval_source("A", "test")
    assert len(test) == len(domain_source("digits", "A", "test", 5)) > 100
    assert not {test[i][2] for i in range(len(test))} & {shots[i][2] for i in range(3)}  # unseen digits
    picked = OneShot(a_index=[0, 7]).eval_source("A", "train")
    pool = domain_source("digits", "A", "train", 0)
    assert [picked[i][2] for i in range(2)] == [pool[0][2], pool[7][2]]
    assert picked[1][1] == pool[7][1]  # the digit label travels (translation accuracy needs it)
    assert OneShot(k=2).dataset("train")[1]["A_path"] != OneShot(k=2).dataset("train")[0]["A_path"]


def test_oneshot_files_and_photo(tmp_path):
    a = make_image(tmp_path / "shot.png", (40, 30), seed=1)
    b_root = tmp_path / "B"
    make_folder(b_root, 6, (20, 20), seed=2)
    dm = OneShot(a_images=[str(a), "chelsea"], b_root=str(b_root), preprocess="resize", crop_size=16, batch_size=2)
    b = first_batch(dm)
    assert_images(b["A"], (2, 3, 16, 16))
    assert len(dm.dataset("train")) == 6  # = |B|
    assert {dm.dataset("train")[i]["A_path"] for i in range(2)} == {str(a), "builtin://photo/chelsea"}
    assert dm.eval_source("A", "test")[0][2] == str(a)  # no held-out A: the shots themselves
    assert dm.eval_source("B", "test").files == dm.eval_source("B", "train").files
    test_root = tmp_path / "Atest"
    make_folder(test_root, 3)
    dm2 = OneShot(a_images=[str(a)], a_test_root=str(test_root), b_root=str(b_root))
    assert len(dm2.eval_source("A", "test")) == 3


def test_oneshot_a_root_takes_positions_of_the_sorted_folder_as_the_official_start_and_max_items(tmp_path):
    """``a_root`` + ``a_index [0]`` is OST's image code ``--start 0 --max_items_A 1``: the first training file
    of A's folder sorted by name (not by creation order); ``k`` with ``shot_seed`` draws from the same list;
    only the chosen files are read; with no ``a_test_root`` A's evaluation images are the shots."""
    a_root, b_root = tmp_path / "trainA", tmp_path / "trainB"
    for name, seed in (("b.png", 1), ("a 2.png", 2), ("c.jpg", 3), ("a 10.png", 4)):  # written out of order
        make_image(a_root / name, (20, 20), seed=seed)
    make_corrupt(a_root / "d.png")  # never chosen below: never read
    make_folder(b_root, 5, (20, 20), seed=9)
    dm = OneShot(a_root=str(a_root), a_index=[0], b_root=str(b_root), preprocess="resize", crop_size=16, batch_size=2)
    b = first_batch(dm)
    assert_images(b["A"], (2, 3, 16, 16))
    assert set(b["A_path"]) == {str(a_root / "a 10.png")}  # sorted by name: "a 10" < "a 2" < "b" < "c" < "d"
    assert len(dm.dataset("train")) == 5 and dm.name == "oneshot-trainA2trainB"
    assert dm.eval_source("A", "test")[0][2] == str(a_root / "a 10.png")
    assert OneShot(a_root=str(a_root), a_index=[2], b_root=str(b_root)).eval_source("A", "train")[0][2] == str(
        a_root / "b.png")
    drawn = OneShot(a_root=str(a_root), k=2, shot_seed=3, b_root=str(b_root)).eval_source("A", "train")
    files = sorted(a_root.iterdir())
    expected = np.random.default_rng(3).choice(len(files), 2, replace=False)
    assert [drawn[i][2] for i in range(2)] == [str(files[j]) for j in expected]
    with raises_naming("data.a_index"):
        OneShot(a_root=str(a_root), a_index=[5], b_root=str(b_root)).check()
    with raises_naming("data.a_root", tmp_path / "none"):
        OneShot(a_root=str(tmp_path / "none"), b_root=str(b_root)).check()
    assert OneShot(a_images=["chelsea"], a_root=str(a_root), b_root=str(b_root)).a_root is None  # a_images first


def test_oneshot_bad_input(tmp_path):
    with raises_naming("data.a_images[0]", tmp_path / "nope.png"):
        OneShot(a_images=[str(tmp_path / "nope.png")]).check()
    bad = make_corrupt(tmp_path / "bad.png")
    with raises_naming("data.a_images[0]", bad):
        OneShot(a_images=[str(bad)]).check()
    with raises_naming("data.b_root", tmp_path / "noB"):
        OneShot(b_root=str(tmp_path / "noB")).check()
    with raises_naming("data.a_builtin", "mnist"):
        OneShot(a_builtin="mnist").check()
    with raises_naming("data.a_index"):
        OneShot(a_index=[100000]).check()
    with raises_naming("data.a_images", "data.a_builtin"):
        OneShot(a_builtin=None).check()


# --------------------------------------------------------------------------------------------------
# CelebAAttributes
# --------------------------------------------------------------------------------------------------

def celeba(root, **kw) -> CelebAAttributes:
    opts = dict(root=str(root), preprocess="center_crop_resize", center_crop=16, crop_size=12, batch_size=2)
    return CelebAAttributes(**{**opts, **kw})


def names(src) -> set[str]:
    return {f.name for f in src.files}


def expected(table, parts, pred, split_id) -> set[str]:
    return {f for f, attrs in table.items() if pred(attrs) and parts[f] == split_id}


def facial_hair(t):
    return t["Male"] and (t["Mustache"] or t["Goatee"] or not t["No_Beard"])


def test_celeba_selects_exact_files(tmp_path):
    table = make_celeba(tmp_path / "celeba", 60)
    parts = make_partition(tmp_path / "celeba", 60)
    dm = celeba(tmp_path / "celeba", a=FACIAL_HAIR, b="Male and not (Mustache or Goatee or not No_Beard)")
    for split, k in (("train", 0), ("val", 1), ("test", 2)):
        assert names(dm.eval_source("A", split)) == expected(table, parts, facial_hair, k)
        assert names(dm.eval_source("B", split)) == expected(
            table, parts, lambda t: t["Male"] and not facial_hair(t), k)
    glasses = celeba(tmp_path / "celeba", a="Eyeglasses", b="not Eyeglasses")
    assert names(glasses.eval_source("A", "train")) == expected(table, parts, lambda t: t["Eyeglasses"], 0)
    assert names(glasses.eval_source("B", "train")) == expected(table, parts, lambda t: not t["Eyeglasses"], 0)


def test_celeba_overlap_goes_to_a_and_batches(tmp_path):
    table = make_celeba(tmp_path / "celeba", 40)
    parts = make_partition(tmp_path / "celeba", 40)
    dm = celeba(tmp_path / "celeba", a="Male", b="Young")
    a, b = names(dm.eval_source("A", "train")), names(dm.eval_source("B", "train"))
    assert a == expected(table, parts, lambda t: t["Male"], 0)
    assert b == expected(table, parts, lambda t: t["Young"] and not t["Male"], 0)
    batch = first_batch(dm)
    assert set(batch) == {"A", "B", "A_path", "B_path", "A_label", "B_label"}
    assert_images(batch["A"], (2, 3, 12, 12))
    assert batch["A_label"].tolist() == [0, 0] and batch["B_label"].tolist() == [1, 1]
    plain = celeba(tmp_path / "celeba", a="Male", b="Young", preprocess="resize", crop_size=8)
    assert plain.eval_dataset("B", "test")[0]["image"].shape == (3, 8, 8)


def test_celeba_expression_parser():
    names_ = ["A", "B", "C"]
    v = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=bool)

    def ev(text):
        return parse_expression(text, names_, "data.a")(v).tolist()

    a, b, c = v[:, 0], v[:, 1], v[:, 2]
    assert ev("not A and B") == ((~a) & b).tolist()
    assert ev("A or B and C") == (a | (b & c)).tolist()
    assert ev("(A or B) and C") == ((a | b) & c).tolist()
    assert ev("NOT not A") == a.tolist()
    assert ev("A AND (not B OR C)") == (a & (~b | c)).tolist()
    for bad in ("A and", "(A or B", "A B", "and A", "A & B", ")", ""):
        with raises_naming("data.a"):
            ev(bad)


def test_celeba_no_partition_and_test_size(tmp_path):
    make_celeba(tmp_path / "celeba", 50)
    dm = celeba(tmp_path / "celeba", a="Smiling", b="not Smiling")
    with pytest.warns(UserWarning, match="80/10/10"):
        a_train = dm.eval_source("A", "train")
    total = sum(len(dm.eval_source(d, s)) for d in "AB" for s in ("train", "val", "test"))
    assert total == 50
    assert max(int(f.stem) for f in a_train.files) <= 40  # file order: the first 80% train
    assert min(int(f.stem) for f in dm.eval_source("B", "test").files) > 45
    first = celeba(tmp_path / "celeba", a="Smiling", b="not Smiling", test_size=3)
    test_a = first.eval_source("A", "test")
    assert len(test_a) == 3 and names(first.eval_source("A", "val")) == names(test_a)
    a_all = sorted(names(test_a) | names(first.eval_source("A", "train")))
    assert sorted(names(test_a)) == a_all[:3]


def test_celeba_ddp_shards(tmp_path):
    make_celeba(tmp_path / "celeba", 30)
    make_partition(tmp_path / "celeba", 30)
    dm = celeba(tmp_path / "celeba", a="Eyeglasses", b="not Eyeglasses")
    ds = dm.dataset("train")
    if len(ds) % 2:
        ds = torch.utils.data.Subset(ds, range(len(ds) - 1))
    shards_cover(ds)


def test_celeba_bad_input(tmp_path):
    root = tmp_path / "celeba"
    make_celeba(root, 20)
    make_partition(root, 20)
    with raises_naming("data.a", "Eyeglass", "Eyeglasses"):
        celeba(root, a="Eyeglass").check()
    with raises_naming("data.b", "No_Beard"):
        celeba(root, b="Male and not No_beard").check()
    with raises_naming("data.a", "&"):
        celeba(root, a="Male & Young").check()
    with raises_naming("data.b", "no image"):
        celeba(root, a="Male", b="Male").check()  # B empty once A's images are dropped
    (root / "img_align_celeba" / "000007.jpg").unlink()
    with raises_naming("000007.jpg", "skip_bad_files"):
        celeba(root).check()
    dm = celeba(root, skip_bad_files=True)
    with pytest.warns(UserWarning, match="skipped 1"):
        dm.check()
    with raises_naming("data.root", tmp_path / "none"):
        celeba(tmp_path / "none").check()
    (root / "list_attr_celeba.txt").unlink()
    with raises_naming("data.root", root / "list_attr_celeba.txt"):
        celeba(root).check()


def test_celeba_malformed_files(tmp_path):
    root = tmp_path / "celeba"
    make_celeba(root, 10)
    attr = root / "list_attr_celeba.txt"
    lines = attr.read_text().splitlines()
    attr.write_text("\n".join(lines[:5] + [lines[5].replace(" 1", " 2", 1)] + lines[6:]) + "\n")
    with raises_naming(attr, "line 6"):
        celeba(root).check()
    make_celeba(root, 10)
    (root / "list_eval_partition.txt").write_text("000001.jpg 0\n")
    with raises_naming(root / "list_eval_partition.txt", "000002.jpg"):
        celeba(root).check()
    small = celeba(root, center_crop=30)  # images are 20x24: a 30 center crop would pad
    make_partition(root, 10)
    with raises_naming("crop size", "img_align_celeba"):
        small.check()


# --------------------------------------------------------------------------------------------------
# SinglePair
# --------------------------------------------------------------------------------------------------

def test_single_pair_photos_and_files(tmp_path):
    dm = SinglePair(a="chelsea", b="coffee", size=24, steps_per_epoch=5, batch_size=2)
    b = first_batch(dm)
    assert {"A", "B", "A_path", "B_path"} <= set(b)
    assert_images(b["A"], (2, 3, 24, 24))
    assert b["A_path"] == ["builtin://photo/chelsea"] * 2 and b["B_path"] == ["builtin://photo/coffee"] * 2
    assert len(dm.dataset("train")) == 10 and len(dm.dataset("test")) == 1
    assert torch.equal(b["A"][0], b["A"][1])  # no augmentation: the same pair repeated
    f = make_image(tmp_path / "b.png", (30, 15), seed=3)
    kept = SinglePair(a="chelsea", b=str(f), size=24, keep_aspect=True)
    assert kept.eval_dataset("A")[0]["image"].shape == (3, 16, 24)  # chelsea is 451x300
    assert kept.eval_dataset("B")[0]["image"].shape == (3, 12, 24)
    assert SinglePair(a="camera", b="horse", size=8).dataset("train")[0]["B"].shape == (3, 8, 8)


def test_single_pair_bad_input(tmp_path):
    with raises_naming("data.a", tmp_path / "x.png"):
        SinglePair(a=str(tmp_path / "x.png")).check()
    bad = make_corrupt(tmp_path / "bad.jpg")
    with raises_naming("data.b", bad):
        SinglePair(b=str(bad)).check()
    with raises_naming("data.steps_per_epoch"):
        SinglePair(steps_per_epoch=0).check()
    with raises_naming("data.crop"):
        SinglePair(size=24, crop=32).check()
    with raises_naming("data.crop", "chelsea"):  # 451x300 kept at 24 px: 24x16
        SinglePair(size=24, crop=20, keep_aspect=True).check()


def test_single_pair_random_crops_for_training_whole_images_for_evaluation():
    dm = SinglePair(a="chelsea", b="coffee", size=24, crop=16, flip=True, steps_per_epoch=8, batch_size=4)
    whole = dm.eval_dataset("A")[0]["image"]
    assert whole.shape == (3, 24, 24)
    crops = torch.stack([dm.dataset("train")[i]["A"] for i in range(8)])
    assert crops.shape == (8, 3, 16, 16) and len({c.flatten()[:40].tolist().__repr__() for c in crops}) > 1
    windows = whole.unfold(1, 16, 1).unfold(2, 16, 1).permute(1, 2, 0, 3, 4).reshape(-1, 3, 16, 16)
    for c in crops:  # every crop is a window of the image, possibly mirrored
        assert any(torch.equal(c, w) or torch.equal(c, w.flip(-1)) for w in windows)


# --------------------------------------------------------------------------------------------------
# Configuration through jsonargparse (what LightningCLI does with data.class_path / data.init_args)
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls, args", [
    ("datamodules.folders.UnpairedFolders", {"root": "ROOT", "crop_size": 16}),
    ("datamodules.folders.AlignedFolders", {"root": "ROOT", "direction": "BtoA"}),
    ("datamodules.multidomain.MultiDomainFolders", {"root": "ROOT", "label_fraction": 0.1, "second_view": True,
                                                   "view_scale": [0.8, 1.0]}),
    ("datamodules.oneshot.OneShot", {"a_index": [3], "a_scale": None, "augment": False}),
    ("datamodules.celeba.CelebAAttributes", {"root": "ROOT", "a": FACIAL_HAIR, "test_size": 64}),
    ("datamodules.single_pair.SinglePair", {"a": "chelsea", "b": "ROOT/b.png", "keep_aspect": True}),
])
def test_configurable_from_yaml(cls, args, tmp_path):
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(TranslationDataModule, "data")
    init = {k: (v.replace("ROOT", str(tmp_path)) if isinstance(v, str) else v) for k, v in args.items()}
    cfg = parser.parse_object({"data": {"class_path": cls, "init_args": init}})
    dm = parser.instantiate_classes(cfg).data
    assert type(dm).__module__ + "." + type(dm).__name__ == cls
    for k, v in init.items():
        got = getattr(dm, k, None)
        if got is not None and not isinstance(got, Path):
            assert got == v or list(got) == list(v), k
