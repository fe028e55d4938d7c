"""XGAN: gradient reversal, shared layers are one set of tensors (and the sharing variants), loss terms
on known inputs, the multi-class DANN, which parameters each step moves, discriminator thresholding,
translation both ways and nearest neighbours, exact resume, CLI runs on built-in data, on a
CartoonSet-like folder with its CSVs and on fake SVHN/MNIST files; the CartoonSet datamodule."""

import math
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from PIL import Image
from pytorch_lightning.callbacks import ModelCheckpoint
from torch import nn

from helpers import check_steps, cli_fit, recording, tiny_data, trainer
from lit_i2i.core.grad_reverse import GradReverse, dann_lambda, grad_reverse
from lit_i2i.errors import UserError
from lit_i2i.methods.xgan import XGAN, distance
from lit_i2i.nets.vae import unique_parameters

TINY = dict(image_size=32, enc_channels=[8, 8, 8, 8], emb_dim=16, dec_channels=[16, 8, 8], dann_hidden=[8],
            disc_channels=[8, 8])

pytestmark = pytest.mark.usefixtures("one_thread")


def street(**kw):
    return tiny_data(a="street-digits", b="digits", **kw)


class ConstLogit(nn.Module):
    def __init__(self, value: float = 0.0, n: int = 1):
        super().__init__()
        self.value, self.n = value, n

    def forward(self, x):
        return torch.full((x.shape[0], self.n), self.value)


# ---------------------------------------------------------------------------------- gradient reversal
def test_gradient_reversal_flips_and_scales_the_gradient():
    x = torch.randn(3, 4, requires_grad=True)
    w = torch.randn(3, 4)
    y = grad_reverse(x, 0.5)
    assert torch.equal(y, x)  # the identity forward
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -0.5 * w)
    x.grad = None
    layer = GradReverse(2.0)
    (layer(x) * w).sum().backward()
    assert torch.allclose(x.grad, -2.0 * w) and "scale=2.0" in repr(layer)
    x.grad = None
    (grad_reverse(x, 0.0) * w).sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(w))
    with pytest.raises(ValueError):
        grad_reverse(x, -1.0)
    assert dann_lambda(0.0) == 0.0 and 0.99 < dann_lambda(1.0) < 1.0 and dann_lambda(2.0) == dann_lambda(1.0)


def test_the_model_reverses_the_domain_gradient_into_the_encoders_only():
    m = XGAN(**TINY)
    m.eval()  # no dropout: the two backward passes see the same function
    z_a, z_b = torch.randn(4, 16, requires_grad=True), torch.randn(4, 16, requires_grad=True)
    loss = m.dann_loss({"z_A": z_a, "z_B": z_b}, scale=0.5)
    loss.backward()
    g_rev, p_rev = z_a.grad.clone(), [p.grad.clone() for p in m.c_dann.parameters()]
    z_a.grad = None
    m.c_dann.zero_grad()
    logit = m.c_dann(torch.cat([z_a, z_b])).squeeze(1)  # the same loss without reversal
    F.binary_cross_entropy_with_logits(logit, torch.cat([torch.zeros(4), torch.ones(4)])).backward()
    assert torch.allclose(g_rev, -0.5 * z_a.grad, atol=1e-7)  # the encoders get the flipped, scaled gradient
    assert all(torch.allclose(a, p.grad) for a, p in zip(p_rev, m.c_dann.parameters()))  # c_dann its own


