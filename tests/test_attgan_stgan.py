"""AttGAN and STGAN: parameter counts from the official layer definitions, TF-slim layer semantics, the
selective transfer unit's gates, each loss term on known inputs, the attribute inputs (AttGAN's 2b - 1
with test_int, STGAN's difference vector), the n_d cadence and which nets each step moves, exact resume,
the sample grid, and short CLI runs on the built-in accessory digits and a generated CelebA."""

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from data_factory import make_celeba, make_partition
from helpers import check_steps, cli_fit, recording, tiny_data, trainer

from lit_i2i.methods.attgan import ATTGAN13, AttGAN, adversarial_losses, gradient_penalty
from lit_i2i.methods.stgan import STGAN
from lit_i2i.nets import count_params
from lit_i2i.nets.attgan import AttDiscriminator, AttGenerator, ConvGRUCell

pytestmark = pytest.mark.usefixtures("one_thread")

NETS = dict(image_size=32, enc_dim=4, dec_dim=4, dis_dim=4, dis_fc_dim=8, n_layers=2, dis_layers=2)
TINY_ATT = dict(attributes=["accessory"], **NETS)
TINY_ST = dict(TINY_ATT, shortcut_layers=1, inject_layers=1, stu_dim=4, stu_layers=1, stu_inject_layers=1)
THREE = ["Bald", "Bangs", "Male"]


def _enc(dim=64, n=5):
    chans = [3] + [min(dim * 2 ** i, 1024) for i in range(n)]
    return chans[1:], sum(16 * a * b + 2 * b for a, b in zip(chans, chans[1:]))  # bias-free 4x4 convs + BN


