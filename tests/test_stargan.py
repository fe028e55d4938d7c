"""StarGAN: official parameter counts, eval mode = the official train-mode translation (issue 102), each
loss term on known inputs, the n_critic cadence and which nets each step moves, the official learning-rate
rule and exact resume (optimizers and the rule's position), the translate interface (edits, source
attributes, conflicts, grids), and the CelebA multi-attribute mode with its official splits; short CLI
runs on the built-in accessory digits, a generated multi-attribute CelebA and generated RaFD folders."""

import random

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from data_factory import make_celeba, make_multidomain, make_partition
from helpers import check_steps, cli_fit, recording, tiny_data, trainer

from lit_i2i.errors import UserError
from lit_i2i.methods.stargan import StarGAN, StarGANDecay, parse_edit
from lit_i2i.nets import count_params
from lit_i2i.nets.stargan import StarDiscriminator, StarGenerator, official_state_dict

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(attributes=["accessory"], image_size=32, g_conv_dim=8, d_conv_dim=8, g_repeat_num=1, d_repeat_num=3)
RAFD = ["angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised"]


def _official_counts(c_dim, conv=64, g_rep=6, d_rep=6, image=128):
    """yunjey/stargan model.py: bias-free G convs with affine InstanceNorm; D convs with biases, bias-free heads."""
    g = (3 + c_dim) * conv * 49 + 2 * conv                                 # 7x7 in, IN
    g += 16 * (conv * 2 * conv + 2 * conv * 4 * conv) + 2 * (2 * conv + 4 * conv)  # two 4x4 downs, IN
    g += g_rep * (2 * 9 * (4 * conv) ** 2 + 2 * 2 * 4 * conv)                # residual blocks
    g += 16 * (4 * conv * 2 * conv + 2 * conv * conv) + 2 * (2 * conv + conv)      # two 4x4 transposed, IN
    g += conv * 3 * 49                                                     # 7x7 out
    chans = [3] + [conv * 2 ** i for i in range(d_rep)]
    d = sum(16 * a * b + b for a, b in zip(chans, chans[1:]))
    k = image // 2 ** d_rep
    d += 9 * chans[-1] + chans[-1] * c_dim * k * k
    return g, d