# ---------------------------------------------------------------------------------- shared layers
def test_shared_layers_are_one_set_of_tensors(tmp_path):
    m = XGAN(**TINY)
    assert m.enc_A.shared is m.enc_B.shared and m.dec_A.shared is m.dec_B.shared
    assert m.enc_A.front is not m.enc_B.front and m.dec_A.back is not m.dec_B.back
    ids_b = {id(p) for p in m.enc_B.parameters()}
    assert {id(p) for p in m.enc_A.shared.parameters()} <= ids_b
    opt = m.build_optimizers()["G"]
    ids = [id(p) for g in opt.param_groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(unique_parameters(m.enc_A, m.enc_B, m.dec_A, m.dec_B, m.c_dann))
    assert opt.param_groups[1]["lr"] == 1e-3 and opt.param_groups[1]["betas"][0] == 0.99  # c_dann's own group
    fc = m.enc_B.shared[-1].weight
    before = fc.detach().clone()
    pl.seed_everything(0)
    trainer(tmp_path, max_steps=2).fit(m, street())
    assert m.enc_A.shared is m.enc_B.shared and not torch.equal(before, m.enc_B.shared[-1].weight)
    m2 = XGAN(**TINY)
    m2.load_state_dict(m.state_dict())  # both keys of a shared tensor load into the one tensor
    assert m2.enc_A.shared is m2.enc_B.shared and torch.equal(m2.enc_A.shared[-1].weight, m.enc_B.shared[-1].weight)


def test_sharing_variants():
    none = XGAN(sharing="none", **TINY)
    shared_ids = {id(p) for p in none.enc_A.parameters()} & {id(p) for p in none.enc_B.parameters()}
    shared_ids |= {id(p) for p in none.dec_A.parameters()} & {id(p) for p in none.dec_B.parameters()}
    assert not shared_ids
    one = XGAN(sharing="encoder", **TINY)
    assert one.enc_A is one.enc_B and one.dec_A.shared is one.dec_B.shared and one.dec_A.back is not one.dec_B.back
    with pytest.raises(ValueError):
        XGAN(sharing="all", **TINY)
    # with joint BatchNorm batches the shared layers run on both domains at once; in eval mode the result is
    # each encoder's own, as with per-domain batches (the default)
    for m in (XGAN(**TINY), none, one, XGAN(**TINY, bn_batches="joint"), XGAN(sharing="none", bn_batches="joint", **TINY),
              XGAN(sharing="encoder", bn_batches="joint", **TINY)):
        m.eval()
        a, b = torch.rand(2, 3, 32, 32), torch.rand(3, 3, 32, 32)
        z_a, z_b = m.encode(a, b)
        assert torch.allclose(z_a, m.enc_A(a), atol=1e-6) and torch.allclose(z_b, m.enc_B(b), atol=1e-6)
        d = m.decode(z_a, z_b)
        assert torch.allclose(d["fake_B"], m.dec_B(z_a), atol=1e-6) and torch.allclose(d["rec_A"], m.dec_A(z_a), atol=1e-6)
        assert torch.allclose(d["fake_A"], m.dec_A(z_b), atol=1e-6) and torch.allclose(d["rec_B"], m.dec_B(z_b), atol=1e-6)


def test_paper_layer_plan_at_64():
    m = XGAN()  # the paper's plan (the reimplementation's widths)
    x = torch.zeros(2, 3, 64, 64)
    m.eval()
    assert m.enc_A(x).shape == (2, 1024) and m.dec_B(m.enc_A(x)).shape == (2, 3, 64, 64)
    convs = [mod for mod in m.enc_A.front if isinstance(mod, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64]
    assert m.enc_A.shared[-1].in_features == 1024 and m.enc_A.shared[-5].in_features == 4096
    assert [mod.out_channels for mod in m.dec_A.shared if isinstance(mod, nn.ConvTranspose2d)] == [512, 256]
    assert [mod.out_features for mod in m.c_dann.net if isinstance(mod, nn.Linear)] == [512, 256, 128, 64, 32, 16, 1]
    with pytest.raises(ValueError):
        XGAN(image_size=32)  # 4 decoder widths make 64x64, not 32x32


# ---------------------------------------------------------------------------------- losses
def test_distances_on_known_inputs():
    x, y = torch.zeros(2, 4), torch.full((2, 4), 2.0)
    assert distance(x, y, "l1") == 2 and distance(x, y, "l2") == 4
    assert math.isclose(float(distance(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 3.0]]), "cosine")), 1.0)
    assert float(distance(y, 3 * y, "cosine")) < 1e-6


