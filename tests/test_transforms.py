"""Preprocessing against the reference code (junyanz/pytorch-CycleGAN-and-pix2pix ``data/base_dataset.py``)."""

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.transforms import apply, build_transform
from lit_i2i.errors import UserError


def _img(h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)


def _pil_bicubic(x: torch.Tensor, w: int, h: int) -> torch.Tensor:
    im = Image.fromarray(x.permute(1, 2, 0).numpy()).resize((w, h), Image.BICUBIC)
    return torch.from_numpy(np.asarray(im)).permute(2, 0, 1)


def _to_uint8(y):
    return ((y + 1) * 127.5).round().to(torch.uint8)


def test_test_time_resize_and_crop_resizes_the_whole_image_to_the_crop_size():
    x = _img(300, 200)
    out = apply(build_transform("resize_and_crop", 286, 256, train=False), x)
    assert out.shape == (3, 256, 256)
    # the reference's TestOptions sets load_size = crop_size: a bicubic resize of the whole image, no crop
    ref = _pil_bicubic(x, 256, 256).int()
    assert (_to_uint8(out).int() - ref).abs().float().mean() < 1.5
    train = apply(build_transform("resize_and_crop", 286, 256, train=True, flip=False), x)
    assert train.shape == (3, 256, 256)


def test_resizing_is_bicubic_like_the_reference():
    x = _img(64, 64)
    out = _to_uint8(apply(build_transform("resize", 32, 48, train=False), x)).int()
    bicubic, bilinear = _pil_bicubic(x, 48, 48).int(), None
    im = Image.fromarray(x.permute(1, 2, 0).numpy()).resize((48, 48), Image.BILINEAR)
    bilinear = torch.from_numpy(np.asarray(im)).permute(2, 0, 1).int()
    assert (out - bicubic).abs().float().mean() < (out - bilinear).abs().float().mean()
    assert (out - bicubic).abs().float().mean() < 1.5


def test_scale_width_floors_and_keeps_the_height_at_least_the_crop_size():
    # the reference: h = int(max(target * oh / ow, crop_size))
    assert apply(build_transform("scale_width", 100, 64, train=False, stride=1), _img(99, 200)).shape == (3, 64, 100)
    assert apply(build_transform("scale_width", 100, 32, train=False, stride=1), _img(99, 200)).shape == (3, 49, 100)
    t = build_transform("scale_width_and_crop", 100, 48, train=True, flip=False, stride=1)
    assert apply(t, _img(99, 200)).shape == (3, 48, 48)


def test_center_crop_resize_and_crop_is_uniits_celeba_pipeline():
    x = _img(218, 178)
    t = build_transform("center_crop_resize_and_crop", 132, 128, train=True, center_crop=178, flip=False)
    assert apply(t, x).shape == (3, 128, 128)
    e = build_transform("center_crop_resize_and_crop", 132, 128, train=False, center_crop=178)
    same = build_transform("center_crop_resize", 132, 128, train=False, center_crop=178)
    assert torch.equal(apply(e, x), apply(same, x))  # at test: the whole 178 crop resized to 128


def test_blur_3x3_is_opencvs_fixed_gaussian_with_reflected_borders():
    from datamodules.transforms import Blur3x3

    x = torch.zeros(1, 3, 4, dtype=torch.uint8)
    x[0, 1, 1] = 160  # one bright pixel
    y = Blur3x3()(x)[0]
    k = np.array([0.25, 0.5, 0.25])
    expected = np.zeros((3, 4))
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            expected[1 + dy, 1 + dx] = 160 * k[dy + 1] * k[dx + 1]
    # BORDER_REFLECT_101: the pixel's mirror images across the edges add to the border rows
    expected[0, :] *= 2  # row 1 is mirrored into row -1, so row 0 sees it twice
    expected[2, :] *= 2
    expected[:, 0] *= 2
    assert torch.equal(y, torch.from_numpy(expected.round()).to(torch.uint8))
    t = build_transform("resize", 32, 16, train=False, blur=True)
    assert apply(t, _img(32, 32)).shape == (3, 16, 16)


def test_unpaired_folders_blur_only_the_named_domain(tmp_path):
    from data_factory import make_unpaired
    from datamodules.folders import UnpairedFolders

    root = make_unpaired(tmp_path / "d", 2, 2, size=(16, 16), n_test=2)
    plain = UnpairedFolders(str(root), preprocess="none", flip=False)
    blurred = UnpairedFolders(str(root), preprocess="none", flip=False, blur=["A"])
    assert not torch.equal(plain.eval_dataset("A")[0]["image"], blurred.eval_dataset("A")[0]["image"])
    assert torch.equal(plain.eval_dataset("B")[0]["image"], blurred.eval_dataset("B")[0]["image"])
    with pytest.raises(UserError, match="data.blur"):
        UnpairedFolders(str(root), blur=["C"])


def test_invert_flips_the_colours_with_its_probability():
    x = _img(8, 8)
    always = build_transform("none", crop_size=8, train=True, flip=False, stride=1, invert=1.0)
    assert torch.equal(_to_uint8(apply(always, x)), 255 - x)
    never = build_transform("none", crop_size=8, train=True, flip=False, stride=1, invert=0.0)
    assert torch.equal(_to_uint8(apply(never, x)), x)
    half = build_transform("none", crop_size=8, train=True, flip=False, stride=1, invert=0.5)
    torch.manual_seed(0)
    inverted = sum(torch.equal(_to_uint8(apply(half, x)), 255 - x) for _ in range(200))
    assert 70 < inverted < 130
    test_time = build_transform("none", crop_size=8, train=False, flip=False, stride=1, invert=1.0)
    assert torch.equal(_to_uint8(apply(test_time, x)), x)  # random ops only at training time