def test_parameter_counts_are_the_official_ones():
    assert _official_counts(5) == (8_430_528, 44_762_048)   # CelebA, 5 attributes
    assert _official_counts(8) == (8_439_936, 44_786_624)   # RaFD, 8 expressions
    for c in (5, 8):
        with torch.device("meta"):  # shapes only: no memory, no init
            G, D = StarGenerator(c_dim=c), StarDiscriminator(c_dim=c)
        assert (count_params(G), count_params(D)) == _official_counts(c)
    small = StarGAN(**TINY)
    assert (count_params(small.G), count_params(small.D)) == _official_counts(1, 8, 1, 3, 32)
    convs = [m for m in small.G.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert all(m.bias is None for m in convs)
    assert small.D.conv1.bias is None and small.D.conv2.bias is None and small.D.main[0].bias is not None
    assert small.D.conv2.kernel_size == (4, 4)  # 32 / 2**3


def test_eval_mode_is_the_official_train_mode_translation():
    torch.manual_seed(0)
    G = StarGenerator(conv_dim=8, c_dim=2, repeat_num=1)
    assert not list(G.buffers())  # no running statistics: nothing for eval mode to switch to
    x, c = torch.rand(3, 3, 16, 16) * 2 - 1, torch.tensor([[1.0, 0], [0, 1], [1, 1]])
    y_train = G(x, c)
    assert torch.equal(G.eval()(x, c), y_train)
    # each image is normalised by itself: a batch of one gives that image's output
    assert torch.allclose(G(x[1:2], c[1:2]), y_train[1:2], atol=1e-6)
    # an official state dict (InstanceNorm with running statistics) loads strictly once filtered
    official = {**G.state_dict()}
    for name, m in G.named_modules():
        if isinstance(m, torch.nn.InstanceNorm2d):
            official[f"{name}.running_mean"] = torch.zeros(m.num_features)
            official[f"{name}.running_var"] = torch.ones(m.num_features)
            official[f"{name}.num_batches_tracked"] = torch.tensor(7)
    with pytest.raises(RuntimeError):
        StarGenerator(conv_dim=8, c_dim=2, repeat_num=1).load_state_dict(official)
    G2 = StarGenerator(conv_dim=8, c_dim=2, repeat_num=1)
    G2.load_state_dict(official_state_dict(official))
    assert torch.equal(G2(x, c), y_train)
    with pytest.raises(ValueError, match="32x32"):
        StarDiscriminator(32, 8, 1, 3)(torch.rand(1, 3, 64, 64))


def test_loss_terms_on_known_inputs():
    torch.manual_seed(0)
    model = StarGAN(**{**TINY, "attributes": ["a", "b", "c"]})
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    c_org = torch.tensor([[1.0, 0, 1], [0, 0, 0], [1, 1, 1], [0, 1, 0]])
    c_trg = c_org[[2, 0, 3, 1]]
    logits = torch.tensor([[2.0, -1, 0.5], [0, 0, 0], [1, 1, -3], [-2, 4, 0]])
    # BCE summed over attributes, mean over the batch (size_average=False / N)
    manual = -(c_org * F.logsigmoid(logits) + (1 - c_org) * F.logsigmoid(-logits)).sum() / 4
    assert model.classification_loss(logits, c_org).item() == pytest.approx(manual.item(), rel=1e-6)
    fake = model.G(x, c_trg)
    torch.manual_seed(5)
    d = model.discriminator_losses(x, c_org, fake)
    src_r, cls_r = model.D(x)
    assert d["D_real"].item() == pytest.approx(-src_r.mean().item(), rel=1e-5)
    assert d["D_fake"].item() == pytest.approx(model.D(fake)[0].mean().item(), rel=1e-5)
    assert d["D_cls"].item() == pytest.approx(model.classification_loss(cls_r, c_org).item(), rel=1e-5)
    torch.manual_seed(5)  # the official gradient_penalty: alpha per image, grad_outputs ones on out_src
    alpha = torch.rand(4, 1, 1, 1)
    x_hat = (alpha * x + (1 - alpha) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(model.D(x_hat)[0], x_hat, torch.ones_like(model.D(x_hat)[0]))
    gp = ((grad.view(4, -1).pow(2).sum(1).sqrt() - 1) ** 2).mean()
    assert d["D_gp"].item() == pytest.approx(gp.item(), rel=1e-4)
    g = model.generator_losses(x, c_org, c_trg, fake)
    assert g["G_fake"].item() == pytest.approx(-model.D(fake)[0].mean().item(), rel=1e-5)
    assert g["G_cls"].item() == pytest.approx(model.classification_loss(model.D(fake)[1], c_trg).item(), rel=1e-5)
    assert g["G_rec"].item() == pytest.approx((x - model.G(fake, c_org)).abs().mean().item(), rel=1e-5)
    # RaFD: softmax cross-entropy against the class index
    rafd = StarGAN(**{**TINY, "attributes": RAFD[:3], "label_mode": "single"})
    onehot = F.one_hot(torch.tensor([2, 0, 1, 1]), 3).float()
    assert rafd.classification_loss(logits, onehot).item() == pytest.approx(
        F.cross_entropy(logits, torch.tensor([2, 0, 1, 1])).item())


def test_n_critic_cadence_and_which_nets_each_step_moves(tmp_path):
    pl.seed_everything(0)
    model = recording(StarGAN)(**{**TINY, "n_critic": 3})
    t = trainer(tmp_path, max_steps=8, log_every_n_steps=1)
    t.fit(model, tiny_data(a="no-accessory", b="accessory"))
    # iteration i: a D step; when (i + 1) % 3 == 0 also a G step, on the same batch
    assert check_steps(model, ["G."], ["D."]) == ["start", "D", "D", "D", "G", "D", "D", "D", "G"]
    assert model.iteration == 6 and [model.g_turn(i) for i in range(6)] == [False, False, True] * 2
    for k in ("D", "G", "D_real", "D_fake", "D_cls", "D_gp", "G_fake", "G_rec", "G_cls"):
        assert f"train/loss_{k}" in t.callback_metrics, k
    opts = model.build_optimizers()
    assert opts["G"].defaults["lr"] == 1e-4 and opts["D"].defaults["betas"] == (0.5, 0.999)


def test_the_official_learning_rate_rule():
    rule = StarGANDecay(200000, 100000, 1000, "official")
    assert rule(0) == rule(100000) == rule(100999) == 1.0
    assert rule(101000) == pytest.approx(1 - 1e-5)       # one drop of lr / num_iters_decay
    assert rule(200000) == pytest.approx(1 - 100 * 1e-5)  # 100 drops: 0.999 x lr at the end
    # the official loop, float by float (g_lr -= g_lr0 / num_iters_decay after iteration i when due)
    g_lr0, g_lr, lrs = 1e-4, 1e-4, []
    for i in range(12):
        lrs.append(g_lr)
        if (i + 1) % 2 == 0 and (i + 1) > 12 - 6:
            g_lr -= g_lr0 / 6.0
    small = StarGANDecay(12, 6, 2, "official")
    assert [g_lr0 * small(i) for i in range(12)] == pytest.approx(lrs, rel=1e-12)
    paper = StarGANDecay(12, 6, 2, "linear")
    assert [paper(i) for i in (6, 7, 8, 10, 12)] == pytest.approx([1, 1, 2 / 3, 1 / 3, 0])
    with pytest.raises(ValueError, match="lr_decay"):
        StarGAN(**TINY, lr_decay="cosine")


def _fit(tmp_path, epochs, ckpt=None):
    from pytorch_lightning.callbacks import ModelCheckpoint

    pl.seed_everything(3)
    model = StarGAN(**{**TINY, "n_critic": 3, "num_iters": 10, "num_iters_decay": 6, "lr_update_step": 1,
                       "lr_decay": "linear"})
    cb = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_epochs=1, save_top_k=-1)
    t = trainer(tmp_path, max_epochs=epochs, enable_checkpointing=True, callbacks=[cb], deterministic=True)
    t.fit(model, tiny_data(a="no-accessory", b="accessory", train_limit=8, batch_size=2), ckpt_path=ckpt)
    return model, t


def test_resume_is_exact_with_optimizers_and_the_rate_rule(tmp_path):
    straight, ts = _fit(tmp_path / "a", 2)  # 4 iterations an epoch: G steps at 2, 5; the rate drops after 5, 6, 7
    _fit(tmp_path / "b", 1)
    resumed, tr = _fit(tmp_path / "c", 2, ckpt=str(tmp_path / "b" / "ckpt" / "last.ckpt"))
    assert straight.iteration == resumed.iteration == 8
    sa, sb = straight.state_dict(), resumed.state_dict()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    for oa, ob in zip(ts.optimizers, tr.optimizers):
        assert oa.param_groups[0]["lr"] == ob.param_groups[0]["lr"] == pytest.approx(1e-4 * (1 - 4 / 6))
        for pa, pb in zip(oa.state.values(), ob.state.values()):
            assert all(torch.equal(pa[k], pb[k]) for k in pa)


def test_edits_source_attributes_conflicts_and_grids():
    torch.manual_seed(0)
    names = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
    model = StarGAN(**{**TINY, "attributes": names, "edits": {"AtoB": "Male=1", "BtoA": "Male=0"}})
    assert model.directions == ("AtoB", "BtoA")
    seen = []
    model.generate = lambda x, a, b, edited, raw, intensity=None: seen.append((a, b, edited, raw)) or x
    x = torch.rand(2, 3, 32, 32)
    src = torch.tensor([[1.0, 0, 0, 0, 1], [0, 0, 1, 1, 0]])
    model.translate(x, mode="attr:Blond_Hair=1,Young=0", source_attributes=src)
    a, b, edited, _ = seen[-1]
    assert torch.equal(a, src)
    assert b.tolist() == [[0, 1, 0, 0, 0], [0, 1, 0, 1, 0]]  # the other hair colours go to 0
    assert edited[:, [1, 4]].all() and edited.sum() == 4
    model.translate(x, "AtoB")  # the direction's edit; D reads the rest, Male is 0 in the source domain
    a, b, _, _ = seen[-1]
    assert a[:, 3].tolist() == [0, 0] and b[:, 3].tolist() == [1, 1]
    est = model.estimate_attributes(x)
    assert torch.equal(a[:, :3], est[:, :3]) and torch.equal(b[:, [0, 1, 2, 4]], est[:, [0, 1, 2, 4]])
    model.translate(x, attributes=[0, 0, 1, 1, 1], source_attributes=src)
    _, b, edited, _ = seen[-1]
    assert b.tolist() == [[0, 0, 1, 1, 1]] * 2 and edited.tolist()[0] == [True, False, True, True, False]
    model.translate(x, mode="slide:Male=0.25", source_attributes=src)
    _, b, _, (raw_mask, raw) = seen[-1]
    assert torch.equal(b, src) and raw_mask[:, 3].all() and raw[:, 3].tolist() == [0.25, 0.25]
    for bad, needle in (("attr:Male=2", "0 or 1"), ("attr:Mal=1", "Male"), ("pose:Male=1", "attr:"),
                        ("attr:Male", "NAME=VALUE"), ("attr:", "no attribute")):
        with pytest.raises(UserError, match=needle):
            model.translate(x, mode=bad)
    with pytest.raises(UserError, match="AtoB, BtoA"):
        model.translate(x, "CtoD")
    # the official sample grid: hair colours set, the other attributes flipped
    cols = model.grid_targets(src)
    assert [c[0] for c in cols] == names
    assert cols[0][1].tolist() == [[1, 0, 0, 0, 1], [1, 0, 0, 1, 0]]
    assert cols[3][1].tolist() == [[1, 0, 0, 1, 1], [0, 0, 1, 0, 0]]
    del model.generate
    grid = model.attribute_grid(x, src)
    assert list(grid) == ["input", *names] and all(v.shape == x.shape for v in grid.values())
    assert parse_edit("Male=1,Young=0", names).targets == {3: 1.0, 4: 0.0}


def test_single_label_and_two_domain_batches():
    rafd = StarGAN(**{**TINY, "attributes": RAFD, "label_mode": "single"})
    assert "neutraltohappy" in rafd.directions and len(rafd.directions) == 56
    seen = []
    rafd.generate = lambda x, a, b, edited, raw, intensity=None: seen.append(b) or x
    x = torch.rand(2, 3, 32, 32)
    rafd.translate(x, "neutraltohappy")
    assert seen[-1].tolist() == [F.one_hot(torch.tensor(4), 8).tolist()] * 2
    rafd.translate(x, mode="attr:sad=1")
    assert seen[-1].argmax(1).tolist() == [6, 6] and seen[-1].sum().item() == 2
    with pytest.raises(UserError, match="one class"):
        rafd.translate(x, mode="attr:sad=0")
    x2, a = rafd.parse_batch({"image": x, "label": torch.tensor([7, 0])})
    assert a.argmax(1).tolist() == [7, 0]
    with pytest.raises(UserError, match="class labels"):
        rafd.parse_batch({"image": x, "label": torch.tensor([-1, 0])})
    one = StarGAN(**TINY)
    batch = {"A": torch.zeros(3, 3, 32, 32), "B": torch.ones(3, 3, 32, 32)}
    x, a = one.parse_batch(batch)
    assert a[:, 0].tolist() == [0, 0, 0, 1, 1, 1] and torch.equal(x[3:], batch["B"])
    assert one.parse_batch(batch, grid=True)[1][:, 0].tolist() == [0, 1]
    with pytest.raises(UserError, match="attribute vectors"):
        one.parse_batch({"image": x, "label": torch.zeros(6, 3)})
    with pytest.raises(UserError, match="two-domain"):
        StarGAN(**{**TINY, "attributes": ["a", "b"]}).parse_batch(batch)


# ----------------------------------------------------------------------------------- CelebA data
def _celeba(root, **kw):
    from datamodules.celeba import CelebAAttributes

    opts = dict(root=str(root), preprocess="center_crop_resize", center_crop=16, crop_size=16, load_size=16,
                batch_size=4, attributes=["Black_Hair", "Male", "Young"], a="Male", b="Young")
    return CelebAAttributes(**{**opts, **kw})


def test_celeba_multi_attribute_batches_and_official_splits(tmp_path):
    from datamodules.celeba import protocol_split

    table = make_celeba(tmp_path / "c", 40)
    parts = make_partition(tmp_path / "c", 40)
    dm = _celeba(tmp_path / "c")
    dm.setup("fit")
    ds = dm.dataset("train")
    pool = [f for f, t in table.items() if (t["Male"] or t["Young"]) and parts[f] == 0]
    assert [p.rsplit("/", 1)[-1] for p in (ds[i]["path"] for i in range(len(ds)))] == pool  # A or B, file order
    for i in range(len(ds)):
        item = ds[i]
        t = table[item["path"].rsplit("/", 1)[-1]]
        assert item["label"].tolist() == [float(t[k]) for k in ("Black_Hair", "Male", "Young")]
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"image", "label", "path"} and batch["label"].shape == (4, 3)
    assert batch["label"].dtype == torch.float32 and batch["image"].shape == (4, 3, 16, 16)
    test_a = dm.eval_source("A", "test")  # the evaluation domains are unchanged (labels 0 / 1)
    assert set(test_a.labels) == {0}
    assert dm.attribute_values("A", "test")[:, 1].tolist() == [1.0] * len(test_a)
    # StarGAN: random.seed(1234); random.shuffle(lines); (i + 1) < 2000 is test
    lines = [f"{i:06d}.jpg" for i in range(2100)]
    random.seed(1234)
    random.shuffle(lines)
    split = protocol_split("stargan", 2100)
    assert {f"{i:06d}.jpg" for i in np.flatnonzero(split == 2)} == set(lines[:1999]) and (split == 0).sum() == 101
    att = protocol_split("attgan", 202599)
    assert (att[:182000] == 0).all() and (att[182000:182637] == 1).all() and (att[182637:] == 2).all()
    with pytest.raises(UserError, match="full CelebA"):
        protocol_split("attgan", 40)
    with pytest.raises(UserError, match="Male"):
        _celeba(tmp_path / "c", attributes=["Mal"]).check()
    with pytest.raises(UserError, match="split_protocol"):
        _celeba(tmp_path / "c", split_protocol="other").check()