def _known_v(m, n=2):
    z = torch.zeros(n, 3, 32, 32)
    return {"real_A": z, "real_B": z + 0.5, "rec_A": z + 0.5, "rec_B": z - 0.5, "fake_A": z, "fake_B": z,
            "z_A": torch.ones(n, 16), "z_B": torch.zeros(n, 16), "z_fake_B": torch.full((n, 16), 3.0),
            "z_fake_A": torch.full((n, 16), -1.0)}


def test_generator_loss_terms_on_known_inputs():
    m = XGAN(**TINY)
    m.c_dann, m.dis_B = ConstLogit(0.0), ConstLogit(2.0)
    g = m.generator_losses(_known_v(m))
    expected = {"rec_A": 1.0 * 0.5 * 3072 ** 0.5, "rec_B": 1.0 * 1.0 * 3072 ** 0.5,  # L2 norms of 3x32x32 images
                "dann": 1.0 * math.log(2),                       # a logit of 0 for both domains
                "sem_AB": 0.5 * 2.0 * 16, "sem_BA": 0.5 * 1.0 * 16,  # L1 norms of 16-d codes: |1 - 3|, |0 - (-1)|
                "gan_B": 0.7 * -math.log(1 / (1 + math.exp(-2.0)))}
    assert set(g) == set(expected)
    for k, v in expected.items():
        assert math.isclose(float(g[k]), v, rel_tol=1e-5), (k, float(g[k]), v)
    off = XGAN(**{**TINY, "sem_w": 0.0, "dann_w": 0.0, "gan_w": 0.0, "rec_loss": "l1"})
    g = off.generator_losses(_known_v(off))
    assert set(g) == {"rec_A", "rec_B"} and math.isclose(float(g["rec_B"]), 1.0)
    means = XGAN(**{**TINY, "rec_loss": "l2", "sem_distance": "l1"})  # the per-element means
    means.c_dann, means.dis_B = ConstLogit(0.0), ConstLogit(2.0)
    g = means.generator_losses(_known_v(means))
    assert math.isclose(float(g["rec_A"]), 0.25) and math.isclose(float(g["sem_AB"]), 1.0)
    assert not hasattr(off, "dis_B") and "D" not in off.build_optimizers()


def test_semantic_consistency_detaches_its_target_by_default():
    for detach in (True, False):
        m = XGAN(**{**TINY, "sem_detach": detach})
        v = _known_v(m)
        v["z_A"] = v["z_A"].clone().requires_grad_(True)
        v["z_fake_B"] = v["z_fake_B"].clone().requires_grad_(True)
        m.hparams.dann_w, m.hparams.gan_w = 0.0, 0.0
        m.use_gan = False
        m.generator_losses(v)["sem_AB"].backward()
        assert (v["z_A"].grad is None) == detach and v["z_fake_B"].grad is not None


def test_multiclass_dann_tells_four_embeddings_apart():
    m = XGAN(**{**TINY, "dann_classes": 4})
    assert m.c_dann.net[-1].out_features == 4 and m.needs_reencoding()
    m.c_dann = ConstLogit(0.0, 4)
    assert math.isclose(float(m.dann_loss(_known_v(m))), math.log(4), rel_tol=1e-6)
    # the targets: e1(a) 0, e2(b) 1, e2(d2(e1(a))) 2, e1(d1(e2(b))) 3
    m.c_dann = nn.Linear(16, 4, bias=False)
    v = {k: torch.randn(3, 16) for k in ("z_A", "z_B", "z_fake_B", "z_fake_A")}
    logits = m.c_dann(torch.cat([v["z_A"], v["z_B"], v["z_fake_B"], v["z_fake_A"]]))
    assert torch.allclose(m.dann_loss(v), F.cross_entropy(logits, torch.arange(4).repeat_interleave(3)))
    assert not XGAN(**{**TINY, "sem_w": 0.0}).needs_reencoding()
    with pytest.raises(ValueError):
        XGAN(**{**TINY, "dann_classes": 3})


