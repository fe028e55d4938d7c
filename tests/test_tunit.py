"""TUNIT: official parameter counts, IIC / InfoNCE / R1 on known inputs, the persistent FIFO queue
(and its checkpoint), which parameters each step moves before and after the warm-up, exact resume
across the warm-up boundary, the semi-supervised schedule, translate/cluster, the official mFID
protocol on a stub extractor, CLI runs on built-in data and on a generated folder, and 2-process DDP
keeping one queue.

Also a script: ``python tests/test_tunit.py ddp OUT_DIR`` (one rank of the 2-process DDP run)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from helpers import cli_fit, params, trainer  # noqa: E402

from datamodules.builtin_multidomain import BuiltinMultiDomain, interleaved  # noqa: E402
from datamodules.semi import LabelledStream  # noqa: E402
from lit_i2i.core.losses import iic_loss, info_nce  # noqa: E402
from lit_i2i.errors import UserError  # noqa: E402
from lit_i2i.methods.tunit import TUNIT, KeyQueue  # noqa: E402
from lit_i2i.nets.content_style import (AdaINGenerator, MultiTaskDiscriminator, VGGGuidingNetwork,  # noqa: E402
                                        num_adain_params)

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(img_size=32, ngf=8, content_size=8, ndf=8, max_dim_D=16, guide_width=0.125, style_dim=16, mlp_dim=16,
            queue_size=24)


def tiny_data(**kw) -> BuiltinMultiDomain:
    return BuiltinMultiDomain(**{"train_limit": 16, "batch_size": 4, "eval_batch_size": 8, **kw})


def count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ------------------------------------------------------------------------------------- networks
def test_parameter_counts_equal_the_official_networks():
    with torch.device("meta"):  # no memory, no init work: only the shapes
        g, d, e = AdaINGenerator(128, 128), MultiTaskDiscriminator(128, 10), VGGGuidingNetwork(128, 10)
        assert (count(g), count(d), count(e)) == (27_333_763, 70_935_242, 9_296_778)
        assert (count(g.cnt_encoder), count(g.decoder), count(g.mlp)) == (12_202_112, 13_749_891, 1_381_760)
        assert num_adain_params(g.decoder) == 4_992
        assert count(AdaINGenerator(256, 128)) == 27_424_835  # nf 32 from 256 px
        assert count(MultiTaskDiscriminator(256, 10)) == 70_983_018
        assert count(MultiTaskDiscriminator(256, 2)) == 70_974_818 and count(VGGGuidingNetwork(128, 2)) == 9_292_674
        m = TUNIT()
        assert (count(m.G), count(m.D), count(m.E)) == (27_333_763, 70_935_242, 9_296_778)


def test_generator_and_discriminator_shapes_and_residual_scale():
    torch.manual_seed(0)
    g = AdaINGenerator(32, 16, nf=8, content_size=8, mlp_dim=16)
    x, s = torch.rand(3, 3, 32, 32) * 2 - 1, torch.randn(3, 16)
    y = g(x, s)
    assert y.shape == x.shape and y.abs().max() <= 1
    assert all(b.res_scale == 0.1 for b in g.modules() if hasattr(b, "res_scale"))
    assert not torch.allclose(g(x, s), g(x, torch.randn(3, 16)))  # the style changes the output
    assert all(m.weight is None for m in g.modules() if type(m).__name__ == "AdaIN2d")  # no graph kept
    d = MultiTaskDiscriminator(32, 5, nf=8, max_dim=16)
    all_logits = d(x)
    assert all_logits.shape == (3, 5)
    lab = torch.tensor([4, 0, 2])
    assert torch.allclose(d(x, lab), all_logits[torch.arange(3), lab])


# ------------------------------------------------------------------------------------- losses
def test_iic_loss_on_known_joint_distributions():
    k = 4
    onehot = torch.eye(k).repeat(5, 1)  # 20 samples, balanced, both views agree
    assert float(iic_loss(onehot, onehot)) == pytest.approx(-math.log(k), abs=1e-6)  # -I = -H = -log K
    uniform = torch.full((20, k), 1 / k)
    assert float(iic_loss(uniform, uniform)) == pytest.approx(0.0, abs=1e-6)  # independent: I = 0
    # views that disagree at random carry no information either: P = outer(p_i, p_j)
    a = torch.eye(k).repeat(4, 1)
    b = torch.eye(k)[torch.arange(16) // 4]
    assert float(iic_loss(a, b)) == pytest.approx(0.0, abs=1e-6)
    # a hand-computed 2x2 joint: P = [[.4, .1], [.1, .4]]
    p = torch.tensor([[1.0, 0.0]] * 4 + [[0.0, 1.0]] * 4 + [[1.0, 0.0], [0.0, 1.0]])
    q = torch.tensor([[1.0, 0.0]] * 4 + [[0.0, 1.0]] * 4 + [[0.0, 1.0], [1.0, 0.0]])
    mi = 2 * 0.4 * math.log(0.4 / 0.25) + 2 * 0.1 * math.log(0.1 / 0.25)
    assert float(iic_loss(p, q)) == pytest.approx(-mi, abs=1e-6)
    # the official formula: outer-product sum, symmetrise, normalise, clamp, -sum P (log P - log Pi - log Pj)
    torch.manual_seed(0)
    p, q = torch.randn(9, 3).softmax(1), torch.randn(9, 3).softmax(1)
    pij = (p.unsqueeze(2) * q.unsqueeze(1)).sum(0)
    pij = (pij + pij.t()) / 2
    pij = pij / pij.sum()
    ref = -(pij * (pij.log() - pij.sum(0, keepdim=True).log() - pij.sum(1, keepdim=True).log())).sum()
    assert torch.allclose(iic_loss(p, q), ref, atol=1e-6)


def test_info_nce_on_known_codes():
    q = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    k = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    neg = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])  # q . n = 0 for all 3 negatives
    tau = 0.5
    expected = (math.log(1 + 3 * math.exp(-1 / tau)) + math.log(1 + 3 * math.exp(-2 / tau))) / 2  # no L2 norm
    assert float(info_nce(q, k, neg, tau)) == pytest.approx(expected, rel=1e-5)
    assert float(info_nce(q, k, None)) == 0.0  # only the positive: nothing to contrast
    # equal to the official calc_contrastive_loss (bmm for positives, mm with the queue)
    torch.manual_seed(1)
    tau = 0.07
    q, k, queue = torch.randn(5, 8), torch.randn(5, 8), torch.randn(7, 8)
    logits = torch.cat([torch.bmm(q.view(5, 1, -1), k.view(5, -1, 1)).view(5, 1), q @ queue.t()], 1) / tau
    assert torch.allclose(info_nce(q, k, queue, tau), torch.nn.functional.cross_entropy(logits, torch.zeros(5).long()))
    kk = k.clone().requires_grad_(True)
    info_nce(q.requires_grad_(True), kk, queue).backward()
    assert kk.grad is None and q.grad is not None  # the key is detached


def test_r1_penalty_against_autograd_on_a_tiny_d():
    torch.manual_seed(0)
    m = TUNIT(**TINY)
    d = MultiTaskDiscriminator(8, 3, nf=4, max_dim=8)
    x = torch.randn(5, 3, 8, 8, requires_grad=True)
    y = torch.tensor([0, 1, 2, 1, 0])
    r1 = m.r1(d(x, y), x)
    total = 0.0  # each image's gradient on its own (D's outputs are per image: no cross terms)
    for i in range(5):
        xi = x[i:i + 1].detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(d(xi, y[i:i + 1]).sum(), xi)
        total += float(g.pow(2).sum())
    assert float(r1) == pytest.approx(10.0 * total / 5, rel=1e-5)  # w_gp * sum ||grad||^2 / N, no 1/2
    assert r1.requires_grad  # it trains D (create_graph)


# ------------------------------------------------------------------------------------- queue
def test_queue_is_fifo_and_survives_a_checkpoint_round_trip():
    q = KeyQueue(5, 2)
    assert len(q) == 0 and q.get().shape == (0, 2)
    keys = torch.arange(16, dtype=torch.float32).view(8, 2)
    q.enqueue(keys[:3])
    assert torch.equal(q.get(), keys[:3])
    q.enqueue(keys[3:5])
    assert torch.equal(q.get(), keys[:5])
    q.enqueue(keys[5:8])  # the three oldest leave first
    assert torch.equal(q.get(), keys[3:8]) and len(q) == 5
    m, m2 = TUNIT(**TINY), TUNIT(**TINY)
    m.queue.enqueue(torch.randn(7, 16))
    m2.load_state_dict(m.state_dict())
    assert len(m2.queue) == 7 and torch.equal(m2.queue.get(), m.queue.get())


# ------------------------------------------------------------------------------------- steps
class Recording(TUNIT):
    def on_train_start(self):
        self.snaps = [("start", params(self))]

    def step(self, name, loss, clip=None):
        super().step(name, loss, clip)
        self.snaps.append((name, params(self)))

    def joint_step(self, names, fed, cut=None):
        super().joint_step(names, fed, cut)
        self.snaps.append(("+".join(names), params(self)))


def _moved(before, after, prefix):
    return any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix)
               and before[k].is_floating_point() and "running" not in k)


def _steps(model):
    out = []
    for (_, before), (name, after) in zip(model.snaps, model.snaps[1:]):
        out.append((name, tuple(p for p in ("E.", "G.", "D.") if _moved(before, after, p))))
    return out


def test_each_step_moves_its_nets_and_e_also_moves_in_the_g_step_after_the_warm_up(tmp_path):
    pl.seed_everything(0)
    m = Recording(separated=2, ema_start=3, **TINY)
    trainer(tmp_path, max_steps=2 + 3 * 2).fit(m, tiny_data())
    assert _steps(m) == [("E", ("E.",)), ("E", ("E.",)),  # warm-up: the guiding network alone
                         ("E", ("E.",)), ("D", ("D.",)), ("E+G", ("E.", "G.")),
                         ("E", ("E.",)), ("D", ("D.",)), ("E+G", ("E.", "G."))]
    # the key encoder follows E (EMA) from the start; G_ema was copied at ema_start and averaged after
    assert m.iteration == 4 and len(m.queue) == 4 + 4 * 4
    assert not torch.equal(m.E_ema.features[0].weight, m.E.features[0].weight)
    assert not torch.equal(m.G_ema.mlp.model[0].weight, m.G.mlp.model[0].weight)


def test_separate_training_freezes_e_and_cut_feedback_keeps_it_out_of_the_g_step(tmp_path):
    pl.seed_everything(0)
    m = Recording(separated=1, ema_start=1, joint=False, **TINY)
    trainer(tmp_path / "a", max_steps=1 + 2 * 2).fit(m, tiny_data())
    assert _steps(m) == [("E", ("E.",)), ("D", ("D.",)), ("G", ("G.",)), ("D", ("D.",)), ("G", ("G.",))]
    pl.seed_everything(0)
    m = Recording(separated=1, ema_start=1, feedback=[], **TINY)
    trainer(tmp_path / "b", max_steps=1 + 3).fit(m, tiny_data())
    assert _steps(m)[-1] == ("E+G", ("G.",))  # no translation loss reaches E
    with pytest.raises(UserError, match="feedback"):
        TUNIT(feedback=["cycle"], **TINY)


def test_cut_feedback_gives_e_only_the_gradient_of_the_kept_terms():
    torch.manual_seed(0)
    m = TUNIT(**TINY)
    opts = {n: torch.optim.SGD(getattr(m, n).parameters(), lr=0.0) for n in ("E", "G")}
    seen = {}
    for n, o in opts.items():
        o.step = (lambda n: lambda: seen.__setitem__(n, [None if p.grad is None else p.grad.clone()
                                                         for p in getattr(m, n).parameters()]))(n)
    m.optimizer = lambda n: opts[n]
    m.optimizers = lambda: list(opts.values())
    m.manual_backward = lambda loss, **kw: loss.backward(**kw)
    x = torch.rand(4, 3, 32, 32) * 2 - 1

    def terms():
        s = m.E.style(x)
        y = m.G(x, s)
        return (y - x).abs().mean(), y.pow(2).mean() + s.pow(2).mean()

    fed, cut = terms()
    m.joint_step(("E", "G"), fed, cut)
    fed, cut = terms()
    want_e = torch.autograd.grad(fed, list(m.E.parameters()), retain_graph=True, allow_unused=True)
    want_g = torch.autograd.grad(fed + cut, list(m.G.parameters()), allow_unused=True)

    def same(a, b):  # a parameter outside the graph (E's cluster head here) has no gradient in both
        return (a is None and b is None) or (a is not None and b is not None and torch.allclose(a, b, atol=1e-7))

    assert sum(g is not None for g in want_e) > 0 and sum(g is None for g in want_e) > 0
    assert all(same(a, b) for a, b in zip(seen["E"], want_e))
    assert all(same(a, b) for a, b in zip(seen["G"], want_g))


# ------------------------------------------------------------------------------------- resume
def _fit(root, epochs, ckpt=None, **kw):
    from pytorch_lightning.callbacks import ModelCheckpoint

    pl.seed_everything(1)
    model = TUNIT(**{**TINY, "separated": 6, "ema_start": 9, **kw})
    cb = ModelCheckpoint(dirpath=root / "ckpt", save_last=True, every_n_epochs=1, save_top_k=-1)
    t = trainer(root, max_epochs=epochs, enable_checkpointing=True, callbacks=[cb], deterministic=True)
    t.fit(model, tiny_data(), ckpt_path=ckpt)
    return model


def test_resume_is_exact_across_the_warm_up_boundary(tmp_path):
    straight = _fit(tmp_path / "a", epochs=3)  # 4 iterations per epoch: the GANs start in epoch 2
    _fit(tmp_path / "b", epochs=1)  # a checkpoint inside the warm-up
    resumed = _fit(tmp_path / "c", epochs=3, ckpt=str(tmp_path / "b" / "ckpt" / "last.ckpt"))
    sa, sb = straight.state_dict(), resumed.state_dict()
    assert sa.keys() == sb.keys() and straight.iteration == resumed.iteration == 12
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k  # nets, EMA copies, queue, cluster statistics
    assert int(sa["queue.count"]) == 24  # full


# ------------------------------------------------------------------------------------- modes
def test_semi_supervised_schedule_and_labelled_stream(tmp_path):
    m = TUNIT(mode="semi", p_semi=0.1, semi_cycle=100, **TINY)
    assert m.sup_only == 20 * 10 and m.separated == 200 + 1500 and m.ema_start == 200 + 1600
    assert all(m.labelled_iteration(i) for i in range(200))
    assert [m.labelled_iteration(200 + i) for i in (0, 9, 10, 99, 100, 109, 110)] == [True, True, False, False,
                                                                                        True, True, False]
    m = TUNIT(mode="semi", p_semi=0.3, **TINY)
    assert m.sup_only == 20 * 300 and m.separated == 6000 + 15_000  # the official epochs, in iterations
    assert TUNIT(**TINY).separated == 65_000 and TUNIT(**TINY).ema_start == 66_000
    assert TUNIT(mode="supervised", **TINY).separated == 0
    # a semi run: labelled iterations read the labelled stream and log their cross-entropy
    dm = tiny_data(labelled=True, label_fraction=0.3)
    item = dm.dataset("train")[0]
    assert item["label"] == -1 and item["sup_label"] >= 0 and item["sup_view"].shape == item["sup_image"].shape
    pl.seed_everything(0)
    m = TUNIT(mode="semi", semi_cycle=10, semi_sup_only=2, separated=3, ema_start=3, **TINY)
    t = trainer(tmp_path, max_steps=2 + 1 + 3, log_every_n_steps=1)
    t.fit(m, dm)  # p_semi from the datamodule's label_fraction: 0.3 -> 3 labelled iterations per cycle of 10
    assert m.semi_fraction() == 0.3 and "train/loss_ce" in t.callback_metrics and "train/loss_G" in t.callback_metrics
    with pytest.raises(UserError, match="labelled stream"):
        m2 = TUNIT(mode="semi", p_semi=0.5, **TINY)
        m2._inputs({"image": torch.zeros(2, 3, 32, 32), "view": torch.zeros(2, 3, 32, 32)}, True)


def test_labelled_stream_walks_the_unlabelled_items():
    ds = [{"image": torch.full((1,), float(i)), "label": lab} for i, lab in enumerate([0, -1, -1, 1, -1])]
    s = LabelledStream(ds, [d["label"] for d in ds])
    assert len(s) == 3 and [float(s[i]["image"]) for i in range(3)] == [1.0, 2.0, 4.0]
    assert all(s[i]["sup_label"] in (0, 1) for i in range(3))
    assert interleaved(torch.tensor([0, 0, 1, 2, 1])).tolist() == [0, 2, 3, 1, 4]


# ------------------------------------------------------------------------------------- inference
def test_translate_reference_cluster_and_grids(tmp_path):
    pl.seed_everything(0)
    m = TUNIT(separated=1, ema_start=2, **TINY)
    dm = tiny_data()
    trainer(tmp_path, max_steps=1 + 3 * 3).fit(m, dm)
    m.eval()
    x = torch.stack([dm.dataset("val")[i]["image"] for i in range(4)])
    ref = x[2:3]
    y = m.translate(x, reference=ref)
    assert m.translator() is m.G_ema
    assert torch.allclose(y, m.G_ema(x, m.E_ema.style(ref).expand(4, -1)), atol=1e-6)
    assert torch.allclose(m.translate(x, "0to5", reference=x), m.G_ema(x, m.E_ema.style(x)), atol=1e-6)
    assert torch.equal(m.cluster(x), m.E.logits(x).argmax(1))
    counts = m.set_cluster_styles(x)
    k = int(counts.argmax())
    members = m.cluster(x) == k
    assert torch.allclose(m.translate(x, mode=f"cluster:{k}"),
                          m.G_ema(x, m.E_ema.style(x[members]).mean(0, keepdim=True).expand(4, -1)), atol=1e-5)
    with pytest.raises(UserError, match="reference"):
        m.translate(x)
    with pytest.raises(UserError, match="cluster"):
        m.translate(x, mode="cluster:99")
    vis = m.visuals({"image": x})
    assert list(vis)[:5] == ["source", "ref 0", "ref 1", "ref 2", "ref 3"]
    assert all(v.shape == (5, 3, 32, 32) for v in vis.values()) and any(n.startswith("cluster") for n in vis)
    assert torch.equal(vis["ref 1"][0], x[1]) and torch.allclose(vis["ref 1"][1:], m.translate(x, reference=x[1:2]))


def test_tunit_protocol_on_a_stub_extractor():
    from lit_i2i.metrics.tunit_protocol import best_mean, official_preprocess, tunit_mfid

    class Copy(torch.nn.Module):  # "translates" into the reference: its images are real images of the class
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def translate(self, x, direction=None, reference=None):
            return reference.expand_as(x)

    dm = BuiltinMultiDomain()
    mean_color = lambda x: torch.cat([x.mean((2, 3)), x.flatten(1)[:, ::97]], 1)  # noqa: E731
    r = tunit_mfid(Copy(), dm, mean_color, protocol="stub")
    sizes = [len(dm.eval_dataset(d, "train")) for d in dm.domains]
    n_target = (min(sizes) + max(sizes)) // 2
    assert r["draws"] == 5 and r["n_each"] == (n_target // 5) // 9 and set(r["fid_per_class"]) == set(dm.domains)
    assert r["n_fake"] == min(n_target, 9 * r["n_each"] * 5) and math.isfinite(r["mfid"])
    z = official_preprocess(torch.zeros(2, 3, 32, 32))  # mid-grey: ImageNet-normalised then 2x - 1
    assert z.shape == (2, 3, 299, 299)
    assert torch.allclose(z[0, :, 0, 0], torch.tensor([2 * (0.5 - 0.485) / 0.229 - 1, 2 * (0.5 - 0.456) / 0.224 - 1,
                                                       2 * (0.5 - 0.406) / 0.225 - 1]), atol=1e-6)
    assert best_mean([9.0, 3.0, 5.0, 1.0, 8.0, 2.0, 7.0]) == pytest.approx((1 + 2 + 3 + 5 + 7) / 5)
    assert best_mean([4.0, 2.0]) == 3.0


# ------------------------------------------------------------------------------------- CLI
CLI_TINY = ["--model.init_args.ngf", "8", "--model.init_args.ndf", "8", "--model.init_args.max_dim_D", "16",
            "--model.init_args.guide_width", "0.125", "--model.init_args.style_dim", "16",
            "--model.init_args.mlp_dim", "16", "--model.init_args.queue_size", "24",
            "--model.init_args.separated", "2", "--model.init_args.ema_start", "3",
            "--model.init_args.max_iterations", "4", "--trainer.max_steps", "-1",
            "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
            "--metrics.metrics", "[]", "--data.init_args.batch_size", "4", "--data.init_args.num_workers", "0"]


def test_cli_on_built_in_digits(tmp_path, cli_env):
    ckpt, state = cli_fit(tmp_path, "experiments/tunit/digits.yaml", *CLI_TINY, "--data.init_args.train_limit", "32",
                          "--model.init_args.content_size", "8")
    # 2 E-only iterations, then 2 joint ones of 4 optimizer steps each (E, D, and the G loss stepping G and E)
    assert state["iteration"] == 4 and state["global_step"] == 2 + 2 * 4
    assert int(state["state_dict"]["queue.count"]) == 4 + 4 * 4
    assert state["lit_i2i_config"]["model"]["class_path"] == "lit_i2i.methods.tunit.TUNIT"
    assert list((tmp_path / "run" / "grids").glob("final_*.png"))
    from lit_i2i.commands import load_run

    model, _ = load_run(ckpt)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    assert model.translate(x, reference=x[:1]).shape == x.shape and model.cluster(x).shape == (3,)


def test_cli_on_a_generated_multi_domain_folder(tmp_path, cli_env):
    from data_factory import make_multidomain

    root = make_multidomain(tmp_path / "summer2winter", ["summer", "winter"], 6, size=(40, 36), n_test=3)
    _, state = cli_fit(tmp_path, "experiments/tunit/summer2winter.yaml", *CLI_TINY, "--data.init_args.root", str(root),
                       "--model.init_args.img_size", "32", "--data.init_args.load_size", "32",
                       "--data.init_args.crop_size", "32", "--model.init_args.content_size", "8")
    assert state["iteration"] == 4 and state["hyper_parameters"]["n_clusters"] == 2
    out = tmp_path / "translated"
    from lit_i2i.cli import main

    assert main(["translate", "--ckpt", str(tmp_path / "run" / "checkpoints" / "last.ckpt"), "--input",
                 str(root / "test" / "summer"), "--reference", str(root / "test" / "winter" / "000.png"),
                 "--output", str(out), "--device", "cpu"]) == 0
    assert len(list(out.glob("*.png"))) == 3


def test_wrong_image_size_is_one_line():
    m = TUNIT(**TINY)
    with pytest.raises(UserError, match="img_size"):
        m._inputs({"image": torch.zeros(2, 3, 64, 64), "view": torch.zeros(2, 3, 64, 64)}, False)
    with pytest.raises(UserError, match="second augmented view"):
        m._inputs({"image": torch.zeros(2, 3, 32, 32)}, False)


# ------------------------------------------------------------------------------------- DDP
def _ddp_main(out: str) -> None:
    """One rank: 2-process DDP (gloo) for 3 iterations; each rank writes its queue and its own keys."""
    pl.seed_everything(0)
    model = TUNIT(**{**TINY, "separated": 2, "ema_start": 2, "queue_size": 64})
    seen = []
    orig = model.queue.enqueue
    model.queue.enqueue = lambda k: (seen.append(k.clone()), orig(k))[-1]
    t = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp_find_unused_parameters_true", max_steps=1 + 1 + 3,
                   logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                   num_sanity_val_steps=0, limit_val_batches=0)
    t.fit(model, tiny_data())
    torch.save({"queue": model.queue.get().clone(), "enqueued": seen, "E": model.E.features[0].weight.detach().clone()},
               Path(out) / f"rank{t.global_rank}.pt")


def test_two_process_ddp_keeps_one_queue_with_every_ranks_keys(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port), "WORLD_SIZE": "2", "NODE_RANK": "0",
            "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, str(HERE / "test_tunit.py"), "ddp", str(tmp_path)],
                              env={**base, "LOCAL_RANK": str(r), "RANK": str(r)}, cwd=str(HERE.parent),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in range(2)]
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(log[-3000:] for log in logs)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert torch.equal(r0["queue"], r1["queue"]) and torch.equal(r0["E"], r1["E"])
    # initial keys + 3 iterations of keys, each the 2 x 4 keys of both ranks' local batches of 4
    assert len(r0["queue"]) == 4 * 8 and all(len(k) == 8 for k in r0["enqueued"])
    assert torch.equal(r0["queue"], torch.cat(r0["enqueued"]))
    assert not torch.allclose(r0["enqueued"][1][:4], r0["enqueued"][1][4:])  # the two ranks' halves differ


if __name__ == "__main__":
    if sys.argv[1] == "ddp":
        _ddp_main(sys.argv[2])