def _official_attgan(k, dim=64, n=5, fc=1024, image=128):
    """LynnHo/AttGAN-Tensorflow module.py: UNetGenc, UNetGdec (shortcut 1, inject 1), ConvD."""
    zs, enc = _enc(dim, n)
    dec, cin = 0, zs[-1] + k
    for i in range(n - 1):
        d = min(dim * 2 ** (n - 1 - i), 1024)
        dec += 16 * cin * d + 2 * d
        cin = d + (zs[-2] if i == 0 else 0) + (k if i == 0 else 0)
    dec += 16 * cin * 3 + 3  # the output deconv has a bias
    flat = zs[-1] * (image // 2 ** n) ** 2
    d = enc + (flat * fc + fc + fc + 1) + (flat * fc + fc + fc * k + k)  # IN scale/offset = BN's count
    return enc, dec, d


def _official_stgan(k, dim=64, n=5, stu=4, image=128):
    """csmliu/STGAN models.py: Genc, Gstu (4 units, kernel 3, no norm), Gdec (shortcut 4, inject 4)."""
    zs, enc = _enc(dim, n)
    units, state = 0, zs[-1] + k
    widths = []
    for i in range(stu):
        d = min(dim * 2 ** (stu - 1 - i), 1024)
        units += 16 * state * d + d + 3 * (9 * (zs[-2 - i] + d) * d + d)  # state deconv, 2 gates + info conv
        state, widths = d + k, [d] + widths
    skips = widths + [zs[-1]]
    dec, cin = 0, zs[-1] + k
    for i in range(n - 1):
        d = min(dim * 2 ** (n - 1 - i), 1024)
        dec += 16 * cin * d + 2 * d
        cin = d + skips[-2 - i] + k
    dec += 16 * cin * 3 + 3
    return enc, units, dec


def test_parameter_counts_are_the_official_ones():
    enc, dec, d = _official_attgan(13)
    assert (enc, dec, d) == (11_148_160, 32_311_043, 44_718_990) and enc + dec == 43_459_203
    st = _official_stgan(13)
    assert st == (11_148_160, 30_145_280, 33_705_331) and sum(st) == 74_998_771
    with torch.device("meta"):  # shapes only
        att, sg = AttGenerator(13), AttGenerator(13, shortcut_layers=4, inject_layers=4, use_stu=True)
        disc = AttDiscriminator(13)
        att_model, st_model = AttGAN(), STGAN()
    assert (count_params(att.enc), count_params(att.dec), count_params(disc)) == (enc, dec, d)
    assert (count_params(sg.enc), count_params(sg.stu), count_params(sg.dec)) == st
    assert count_params(att_model.G) == enc + dec and count_params(st_model.G) == sum(st)
    assert count_params(att_model.D) == count_params(st_model.D) == d
    assert att_model.attribute_names == st_model.attribute_names == list(ATTGAN13)
    small = STGAN(**TINY_ST)
    e, u, dd = _official_stgan(1, 4, 2, 1)
    assert count_params(small.G) == e + u + dd


def test_tf_slim_layer_semantics():
    torch.manual_seed(0)
    G, D = AttGenerator(3, dim=4, n_layers=3), AttDiscriminator(3, 16, 4, 8, 2)
    bns = [m for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.eps == 1e-3 and m.momentum == 1e-3 and m.affine for m in bns)
    ins = [m for m in D.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert ins and all(m.eps == 1e-6 and m.affine and not m.track_running_stats for m in ins)
    convs = [m for m in G.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert [m.bias is not None for m in convs] == [False] * 5 + [True]  # only the output deconv has one
    for m in [*convs, *(m for m in D.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))]:
        w = m.weight
        rf = w[0, 0].numel()
        bound = (6 / ((w.shape[0] + w.shape[1]) * rf)) ** 0.5  # Glorot uniform
        assert w.abs().max() <= bound + 1e-6 and w.abs().max() > 0.5 * bound
        assert m.bias is None or not m.bias.any()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert [tuple(z.shape[1:]) for z in G.encode(x)] == [(4, 8, 8), (8, 4, 4), (16, 2, 2)]  # 'SAME': halves
    # slim.flatten is NHWC: fc input j = (y * W + x) * C + c
    with torch.no_grad():
        first = D.gan[0]
        first.weight.zero_()
        first.weight[0, (1 * 4 + 2) * 8 + 5] = 1.0
        h = D.convs(torch.rand(1, 3, 16, 16))
        D.gan[2].weight.zero_()
        D.gan[2].weight[0, 0] = 1.0
        out = D.gan(h.permute(0, 2, 3, 1).flatten(1))
    assert out.item() == pytest.approx(F.leaky_relu(h[0, 5, 1, 2], 0.2).item())
    with pytest.raises(ValueError, match="multiples of 8"):
        G(torch.rand(1, 3, 12, 12), torch.zeros(1, 3))


def test_selective_transfer_unit_gates():
    torch.manual_seed(0)
    cell = ConvGRUCell(in_ch=3, state_ch=5, out_ch=4)
    x, state = torch.rand(2, 3, 8, 8), torch.rand(2, 5, 4, 4)
    state_ = cell.up(state)
    with torch.no_grad():
        cell.update_gate[0].weight.zero_()
        cell.update_gate[0].bias.fill_(-30.0)  # u = 0: the unit passes the upsampled state on
    out, new_state = cell(x, state)
    assert torch.allclose(out, state_, atol=1e-6)
    with torch.no_grad():
        cell.update_gate[0].bias.fill_(30.0)   # u = 1: the new information
        cell.reset_gate[0].weight.zero_()
        cell.reset_gate[0].bias.fill_(-30.0)   # r = 0: the new state is empty
    out, new_state = cell(x, state)
    assert torch.allclose(new_state, torch.zeros_like(new_state), atol=1e-6)
    info = torch.tanh(cell.info[0](torch.cat([x, torch.zeros_like(state_)], 1)))
    assert torch.allclose(out, info, atol=1e-5)
    for mode, pick in (("gru", 0), ("direct", None)):
        c = ConvGRUCell(3, 5, 4, pass_state=mode)
        o, s = c(x, state)
        assert torch.equal(s, o) if pick == 0 else torch.equal(s, c.up(state))
    with pytest.raises(ValueError, match="stu_norm"):
        ConvGRUCell(3, 5, 4, norm="group")


def test_adversarial_losses_and_penalties_on_known_inputs():
    r, f = torch.tensor([[2.0], [-1.0]]), torch.tensor([[0.5], [3.0]])
    assert [v.item() for v in adversarial_losses("wgan", r, f)] == [-0.5, 1.75]
    assert adversarial_losses("wgan", None, f).item() == -1.75
    hr, hf = adversarial_losses("hinge_v1", r, f)
    assert (hr.item(), hf.item()) == (1.0, 2.75)
    assert adversarial_losses("hinge_v1", None, f).item() == 0.25
    assert adversarial_losses("hinge_v2", None, f).item() == -1.75
    lr_, lf = adversarial_losses("lsgan", r, f)
    assert (lr_.item(), lf.item()) == (2.5, 4.625)
    gr, gf = adversarial_losses("gan", r, f)
    assert gr.item() == pytest.approx(F.softplus(-r).mean().item())
    assert gf.item() == pytest.approx(F.softplus(f).mean().item())
    # a linear critic has the gradient w everywhere: every sample mode gives the same norm ‖w‖ = 2
    w = torch.full((1, 3, 2, 2), 2.0 / 12 ** 0.5)
    crit = lambda x: (x * w).flatten(1).sum(1, keepdim=True)  # noqa: E731
    real, fake = torch.rand(4, 3, 2, 2), torch.rand(4, 3, 2, 2)
    for sample in ("line", "real", "fake", "dragan"):
        assert gradient_penalty(crit, real, fake, "1-gp", sample).item() == pytest.approx(1.0, rel=1e-5)
        assert gradient_penalty(crit, real, fake, "0-gp", sample).item() == pytest.approx(4.0, rel=1e-5)
        assert gradient_penalty(crit, real, fake, "lp", sample).item() == pytest.approx(1.0, rel=1e-5)
    assert gradient_penalty(lambda x: x.flatten(1).sum(1) * 0.1, real, fake, "lp").item() == 0  # ‖∇‖ < 1: no penalty
    assert gradient_penalty(crit, real, fake, "none").item() == 0


@pytest.mark.parametrize("cls", [AttGAN, STGAN])
def test_d_and_g_losses_on_known_inputs(cls):
    torch.manual_seed(0)
    model = cls(**{**(TINY_ATT if cls is AttGAN else TINY_ST), "attributes": THREE})
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    a = torch.tensor([[1.0, 0, 1], [0, 1, 0], [0, 0, 1], [1, 1, 0]])
    b = a[[1, 2, 3, 0]]
    fake = model.G(x, model.input_label(a, b))
    torch.manual_seed(1)
    d = model.discriminator_losses(x, a, fake)
    gan_r, att_r = model.D(x)
    assert d["D_gan"].item() == pytest.approx((-gan_r.mean() + model.D(fake)[0].mean()).item(), rel=1e-5)
    assert d["D_att"].item() == pytest.approx(F.binary_cross_entropy_with_logits(att_r, a).item(), rel=1e-5)
    torch.manual_seed(1)
    assert d["D_gp"].item() == pytest.approx(gradient_penalty(lambda t: model.D(t)[0], x, fake).item(), rel=1e-4)
    model.eval()  # BatchNorm moving averages fixed, so that the manual forward passes see the same G
    g = model.generator_losses(x, a, b)
    xb_ = model.G(x, model.input_label(a, b))
    gan_f, att_f = model.D(xb_)
    assert g["G_gan"].item() == pytest.approx(-gan_f.mean().item(), rel=1e-5)
    assert g["G_att"].item() == pytest.approx(F.binary_cross_entropy_with_logits(att_f, b).item(), rel=1e-5)
    rec = (x - model.G(x, model.input_label(a, a))).abs().mean()
    assert g["G_rec"].item() == pytest.approx(rec.item(), rel=1e-5)
    assert set(d) == {"D_gan", "D_gp", "D_att"} and set(g) == {"G_gan", "G_att", "G_rec"}
    if cls is AttGAN:
        assert torch.equal(model.input_label(a, b), b * 2 - 1)
        decayed = AttGAN(**TINY_ATT, weight_decay=0.01)
        dd = decayed.discriminator_losses(x[:2], torch.zeros(2, 1), x[:2])
        ws = [m.weight for m in decayed.D.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        assert dd["D_reg"].item() == pytest.approx(0.01 * sum(0.5 * w.pow(2).sum() for w in ws).item(), rel=1e-5)


def test_attribute_inputs_at_training_and_test_time():
    a = torch.tensor([[1.0, 0, 1]])
    b = torch.tensor([[0.0, 0, 1]])
    edited = torch.tensor([[True, False, False]])
    none = (torch.zeros_like(edited), torch.zeros_like(a))
    st = STGAN(**{**TINY_ST, "attributes": THREE})
    assert st.input_label(a, b).tolist() == [[-1.0, 0.0, 0.0]]   # (2b - 1) / 2 - (2a - 1) / 2
    assert st.input_label(a, a).abs().sum() == 0                  # reconstruction: the zero difference
    assert st.test_label(a, b, edited, none, None).tolist() == [[-1.0, 0.0, 0.0]]   # test_int 1
    assert st.test_label(a, b, edited, none, 2.0).tolist() == [[-1.5, 0.0, 0.0]]
    slide = (edited, torch.tensor([[0.3, 0, 0]]))
    assert st.test_label(a, a, edited, slide, None)[0, 0].item() == pytest.approx(0.3 - 0.5)
    target = STGAN(**{**TINY_ST, "attributes": THREE, "label": "target"})
    assert target.input_label(a, b).tolist() == [[-0.5, -0.5, 0.5]]
    att = AttGAN(**{**TINY_ATT, "attributes": THREE})
    assert att.test_label(a, b, edited, none, None).tolist() == [[-2.0, -1.0, 1.0]]  # test_int 2 on the edit
    assert att.test_label(a, a, edited, (edited, torch.full_like(a, 1.5)), None).tolist() == [[1.5, -1.0, 1.0]]
    # check_attribute_conflict: Bangs on -> Bald off; Bald on -> Bangs off
    cols = dict((n, bb) for n, bb, _ in att.grid_targets(torch.tensor([[1.0, 0, 0], [0, 1, 1]])))
    assert cols["Bangs"].tolist() == [[0, 1, 0], [0, 0, 1]] and cols["Bald"].tolist() == [[0, 0, 0], [1, 0, 1]]
    att.eval()
    grid = att.attribute_grid(torch.rand(2, 3, 32, 32), torch.tensor([[1.0, 0, 0], [0, 1, 1]]))
    assert list(grid) == ["input", "rec", *THREE]
    slide = att.slider_grid(torch.rand(2, 3, 32, 32), "Male", (-2, 0, 2))
    assert list(slide) == ["input", "Male=-2", "Male=0", "Male=2"]
    assert not torch.equal(slide["Male=-2"], slide["Male=2"])


@pytest.mark.parametrize("cls", [AttGAN, STGAN])
def test_n_d_cadence_touches_only_its_nets_and_eval_uses_moving_averages(tmp_path, cls):
    pl.seed_everything(0)
    model = recording(cls)(**{**(TINY_ATT if cls is AttGAN else TINY_ST), "n_d": 2})
    t = trainer(tmp_path, max_steps=6, log_every_n_steps=1)
    t.fit(model, tiny_data(a="no-accessory", b="accessory"))
    assert check_steps(model, ["G."], ["D."]) == ["start", "D", "D", "G", "D", "D", "G"]
    assert model.iteration == 6
    for k in ("D", "D_gan", "D_gp", "D_att", "G", "G_gan", "G_att", "G_rec"):
        assert f"train/loss_{k}" in t.callback_metrics, k
    before = {k: v.clone() for k, v in model.G.state_dict().items() if "running" in k}
    x, v = torch.rand(3, 3, 32, 32) * 2 - 1, torch.ones(3, 1)
    model.eval()
    y_eval = model.G(x, v)
    assert model.translate(x, "AtoB").shape == x.shape
    assert all(torch.equal(t, model.G.state_dict()[k]) for k, t in before.items())  # eval: no update
    model.train()
    with torch.no_grad():
        assert not torch.allclose(model.G(x, v), y_eval, atol=1e-4)  # batch statistics vs moving averages


def _fit(cls, tmp_path, epochs, ckpt=None):
    from pytorch_lightning.callbacks import ModelCheckpoint

    pl.seed_everything(2)
    sched = (dict(lr_policy="linear", n_epochs=1, n_epochs_decay=2) if cls is AttGAN else
             dict(lr_policy="step", lr_step_size=1, lr_gamma=0.5))
    model = cls(**{**(TINY_ATT if cls is AttGAN else TINY_ST), "n_d": 2, **sched})
    cb = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_epochs=1, save_top_k=-1)
    t = trainer(tmp_path, max_epochs=epochs, enable_checkpointing=True, callbacks=[cb], deterministic=True)
    t.fit(model, tiny_data(a="no-accessory", b="accessory", train_limit=8, batch_size=2), ckpt_path=ckpt)
    return model, t


@pytest.mark.parametrize("cls", [AttGAN, STGAN])
def test_resume_is_exact(tmp_path, cls):
    straight, ts = _fit(cls, tmp_path / "a", 2)  # 4 iterations an epoch: G at 2, 5; the rate changes at epoch 1
    _fit(cls, tmp_path / "b", 1)
    resumed, tr = _fit(cls, tmp_path / "c", 2, ckpt=str(tmp_path / "b" / "ckpt" / "last.ckpt"))
    sa, sb = straight.state_dict(), resumed.state_dict()
    assert any("running_mean" in k for k in sa)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    expected = 2e-4 * (1 - 2 / 3) if cls is AttGAN else 2e-4 * 0.25  # after two epoch ends
    for oa, ob in zip(ts.optimizers, tr.optimizers):
        assert oa.param_groups[0]["lr"] == ob.param_groups[0]["lr"] == pytest.approx(expected)
        for pa, pb in zip(oa.state.values(), ob.state.values()):
            assert all(torch.equal(pa[k], pb[k]) for k in pa)


# ----------------------------------------------------------------------------------- CLI
TINY_CLI = ["--trainer.enable_progress_bar", "false", "--trainer.logger", "false", "--trainer.limit_val_batches", "0",
            "--model.init_args.enc_dim", "4", "--model.init_args.dec_dim", "4", "--model.init_args.dis_dim", "4",
            "--model.init_args.dis_fc_dim", "8", "--metrics.metrics", "[]", "--trainer.max_steps", "6"]


@pytest.mark.parametrize("method", ["attgan", "stgan"])
def test_cli_accessory_digits_then_translate(tmp_path, cli_env, method):
    from torchvision.io import write_png

    from datamodules.builtin import indices, render
    from lit_i2i.cli import main

    extra = ["--model.init_args.stu_dim", "4"] if method == "stgan" else []
    ckpt, state = cli_fit(tmp_path, f"experiments/{method}/digits_accessory.yaml", *TINY_CLI, *extra,
                          "--data.init_args.train_limit", "16")
    assert state["iteration"] == 6 and state["global_step"] == 6
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    imgs, _, _ = render("accessory", indices("B", "test")[:2])
    for i, x in enumerate(imgs):
        write_png(x, str(inp / f"d{i}.png"))
    assert main(["translate", "--ckpt", str(ckpt), "--input", str(inp), "--output", str(out),
                 "--direction", "BtoA"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["d0.png", "d1.png"]


@pytest.mark.parametrize("config", ["attgan/celeba_glasses", "stgan/celeba_smile"])
def test_cli_on_a_generated_multi_attribute_celeba(tmp_path, cli_env, config):
    from lit_i2i.commands import load_run

    make_celeba(tmp_path / "celeba", 40, size=(20, 24))
    make_partition(tmp_path / "celeba", 40)
    extra = (["--model.init_args.stu_dim", "4", "--model.init_args.stu_layers", "1",
              "--model.init_args.stu_inject_layers", "1"] if config.startswith("stgan") else [])
    ckpt, state = cli_fit(tmp_path, f"experiments/{config}.yaml", *TINY_CLI, *extra,
                          "--data.init_args.root", str(tmp_path / "celeba"), "--data.init_args.split_protocol", "null",
                          "--data.init_args.center_crop", "18", "--data.init_args.load_size", "18",
                          "--data.init_args.crop_size", "16", "--data.init_args.batch_size", "4",
                          "--data.init_args.num_workers", "0", "--model.init_args.image_size", "16",
                          "--model.init_args.n_layers", "2", "--model.init_args.dis_layers", "2",
                          "--model.init_args.shortcut_layers", "1", "--model.init_args.inject_layers", "1")
    assert state["iteration"] == 6 and len(state["hyper_parameters"]["attributes"]) == 13
    model, _ = load_run(ckpt)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert model.translate(x, "AtoB").shape == (2, 3, 16, 16)
    assert model.translate(x, mode="attr:Eyeglasses=1,Male=0").shape == (2, 3, 16, 16)
    assert list((tmp_path / "run" / "grids").glob("final_*.png"))