def test_teacher_distillation_from_a_fixed_network():
    m = XGAN(**{**TINY, "teacher": "street-digits", "teach_w": 2.0})
    assert m.teacher.num_features == 64 and m.teacher_proj.out_features == 64
    assert not any(p.requires_grad for p in m.teacher.parameters())
    assert {id(p) for p in m.teacher_proj.parameters()} <= {id(p) for p in m.autoencoder_parameters()}
    assert not {id(p) for p in m.teacher.parameters()} & {id(p) for p in m.autoencoder_parameters()}
    m.train()
    assert not m.teacher.training  # stays in eval mode
    v = _known_v(m)
    t = m.teacher.features(v["real_A"])
    g = m.generator_losses(v)
    assert torch.allclose(g["teach"], 2.0 * F.mse_loss(m.teacher_proj(v["z_A"]), t))
    with pytest.raises(UserError):
        XGAN(**{**TINY, "teach_w": 1.0})


# ---------------------------------------------------------------------------------- steps
def test_g_step_then_d_step_touch_only_their_nets(tmp_path):
    pl.seed_everything(0)
    m = recording(XGAN)(**{**TINY, "d_threshold": 1.1})  # D always below the threshold: stepped every time
    trainer(tmp_path, max_steps=4).fit(m, street())
    g = ["enc_A", "enc_B", "dec_A", "dec_B", "c_dann"]
    assert check_steps(m, g, ["dis_B"]) == ["start", "G", "D", "G", "D"]


def test_discriminator_thresholding_skips_d_while_it_is_accurate(tmp_path):
    pl.seed_everything(0)
    m = recording(XGAN)(**{**TINY, "d_threshold": 0.0})  # an accuracy is never below 0: D never trained
    start = None
    trainer(tmp_path, max_steps=3).fit(m, street())
    assert [n for n, _ in m.snaps] == ["start", "G", "G", "G"]
    start = m.snaps[0][1]
    assert all(torch.equal(start[k], v) for k, v in m.state_dict().items() if k.startswith("dis_B"))
    # the accuracy the decision uses: real called real, fake called fake
    m.dis_B = ConstLogit(1.0)
    _, acc = m.discriminator_loss(torch.zeros(4, 3, 32, 32), torch.zeros(4, 3, 32, 32), m.dis_B)
    assert float(acc) == 0.5
    both = XGAN(**{**TINY, "gan_domains": "AB", "d_threshold": 1.1})
    assert hasattr(both, "dis_A") and len(both.build_optimizers()["D"].param_groups[0]["params"]) == len(
        unique_parameters(both.dis_A, both.dis_B))


# ---------------------------------------------------------------------------------- inference
def test_translate_both_ways_and_nearest_neighbours():
    pl.seed_everything(0)
    m = XGAN(**TINY)
    m.eval()
    a, b = torch.rand(3, 3, 32, 32) * 2 - 1, torch.rand(5, 3, 32, 32) * 2 - 1
    assert torch.allclose(m.translate(a, "AtoB"), m.dec_B(m.enc_A(a)))
    assert torch.allclose(m.translate(b, "BtoA"), m.dec_A(m.enc_B(b)))
    with pytest.raises(ValueError):
        m.translate(a, "AtoC")
    with pytest.raises(UserError):
        m.translate(a, mode="neighbours")  # no bank yet
    dist, idx = m.neighbours(a, b, k=2)
    brute = 1 - F.normalize(m.enc_A(a), dim=1) @ F.normalize(m.enc_B(b), dim=1).t()
    assert torch.equal(idx, brute.topk(2, dim=1, largest=False).indices) and torch.allclose(dist, brute.gather(1, idx))
    m.set_neighbour_bank(b, "B")
    assert torch.equal(m.translate(a, mode="neighbours"), b[idx[:, 0]])
    m.set_neighbour_bank(a, "A")
    assert torch.equal(m.translate(a, "BtoA", mode="neighbours"), a[m.neighbours(a, a, 1, "BtoA")[1][:, 0]])
    with pytest.raises(UserError):
        m.translate(a, mode="cycle")
    m.train()
    assert torch.equal(m.translate(a, mode="neighbours"), b[idx[:, 0]]) and m.training  # neighbours in eval mode
    assert set(m.visuals({"A": a, "B": b[:3]})) == {"real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B"}