def test_data_and_model_must_agree(tmp_path):
    make_celeba(tmp_path / "c", 30)
    make_partition(tmp_path / "c", 30)
    model = StarGAN(**{**TINY, "attributes": ["Black_Hair", "Young", "Male"], "image_size": 16, "d_repeat_num": 2})
    with pytest.raises(UserError, match="differ from model.attributes"):
        trainer(tmp_path, max_steps=1).fit(model, _celeba(tmp_path / "c"))
    model = StarGAN(**{**TINY, "attributes": ["Black_Hair", "Male", "Young"]})
    with pytest.raises(UserError, match="takes 32x32"):
        trainer(tmp_path, max_steps=1).fit(model, _celeba(tmp_path / "c"))


# ----------------------------------------------------------------------------------- CLI
TINY_CLI = ["--trainer.enable_progress_bar", "false", "--trainer.logger", "false", "--trainer.limit_val_batches", "0",
            "--model.init_args.g_conv_dim", "8", "--model.init_args.d_conv_dim", "8",
            "--model.init_args.g_repeat_num", "1"]


def test_cli_accessory_digits_then_translate_with_a_mode(tmp_path, cli_env):
    from torchvision.io import read_image, write_png

    from datamodules.builtin import indices, render
    from lit_i2i.cli import main
    from lit_i2i.commands import load_run

    ckpt, state = cli_fit(tmp_path, "experiments/stargan/digits_accessory.yaml", *TINY_CLI, "--metrics.metrics", "[]",
                          "--trainer.max_steps", "12", "--data.init_args.train_limit", "32")
    assert state["iteration"] == 10 and state["global_step"] == 12  # 10 D steps + 2 G steps
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    imgs, _, _ = render("accessory", indices("B", "test")[:2])
    for i, x in enumerate(imgs):
        write_png(x, str(inp / f"d{i}.png"))
    assert main(["translate", "--ckpt", str(ckpt), "--input", str(inp), "--output", str(out),
                 "--mode", "attr:accessory=0"]) == 0
    model, _ = load_run(ckpt)
    x = imgs[:1].float() / 127.5 - 1
    expected = ((model.translate(x, mode="attr:accessory=0")[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    assert (read_image(str(out / "d0.png")).int() - expected.int()).abs().max() <= 1


def test_cli_celeba_five_attributes_on_a_generated_celeba(tmp_path, cli_env):
    make_celeba(tmp_path / "celeba", 40, size=(20, 24))
    make_partition(tmp_path / "celeba", 40)
    ckpt, state = cli_fit(tmp_path, "experiments/stargan/celeba.yaml", *TINY_CLI, "--metrics.metrics", "[]",
                          "--trainer.max_steps", "6", "--data.init_args.root", str(tmp_path / "celeba"),
                          "--data.init_args.split_protocol", "null", "--data.init_args.center_crop", "16",
                          "--data.init_args.crop_size", "16", "--data.init_args.load_size", "16",
                          "--data.init_args.batch_size", "4", "--data.init_args.num_workers", "0",
                          "--model.init_args.image_size", "16", "--model.init_args.d_repeat_num", "2")
    assert state["iteration"] == 5 and state["hyper_parameters"]["attributes"] == [
        "Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
    assert list((tmp_path / "run" / "grids").glob("final_*.png"))


def test_cli_rafd_folders(tmp_path, cli_env):
    from lit_i2i.commands import load_run

    make_multidomain(tmp_path / "RaFD", RAFD, 2, size=(20, 20))
    ckpt, state = cli_fit(tmp_path, "experiments/stargan/rafd.yaml", *TINY_CLI, "--trainer.max_steps", "6",
                          "--data.init_args.root", str(tmp_path / "RaFD"), "--data.init_args.center_crop", "16",
                          "--data.init_args.crop_size", "16", "--data.init_args.load_size", "16",
                          "--data.init_args.batch_size", "4", "--data.init_args.num_workers", "0",
                          "--model.init_args.image_size", "16", "--model.init_args.d_repeat_num", "2",
                          "--metrics.metrics", "[fid_digits]", "--metrics.directions", "[neutraltohappy]",
                          "--metrics.classifier", '{"neutraltohappy": "colored-digits"}')
    assert state["iteration"] == 5
    summary = (tmp_path / "run" / "metrics.json").read_text()
    assert "val/fid_digits_neutraltohappy" in summary
    model, _ = load_run(ckpt)
    assert model.translate(torch.rand(2, 3, 16, 16) * 2 - 1, "neutraltohappy").shape == (2, 3, 16, 16)


def test_benchmark_smoke(tmp_path, cli_env):
    """The attribute-editing benchmark end to end (2 steps per method, 4 test images per domain)."""
    import importlib.util
    import json

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("bench", ROOT / "experiments" / "stargan" / "benchmark.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--out", str(tmp_path), "--max_steps", "2", "--max_samples", "4", "--threads", "0"]) == 0
    result = json.loads((tmp_path / "benchmark.json").read_text())
    assert set(result["methods"]) == {"stargan", "attgan", "stgan"}
    for k, r in result["methods"].items():
        assert r["steps"] == 2 and 0 <= r["add_success"] <= 1 and r["train_cpu_minutes"] > 0, k
        assert (tmp_path / k / "test_grid.png").is_file()
    assert result["input"]["remove_l1_outside"] == 0 and result["input"]["add_digit_kept"] > 0.7
    assert "| remove: L1 to the bar-free rendering | lower |" in (tmp_path / "benchmark.md").read_text()
