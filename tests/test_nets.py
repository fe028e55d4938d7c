"""Tests of lit_i2i.nets: the official CycleGAN/pix2pix architectures, shapes, counts and init."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from lit_i2i.nets import (
    NLayerDiscriminator,
    PixelDiscriminator,
    ResnetBlock,
    ResnetGenerator,
    UnetGenerator,
    count_params,
    define_D,
    define_G,
    init_weights,
    norm_layer,
    patchgan_receptive_field,
    receptive_field,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --------------------------------------------------------------------------- parameter counts
# Counts of the official networks (../shared/PAPER_TABLES.md). init_type="none" keeps these fast.
@pytest.mark.parametrize(
    "name,norm,in_ch,expected",
    [
        ("resnet_9blocks", "instance", 3, 11_378_179),
        ("resnet_6blocks", "instance", 3, 7_837_699),
        ("unet_256", "batch", 3, 54_413_955),
        ("unet_128", "batch", 3, 41_828_995),
    ],
)
def test_generator_param_counts(name, norm, in_ch, expected):
    assert count_params(define_G(name, in_ch, 3, 64, norm=norm, init_type="none")) == expected


@pytest.mark.parametrize(
    "norm,in_ch,expected",
    [("instance", 3, 2_764_737), ("batch", 6, 2_768_705)],  # CycleGAN D; pix2pix conditional D
)
def test_patchgan_param_counts(norm, in_ch, expected):
    assert count_params(define_D("basic", in_ch, 64, norm=norm, init_type="none")) == expected


def test_count_params_trainable_only():
    net = define_D("pixel", init_type="none")
    total = count_params(net)
    net.net[0].weight.requires_grad_(False)
    assert count_params(net, trainable_only=True) == total - net.net[0].weight.numel()


# --------------------------------------------------------------------------- shapes and range
def test_resnet_keeps_size_and_tanh_range():
    g = define_G("resnet_9blocks")
    x = torch.randn(1, 3, 64, 48) * 50  # large inputs push tanh into saturation
    with torch.no_grad():
        y = g(x)
    assert y.shape == (1, 3, 64, 48)
    assert y.abs().max() <= 1.0


def test_small_resnet_for_32px():
    g = define_G("resnet", 1, 3, ngf=32, n_blocks=3, n_down=2)
    blocks = [m for m in g.modules() if isinstance(m, ResnetBlock)]
    assert len(blocks) == 3
    with torch.no_grad():
        y = g(torch.randn(2, 1, 32, 32))
    assert y.shape == (2, 3, 32, 32)
    g3 = define_G("resnet", ngf=8, n_blocks=1, n_down=3)
    with torch.no_grad():
        assert g3(torch.randn(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_unet_256_shape():
    g = define_G("unet_256", norm="batch", use_dropout=True)
    with torch.no_grad():
        y = g(torch.randn(1, 3, 256, 256))
    assert y.shape == (1, 3, 256, 256)
    assert y.abs().max() <= 1.0


def test_unet_32_shape_and_channels():
    g = define_G("unet_32", 1, 3, ngf=16, norm="batch")
    assert g.num_downs == 5
    with torch.no_grad():
        y = g(torch.randn(2, 1, 32, 32) * 50)
    assert y.shape == (2, 3, 32, 32)
    assert y.abs().max() <= 1.0


def test_unet_name_gives_image_size():
    assert define_G("unet_64", ngf=8, init_type="none").num_downs == 6
    assert define_G("unet_128", ngf=8, init_type="none").num_downs == 7
    assert define_G("unet_256", ngf=8, init_type="none").num_downs == 8


def test_indivisible_sizes_raise():
    with pytest.raises(ValueError, match="divisible by 32"):
        define_G("unet_32", ngf=8)(torch.randn(1, 3, 48, 48))
    with pytest.raises(ValueError, match="divisible by 4"):
        define_G("resnet", ngf=8, n_blocks=1)(torch.randn(1, 3, 30, 32))


def test_patchgan_shape_256():
    d = define_D("basic")
    with torch.no_grad():
        y = d(torch.randn(1, 3, 256, 256))
    assert y.shape == (1, 1, 30, 30)
    assert y.min() < 0 < y.max()  # raw logits, no sigmoid


def test_n_layers_and_pixel_shapes():
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert define_D("n_layers", n_layers=1, ndf=8)(x).shape == (1, 1, 30, 30)
        assert define_D("n_layers", n_layers=2, ndf=8)(x).shape == (1, 1, 14, 14)
        assert define_D("pixel", ndf=8)(x).shape == (1, 1, 64, 64)
    # "basic" is n_layers 3 whatever n_layers says, as the official code
    assert define_D("basic", n_layers=5, init_type="none").n_layers == 3


# --------------------------------------------------------------------------- receptive field
def test_patchgan_receptive_field_is_70x70():
    # norm "none": instance norm would make every output depend on the whole image
    d = define_D("basic", norm="none")
    x = torch.randn(1, 3, 256, 256, requires_grad=True)
    y = d(x)
    assert y.shape[-2:] == (30, 30)
    y[0, 0, 15, 15].backward()
    nz = x.grad[0].abs().sum(0) != 0
    rows, cols = nz.any(1).nonzero().flatten(), nz.any(0).nonzero().flatten()
    top, left = int(rows.min()), int(cols.min())
    assert (int(rows.max()) - top + 1, int(cols.max()) - left + 1) == (70, 70)
    assert top > 0 and left > 0 and rows.max() < 255 and cols.max() < 255  # interior window
    assert nz[top : top + 70, left : left + 70].all()  # every pixel of the window counts
    assert int(nz.sum()) == 70 * 70
    assert patchgan_receptive_field(3) == 70


def test_receptive_field_helper_matches_formula():
    for n in (1, 2):
        d = define_D("n_layers", n_layers=n, ndf=4, norm="none")
        assert receptive_field(d, size=64) == (patchgan_receptive_field(n),) * 2
    assert patchgan_receptive_field(1) == 16 and patchgan_receptive_field(2) == 34
    assert receptive_field(define_D("pixel", ndf=4, norm="none"), size=16) == (1, 1)


# --------------------------------------------------------------------------- initialisation
def _convs(net):
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


def test_init_normal_statistics():
    g = define_G("resnet_6blocks", norm="batch", init_gain=0.02)
    w = torch.cat([m.weight.detach().flatten() for m in _convs(g)])
    assert abs(w.std().item() - 0.02) < 0.0005
    assert abs(w.mean().item()) < 0.0005
    for m in _convs(g):
        assert m.bias is None or torch.all(m.bias == 0)
    bn = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bn
    bw = torch.cat([m.weight.detach() for m in bn])
    assert abs(bw.mean().item() - 1.0) < 0.005 and abs(bw.std().item() - 0.02) < 0.003
    assert all(torch.all(m.bias == 0) for m in bn)


def test_init_gain_and_types():
    d = define_D("basic", init_gain=0.1)
    w = torch.cat([m.weight.detach().flatten() for m in _convs(d)])
    assert abs(w.std().item() - 0.1) < 0.003

    conv = nn.Conv2d(256, 256, 3)
    init_weights(nn.Sequential(conv), "kaiming")
    assert abs(conv.weight.std().item() - math.sqrt(2 / (256 * 9))) < 0.001
    init_weights(nn.Sequential(conv), "xavier", 0.02)
    assert abs(conv.weight.std().item() - 0.02 * math.sqrt(2 / (2 * 256 * 9))) < 0.0001
    lin = nn.Linear(64, 64)
    init_weights(lin, "orthogonal", 1.0)
    assert torch.allclose(lin.weight @ lin.weight.T, torch.eye(64), atol=1e-4)
    assert torch.all(lin.bias == 0)
    assert init_weights(lin, "none") is lin
    with pytest.raises(ValueError, match="'uniform'"):
        init_weights(lin, "uniform")


# --------------------------------------------------------------------------- norms, bias, dropout
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_every_norm_builds(norm):
    layer = norm_layer(norm)(8)
    kind = {"batch": nn.BatchNorm2d, "instance": nn.InstanceNorm2d, "none": nn.Identity}[norm]
    assert type(layer) is kind
    x = torch.randn(2, 3, 32, 32)
    for net in (
        define_G("resnet", ngf=8, n_blocks=1, norm=norm),
        define_G("unet_32", ngf=8, norm=norm),
        define_D("basic", ndf=8, norm=norm),
        define_D("pixel", ndf=8, norm=norm),
    ):
        net(x).mean().backward()  # trains: in-place activations are autograd-safe
        assert all(p.grad is not None for p in net.parameters())
        norms = [m for m in net.modules() if isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d))]
        assert (len(norms) > 0) == (norm != "none")


def test_norm_flavours_match_reference():
    inorm = norm_layer("instance")(4)
    assert not inorm.affine and not inorm.track_running_stats and inorm.weight is None
    bnorm = norm_layer("batch")(4)
    assert bnorm.affine and bnorm.track_running_stats
    with pytest.raises(ValueError, match="'group'"):
        norm_layer("group")
    with pytest.raises(ValueError, match="'layer'"):
        define_G("resnet_9blocks", norm="layer")


def test_bias_rule():
    # a conv followed by BatchNorm has no bias; followed by InstanceNorm it has one
    seq = define_D("basic", norm="batch", init_type="none").model
    assert seq[0].bias is not None and seq[-1].bias is not None  # no norm after them
    assert all(m.bias is None for m in (seq[2], seq[5], seq[8]))
    seq = define_D("basic", norm="instance", init_type="none").model
    assert all(m.bias is not None for m in (seq[2], seq[5], seq[8]))


def _n_dropout(net):
    return sum(isinstance(m, nn.Dropout) for m in net.modules())


def test_dropout_only_when_asked():
    assert _n_dropout(define_G("resnet_9blocks", init_type="none")) == 0
    drop = define_G("resnet_9blocks", use_dropout=True, init_type="none")
    assert _n_dropout(drop) == 9 and all(m.p == 0.5 for m in drop.modules() if isinstance(m, nn.Dropout))
    assert _n_dropout(define_G("unet_256", ngf=8, norm="batch", init_type="none")) == 0
    assert _n_dropout(define_G("unet_256", ngf=8, norm="batch", use_dropout=True, init_type="none")) == 3
    assert _n_dropout(define_G("unet_128", ngf=8, norm="batch", use_dropout=True, init_type="none")) == 2
    with pytest.warns(UserWarning, match="no effect"):
        g = define_G("unet_32", ngf=8, use_dropout=True)
    assert _n_dropout(g) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        define_G("unet_32", ngf=8)
    assert _n_dropout(define_D("basic", ndf=8)) == 0


def test_resnet_block_residual():
    block = ResnetBlock(8, padding_type="zero", norm="none", use_bias=True)
    for m in block.conv_block:
        if isinstance(m, nn.Conv2d):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
    x = torch.randn(1, 8, 5, 5)
    assert torch.equal(block(x), x)
    for pad in ("reflect", "replicate"):
        assert ResnetBlock(8, padding_type=pad)(x).shape == x.shape
    with pytest.raises(ValueError, match="'circular'"):
        ResnetBlock(8, padding_type="circular")


# --------------------------------------------------------------------------- names
def test_unknown_names_raise():
    with pytest.raises(ValueError, match="resnet_9blocks.*unet_256"):
        define_G("dcgan")
    for bad in ("unet_48", "unet_16", "resnet_blocks"):
        with pytest.raises(ValueError, match=repr(bad)):
            define_G(bad)
    with pytest.raises(ValueError, match="basic.*n_layers.*pixel"):
        define_D("multiscale")
    with pytest.raises(ValueError, match="n_blocks"):
        define_G("resnet_9blocks", n_blocks=6)
    with pytest.raises(ValueError, match="n_blocks"):
        define_G("unet_256", n_blocks=6)


def test_classes_exported_and_direct_construction():
    assert isinstance(define_G("resnet_6blocks", init_type="none"), ResnetGenerator)
    assert isinstance(define_G("unet_32", ngf=8), UnetGenerator)
    assert isinstance(define_D("basic", init_type="none"), NLayerDiscriminator)
    assert isinstance(define_D("pixel"), PixelDiscriminator)
    assert define_G("resnet_9blocks", n_blocks=9, init_type="none").n_blocks == 9
    assert define_G("resnet_7blocks", init_type="none").n_blocks == 7
    assert NLayerDiscriminator(3, 64, 3, norm="instance").receptive_field == 70