def test_wrong_image_size_is_one_line():
    m = XGAN(**TINY)
    with pytest.raises(UserError, match="image_size"):
        m.training_step({"A": torch.zeros(2, 3, 16, 16), "B": torch.zeros(2, 3, 16, 16)}, 0)


# ---------------------------------------------------------------------------------- exact resume
def _fit(root, epochs, ckpt=None):
    pl.seed_everything(3)
    model = XGAN(**{**TINY, "dann_classes": 4})
    cb = ModelCheckpoint(dirpath=root / "ckpt", save_last=True, every_n_epochs=1, save_top_k=-1, filename="{epoch}")
    t = trainer(root, max_epochs=epochs, limit_train_batches=2, enable_checkpointing=True, callbacks=[cb],
                deterministic=True)
    t.fit(model, street(), ckpt_path=ckpt)
    return model


def test_resume_is_exact(tmp_path):
    straight = _fit(tmp_path / "a", 2)
    resumed = _fit(tmp_path / "b", 2, ckpt=str(tmp_path / "a" / "ckpt" / "epoch=0.ckpt"))
    assert straight.iteration == resumed.iteration == 4
    sa, sb = straight.state_dict(), resumed.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# ---------------------------------------------------------------------------------- CLI
TINY_CLI = ["--model.init_args.enc_channels", "[8, 8, 8, 8]", "--model.init_args.emb_dim", "16",
            "--model.init_args.dann_hidden", "[8]", "--trainer.enable_progress_bar", "false",
            "--trainer.logger", "false", "--trainer.limit_val_batches", "0", "--metrics.metrics", "[]",
            "--trainer.max_steps", "4", "--data.init_args.num_workers", "0", "--data.init_args.batch_size", "4"]


def _check_run(ckpt, state):
    from lit_i2i.commands import load_run

    assert state["global_step"] >= 4 and state["lit_i2i_config"]["model"]["class_path"] == "lit_i2i.methods.xgan.XGAN"
    model, _ = load_run(ckpt)
    assert model.enc_A.shared is model.enc_B.shared and model.dec_A.shared is model.dec_B.shared
    return model


def test_cli_street_digits(tmp_path, cli_env):
    ckpt, state = cli_fit(tmp_path, "experiments/xgan/street2digits.yaml", *TINY_CLI,
                          "--model.init_args.dec_channels", "[16, 8, 8]", "--model.init_args.disc_channels", "[8, 8]",
                          "--data.init_args.train_limit", "16")
    model = _check_run(ckpt, state)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert model.translate(x, "AtoB").shape == model.translate(x, "BtoA").shape == (2, 3, 32, 32)


def make_cartoonset(root, n: int, size: int = 40, seed: int = 0, subfolders: int = 1):
    """CartoonSet's layout: ``cs<id>.png`` (RGBA, transparent background) with ``cs<id>.csv`` beside it
    (``"attribute", variant, count`` per line); returns {file name: {attribute: variant}}."""
    from datamodules.cartoonset import ATTRIBUTES

    rng = np.random.default_rng(seed)
    counts = {a: int(c) for a, c in zip(ATTRIBUTES, rng.integers(2, 12, len(ATTRIBUTES)))}
    table = {}
    for i in range(n):
        folder = root / (str(i % subfolders) if subfolders > 1 else "")
        folder.mkdir(parents=True, exist_ok=True)
        name = f"cs{10**9 + 7919 * i}"
        rgba = rng.integers(0, 256, (size, size, 4), dtype=np.uint8)
        rgba[: size // 4, :, 3] = 0  # a transparent band
        Image.fromarray(rgba, "RGBA").save(folder / f"{name}.png")
        values = {a: int(rng.integers(c)) for a, c in counts.items()}
        (folder / f"{name}.csv").write_text("".join(f'"{a}", {v}, {counts[a]}\n' for a, v in values.items()))
        table[f"{name}.png"] = values
    return table


def make_faces(root, n: int, size: int = 24):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / f"face{i:03d}.jpg")


