"""Known-answer checks of the shared core: GAN losses, penalties, pool, schedules, grids."""

import math

import pytest
import torch
from torch import nn

from lit_i2i.core import GANLoss, ImagePool, build_scheduler, gradient_penalty, r1_penalty, recon_loss, visual_grid


def test_lsgan_known_values():
    g = GANLoss("lsgan")
    assert g(torch.ones(2, 1, 4, 4), True).item() == 0.0
    assert g(torch.zeros(2, 1, 4, 4), True).item() == 1.0
    assert g(torch.full((3, 1, 2, 2), 0.5), False).item() == pytest.approx(0.25)


def test_vanilla_known_values():
    g = GANLoss("vanilla")
    assert g(torch.zeros(4, 1, 3, 3), True).item() == pytest.approx(math.log(2))
    # logit 2 judged real: -log(sigmoid(2))
    assert g(torch.full((1, 1, 1, 1), 2.0), True).item() == pytest.approx(-math.log(1 / (1 + math.exp(-2))), rel=1e-6)
    assert g(torch.full((1, 1, 1, 1), 2.0), False).item() == pytest.approx(-math.log(1 - 1 / (1 + math.exp(-2))), rel=1e-6)


def test_hinge_and_wgan():
    h = GANLoss("hinge")
    p = torch.tensor([-2.0, 0.0, 0.5, 3.0])
    assert h(p, True).item() == pytest.approx((3 + 1 + 0.5 + 0) / 4)
    assert h(p, False).item() == pytest.approx((0 + 1 + 1.5 + 4) / 4)
    assert h(p, True, for_discriminator=False).item() == pytest.approx(-p.mean().item())
    w = GANLoss("wgan")
    assert w(p, True).item() == pytest.approx(-p.mean().item())
    assert w(p, False).item() == pytest.approx(p.mean().item())


def test_multiscale_list_sums_and_half_precision_is_float32():
    g = GANLoss("lsgan")
    preds = [torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 1, 1)]
    assert g(preds, True).item() == 2.0
    out = g(torch.zeros(2, 1, 2, 2, dtype=torch.bfloat16), True)
    assert out.dtype == torch.float32


def test_unknown_gan_mode():
    with pytest.raises(ValueError, match="gan_mode"):
        GANLoss("bogus")


def test_gradient_penalty_of_linear_critic():
    torch.manual_seed(0)
    lin = nn.Linear(12, 1, bias=False)
    net = nn.Sequential(nn.Flatten(), lin)
    real, fake = torch.randn(5, 3, 2, 2), torch.randn(5, 3, 2, 2)
    expected = 10 * (lin.weight.norm() - 1) ** 2  # the gradient of a linear critic is its weight
    assert gradient_penalty(net, real, fake, 10.0).item() == pytest.approx(expected.item(), rel=1e-5)


def test_r1_penalty_of_linear_critic():
    lin = nn.Linear(4, 1, bias=False)
    x = torch.randn(3, 4, requires_grad=True)
    expected = 0.5 * 10 * lin.weight.pow(2).sum()
    assert r1_penalty(lin(x), x, 10.0).item() == pytest.approx(expected.item(), rel=1e-5)


def test_recon_losses():
    x, y = torch.zeros(2, 3), torch.full((2, 3), 2.0)
    assert recon_loss(x, y, "l1").item() == 2.0
    assert recon_loss(x, y, "l2").item() == 4.0
    with pytest.raises(ValueError):
        recon_loss(x, y, "l3")


def test_pool_fills_then_swaps_with_half_probability():
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: returned as is and stored
    assert len(pool) == 4
    torch.manual_seed(0)
    swapped = 0
    for i in range(400):
        new = torch.full((1, 1, 1, 1), 100.0 + i)
        out = pool.query(new)
        swapped += int(out.item() != new.item())
    assert 150 < swapped < 250  # about half the time an older image is returned
    assert len(pool) == 4


def test_pool_zero_is_passthrough_and_state_round_trip():
    x = torch.randn(3, 3, 2, 2)
    assert ImagePool(0).query(x) is x
    p = ImagePool(5)
    p.query(x)
    q = ImagePool(1)
    q.load_state_dict(p.state_dict())
    assert q.size == 5 and len(q) == 3
    assert all(torch.equal(a, b) for a, b in zip(p.images, q.images))


def test_linear_policy_matches_reference_rule():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sch = build_scheduler(opt, "linear", n_epochs=100, n_epochs_decay=100)
    lrs = []
    for _ in range(200):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    assert lrs[0] == 1.0 and lrs[99] == 1.0  # constant for 100 epochs ...
    assert lrs[100] == pytest.approx(1 - 1 / 101)  # ... then decays linearly,
    assert lrs[199] == pytest.approx(1 - 100 / 101)  # reaching ~0 after 200
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_step_and_cosine_policies():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sch = build_scheduler(opt, "step", step_size=2, gamma=0.5)
    seen = []
    for _ in range(5):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    assert seen == [1.0, 1.0, 0.5, 0.5, 0.25]
    opt2 = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    cos = build_scheduler(opt2, "cosine", n_epochs=10)
    for _ in range(10):
        opt2.step()
        cos.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError):
        build_scheduler(opt, "bogus")


def test_visual_grid_is_uint8_and_laid_out_by_rows():
    vis = {"real_A": torch.full((3, 3, 32, 32), -1.0), "fake_B": torch.ones(3, 3, 32, 32), "mask": torch.zeros(3, 1, 32, 32)}
    g = visual_grid(vis, max_rows=2, min_size=64)
    assert g.dtype == torch.uint8 and g.shape[0] == 3
    # 2 rows x 3 columns of 64x64 tiles with 2px padding
    assert g.shape[1] == 2 * 64 + 3 * 2 and g.shape[2] == 3 * 64 + 4 * 2
    assert g[:, 2 + 10, 2 + 10].tolist() == [0, 0, 0]  # real_A tile is black (-1)
    assert g[:, 2 + 10, 2 + 64 + 2 + 10].tolist() == [255, 255, 255]  # fake_B tile is white (+1)