def test_cli_face2cartoon_on_a_cartoonset_like_folder(tmp_path, cli_env):
    make_cartoonset(tmp_path / "cartoonset10k", 12)
    make_faces(tmp_path / "faces", 10)
    ckpt, state = cli_fit(tmp_path, "experiments/xgan/face2cartoon.yaml", *TINY_CLI,
                          "--data.init_args.faces", str(tmp_path / "faces"),
                          "--data.init_args.cartoons", str(tmp_path / "cartoonset10k"),
                          "--data.init_args.test_size", "2", "--data.init_args.crop_size", "16",
                          "--model.init_args.image_size", "16", "--model.init_args.dec_channels", "[16, 8]",
                          "--model.init_args.disc_channels", "[8, 8]")
    model = _check_run(ckpt, state)
    assert model.hparams.image_size == 16 and state["lit_i2i_config"]["data"]["class_path"].endswith("CartoonSet")


def test_cli_svhn2mnist_on_fake_files(tmp_path, cli_env, monkeypatch):
    from data_factory import make_mnist_svhn

    root = make_mnist_svhn(tmp_path / "digits", monkeypatch)
    ckpt, state = cli_fit(tmp_path, "experiments/xgan/svhn2mnist.yaml", *TINY_CLI, "--data.init_args.root", str(root),
                          "--model.init_args.dec_channels", "[16, 8, 8]", "--model.init_args.disc_channels", "[8, 8]")
    _check_run(ckpt, state)


# ---------------------------------------------------------------------------------- CartoonSet data
def test_cartoonset_reads_csvs_filters_labels_splits_and_composites(tmp_path):
    from datamodules.cartoonset import CartoonSet, read_cartoon_csv

    table = make_cartoonset(tmp_path / "cartoonset100k", 30, subfolders=3)  # the 100k layout: sub-folders
    make_faces(tmp_path / "faces", 8)
    first = next(iter(table.values()))
    glasses = first["glasses"]
    keep = {f for f, v in table.items() if v["glasses"] == glasses}
    dm = CartoonSet(faces=str(tmp_path / "faces"), cartoons=str(tmp_path / "cartoonset100k"), test_size=1,
                    where={"glasses": [glasses]}, label_attribute="hair_color", crop_size=16, batch_size=2)
    dm.setup("fit")
    train, test = dm.eval_source("B", "train"), dm.eval_source("B", "test")
    names = {f.name for f in train.files} | {f.name for f in test.files}
    assert names == keep and len(test) == 1 and not {f.name for f in train.files} & {f.name for f in test.files}
    assert [int(x) for x in train.labels] == [table[f.name]["hair_color"] for f in train.files]
    assert dm.eval_source("B", "val").files == test.files  # validation = test
    img, label, path = train[0]
    assert img.shape == (3, 32, 32) and img.dtype == torch.uint8  # the central 80% of 40 px
    raw = np.asarray(Image.open(path))
    top = (40 - 32) // 2
    assert torch.equal(img[:, :10 - top], torch.full((3, 10 - top, 32), 255, dtype=torch.uint8))  # transparent -> white
    alpha = raw[top:top + 32, top:top + 32, 3:].astype(np.float64) / 255
    comp = np.round(raw[top:top + 32, top:top + 32, :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    assert np.array_equal(img.permute(1, 2, 0).numpy(), comp)
    batch = next(iter(dm.train_dataloader()))
    assert batch["A"].shape == batch["B"].shape == (2, 3, 16, 16) and batch["A_label"].tolist() == [-1, -1]
    assert len(dm.eval_source("A", "train")) == 7 and len(dm.eval_source("A", "test")) == 1
    parsed = read_cartoon_csv(Path(path).with_suffix(".csv"))
    assert {k: v for k, (v, _) in parsed.items()} == table[Path(path).name] and len(parsed) == 18


def test_cartoonset_errors_are_one_line(tmp_path):
    from datamodules.cartoonset import CartoonSet, read_cartoon_csv

    make_cartoonset(tmp_path / "cs", 4)
    make_faces(tmp_path / "faces", 4)
    csv = sorted((tmp_path / "cs").glob("*.csv"))[0]
    text = csv.read_text()
    csv.write_text(text + '"hair", 7\n')
    with pytest.raises(UserError, match="line 19"):
        read_cartoon_csv(csv)
    csv.write_text(text)
    kw = dict(faces=str(tmp_path / "faces"), cartoons=str(tmp_path / "cs"), test_size=1)
    with pytest.raises(UserError, match="did you mean hair_color"):
        CartoonSet(**kw, label_attribute="hair_colour").setup("fit")
    with pytest.raises(UserError, match="data.where"):
        CartoonSet(**kw, where={"glasses": [99]}).setup("fit")
    with pytest.raises(UserError, match="test_size"):
        CartoonSet(**{**kw, "test_size": 4}).setup("fit")
    csv.unlink()
    with pytest.raises(UserError, match="CSV"):
        CartoonSet(**kw).setup("fit")
    with pytest.raises(UserError, match="data.faces"):
        CartoonSet(**{**kw, "faces": str(tmp_path / "missing")}).setup("fit")


# ---------------------------------------------------------------------------------- the benchmark
def test_benchmark_smoke(tmp_path, cli_env):
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("xgan_benchmark", "experiments/xgan/benchmark.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert set(bench.DEFAULT_ROWS) <= set(bench.ROWS)
    for row in bench.ROWS:  # every row builds from its config or kwargs
        assert bench.build_model(row).method_name in ("xgan", "dtn", "cyclegan", "unit")
    assert bench.build_model("XGAN-noSem").hparams.sem_w == 0 and bench.build_model("DTN-ft").hparams.finetune_f
    out = tmp_path / "bench"
    assert bench.main(["--rows", "XGAN-noGAN,DTN", "--iters", "2", "--max_test", "12", "--train_limit", "8",
                       "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    assert set(res["rows"]) == {"identity", "XGAN-noGAN", "DTN"} and res["setting"]["test_images"] == 12
    assert all(0 <= a <= 1 for r in res["rows"].values() for a in r["acc"])
    assert (out / "grids" / "DTN_seed0.png").is_file() and "| DTN |" in (out / "results.md").read_text()


def test_batchnorm_batches_per_domain_in_training():
    """bn_batches domain (the reimplementation's separate calls): in training each domain's batch is normalised
    by its own statistics, so encode/decode equal the per-domain nets; joint mixes the two batches."""
    args = {**TINY, "dropout": 0.0}
    a, b = torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32) * 0.2
    per = XGAN(**args)
    per.train()
    z_a, z_b = per.encode(a, b)
    assert torch.allclose(z_a, per.enc_A(a), atol=1e-5) and torch.allclose(z_b, per.enc_B(b), atol=1e-5)
    d = per.decode(z_a, z_b)
    assert torch.allclose(d["fake_B"], per.dec_B(z_a), atol=1e-5) and torch.allclose(d["rec_B"], per.dec_B(z_b), atol=1e-5)
    joint = XGAN(**args, bn_batches="joint")
    joint.load_state_dict(per.state_dict())
    joint.train()
    assert not torch.allclose(joint.encode(a, b)[0], joint.enc_A(a), atol=1e-3)
    with pytest.raises(ValueError, match="bn_batches"):
        XGAN(**TINY, bn_batches="mixed")


def test_norm_distances_and_their_gradient_at_zero():
    from lit_i2i.methods.xgan import distance

    x, y = torch.tensor([[3.0, 4.0], [0.0, 0.0]], requires_grad=True), torch.zeros(2, 2)
    assert float(distance(x, y, "l2norm")) == pytest.approx(2.5)  # (5 + 0) / 2
    assert float(distance(x, y, "l1norm")) == pytest.approx(3.5)  # (7 + 0) / 2
    distance(x, y, "l2norm").backward()
    assert torch.isfinite(x.grad).all() and torch.equal(x.grad[1], torch.zeros(2))
