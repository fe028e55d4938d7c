"""OST: shared tensors across phases, selective backprop gradients, loss terms on known inputs, the
phase boundary, exact resume (one run with a boundary, and Phase II from a Phase I checkpoint), CLI."""

import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch import nn

from datamodules.oneshot import OneShot
from helpers import cli_fit, params, trainer
from lit_i2i.errors import UserError
from lit_i2i.methods.ost import OST

TINY_OST = dict(ngf=8, ndf=8)
ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")


def one_shot(**kw):
    return OneShot(**{"a_index": [3], "batch_size": 4, **kw})


def ids(module):
    return {id(p) for p in module.parameters()}


# ------------------------------------------------------------------------------- sharing and phases
def test_shared_layers_are_the_same_tensors_across_phases(tmp_path):
    pl.seed_everything(0)
    m = OST(phase1_steps=2, phase2_steps=2, **TINY_OST)
    assert m.enc_A.shared is m.enc_B.shared and m.dec_A.shared is m.dec_B.shared
    shared = {k: (v.data_ptr(), v) for k, v in m.enc_B.shared.state_dict(keep_vars=True).items()}
    trainer(tmp_path, max_steps=-1, max_epochs=-1).fit(m, one_shot())  # 2 Phase I + 2 Phase II iterations
    assert m.iteration == 4 and m.phase2_start == 2
    assert m.enc_A.shared is m.enc_B.shared and m.dec_A.shared is m.dec_B.shared
    after = m.enc_A.shared.state_dict(keep_vars=True)
    assert all(after[k] is v and after[k].data_ptr() == ptr for k, (ptr, v) in shared.items())  # same tensors
    assert not ids(m.enc_A.front) & ids(m.enc_B.front) and not ids(m.dec_A.back) & ids(m.dec_B.back)


def test_phase_boundary_clones_b_outer_layers_once(tmp_path):
    class Recording(OST):
        def on_train_start(self):
            self.log_phases, self.snaps = [], [params(self)]

        def training_step(self, batch, batch_idx):
            self.log_phases.append(self.phase)
            super().training_step(batch, batch_idx)
            self.snaps.append(params(self))

        def start_phase2(self):
            self.snaps_at_clone = params(self)
            super().start_phase2()
            self.after_clone = params(self)

    pl.seed_everything(0)
    m = Recording(phase1_steps=3, phase2_steps=2, **TINY_OST)
    trainer(tmp_path, max_steps=-1, max_epochs=-1).fit(m, one_shot())
    assert m.log_phases == [1, 1, 1, 2, 2]
    a_keys = [k for k in m.snaps[0] if k.startswith(("enc_A.front", "dec_A.back")) and "num_batches" not in k]
    # Phase I never touches A's outer layers; B's do move
    assert all(torch.equal(m.snaps[0][k], m.snaps[3][k]) for k in a_keys)
    assert any(not torch.equal(m.snaps[0][k], m.snaps[3][k]) for k in m.snaps[0] if k.startswith("enc_B.front"))
    # at the boundary A's outer layers become copies of B's (values, not tensors); the shared ones are untouched
    before, after = m.snaps_at_clone, m.after_clone
    for k in a_keys:
        kb = k.replace("enc_A", "enc_B").replace("dec_A", "dec_B")
        assert torch.equal(after[k], before[kb]), k
    assert any(not torch.equal(before[k], after[k]) for k in a_keys if k.endswith("weight"))
    assert all(torch.equal(before[k], after[k]) for k in before if ".shared." in k)
    assert m.enc_A.front[0].weight is not m.enc_B.front[0].weight


# ------------------------------------------------------------------------------- selective backprop
class GradProbe(OST):
    """Records every parameter's gradient right after the x-loss backward of a Phase II step."""

    def x_backward(self, loss, retain_graph=True):
        super().x_backward(loss, retain_graph)
        if not hasattr(self, "x_grads"):
            self.x_grads = {n: (None if p.grad is None else p.grad.detach().clone()) for n, p in self.named_parameters()}


def _x_grads(tmp_path, **kw):
    pl.seed_everything(0)
    m = GradProbe(phase1_steps=1, phase2_steps=1, **TINY_OST, **kw)
    trainer(tmp_path, max_steps=-1, max_epochs=-1).fit(m, one_shot())  # iteration 0: Phase I, 1: Phase II
    return m, m.x_grads


def _groups(m):
    names = dict(m.named_parameters())  # shared tensors are listed once, under their first name
    by_id = {id(p): n for n, p in names.items()}
    return ({by_id[id(p)] for p in m.shared_parameters()}, {by_id[id(p)] for p in m.b_outer_parameters()},
            {by_id[id(p)] for p in m.a_outer_parameters()}, {n for n in names if n.startswith("dis_")})


def _zero(g):
    return g is None or not g.abs().sum() > 0


def test_selective_backprop_on_x_losses_leave_shared_and_b_gradients_zero(tmp_path):
    m, grads = _x_grads(tmp_path, selective_backprop=True)
    shared, b_outer, a_outer, dis = _groups(m)
    assert shared and b_outer and a_outer
    assert all(_zero(grads[n]) for n in shared | b_outer), [n for n in shared | b_outer if not _zero(grads[n])]
    assert all(not _zero(grads[n]) for n in a_outer), [n for n in a_outer if _zero(grads[n])]
    assert all(grads[n] is None for n in dis)  # D is frozen during the G step


def test_selective_backprop_off_x_losses_reach_shared_and_b_layers(tmp_path):
    m, grads = _x_grads(tmp_path, selective_backprop=False)
    shared, b_outer, a_outer, _ = _groups(m)
    assert all(not _zero(grads[n]) for n in shared | b_outer | a_outer), \
        [n for n in shared | b_outer | a_outer if _zero(grads[n])]


class StepProbe(OST):
    """Records, for every optimizer step of Phase II's first iteration, its name and which tensors it moved."""

    def on_train_start(self):
        self.moves, self._before = [], None
        for name in self.opt_names:
            opt = self.optimizer(name).optimizer
            opt.register_step_pre_hook(lambda *a: setattr(self, "_before", params(self)))
            opt.register_step_post_hook(lambda *a, n=name: self._record(n))

    def _record(self, name):
        after = params(self)
        self.moves.append((self.phase, name, {k: not torch.equal(self._before[k], v) for k, v in after.items()
                                              if v.is_floating_point() and "running" not in k}))


def _steps(tmp_path, **kw):
    pl.seed_everything(0)
    m = StepProbe(phase1_steps=1, phase2_steps=1, **TINY_OST, **kw)
    trainer(tmp_path, max_steps=-1, max_epochs=-1).fit(m, one_shot())
    return m.moves


def _moved(moves, *prefixes):
    """Per step: did any tensor whose name starts with one of ``prefixes`` (strings or tuples of them) move?"""
    flat = tuple(p for group in prefixes for p in ((group,) if isinstance(group, str) else group))
    return [any(v for k, v in moved.items() if k.startswith(flat)) for _, _, moved in moves]


A_OUTER, B_OUTER, SHARED = ("enc_A.front", "dec_A.back"), ("enc_B.front", "dec_B.back"), ("enc_A.shared", "dec_A.shared")


def test_official_loops_step_order_per_layout(tmp_path):
    # the MNIST code: D real step, D fake step, then G; the image code: G, then one D step
    assert [(p, n) for p, n, _ in _steps(tmp_path / "m")] == [(1, "D"), (1, "D"), (1, "G"), (2, "D"), (2, "D"), (2, "G")]
    image = _steps(tmp_path / "i", official_code="image")
    assert [(p, n) for p, n, _ in image] == [(1, "G"), (1, "D"), (2, "G"), (2, "D")]
    assert _moved(image, "dis_B") == [False, True, False, True]


def test_phase2_g_step_updates(tmp_path):
    g = _steps(tmp_path / "a")[-1]  # selective: A from x losses, shared and B from B losses
    assert g[1] == "G" and _moved([g], A_OUTER) == _moved([g], B_OUTER) == _moved([g], SHARED) == [True]
    assert not _moved([g], "dis_")[0]
    frozen = _steps(tmp_path / "b", freeze_shared=True)[-1]  # "no Phase II update of E_S, G_S": no B update at all
    assert _moved([frozen], A_OUTER) == [True] and _moved([frozen], SHARED, B_OUTER) == [False]


def test_official_mnist_flag_steps_outer_layers_of_both_domains_then_everything(tmp_path):
    moves = _steps(tmp_path, x_updates_b_outer=True)
    assert [n for _, n, _ in moves] == ["D", "D", "G", "D", "D", "G_x", "G"]
    g_x, g = moves[-2], moves[-1]
    assert _moved([g_x], A_OUTER) == _moved([g_x], B_OUTER) == [True] and _moved([g_x], SHARED) == [False]
    assert _moved([g], SHARED) == _moved([g], B_OUTER) == [True]
    assert _moved([g], A_OUTER) == [False]  # the B losses do not reach A's layers
    frozen = _steps(tmp_path / "f", x_updates_b_outer=True, freeze_shared=True)
    assert [n for p, n, _ in frozen if p == 2] == ["D", "D", "G_x"]


# ------------------------------------------------------------------------------- losses
class Shift(nn.Module):
    def __init__(self, c: float):
        super().__init__()
        self.c = c

    def forward(self, x):
        return x + self.c


class ConstD(nn.Module):
    def forward(self, x):
        return torch.zeros(x.shape[0], 1, 1, 1)


def _wired(**kw):
    """Encoders/decoders replaced by known maps: E_A = id, E_B = +1, shared = id, G_A = +0.5, G_B = -0.25."""
    m = OST(sample_z=False, lambda_recon=2.0, lambda_cycle=3.0, lambda_gan=5.0, lambda_kl=0.1, **TINY_OST, **kw)
    m.enc_A.front, m.enc_B.front = nn.Identity(), Shift(1.0)
    m.enc_A.shared = m.enc_B.shared = nn.Identity()
    m.dec_A.shared = m.dec_B.shared = nn.Identity()
    m.dec_A.back, m.dec_B.back = Shift(0.5), Shift(-0.25)
    m.dis_B = ConstD()
    if m.dis_A is not None:
        m.dis_A = ConstD()
    return m


def test_b_loss_terms_on_known_inputs():
    m = _wired()
    b = torch.zeros(2, 3, 4, 4)
    g, z_b, rec_b = m.b_losses(b)
    # mu_B = b + 1 = 1 -> KL 1; rec_B = 1 - 0.25 = 0.75 -> MSE 0.5625; LSGAN (0 - 1)^2 = 1
    assert torch.equal(z_b, torch.ones_like(b))
    assert math.isclose(float(g["kl_B"]), 0.1 * 1.0, rel_tol=1e-6)
    assert math.isclose(float(g["recon_B"]), 2.0 * 0.75 ** 2, rel_tol=1e-6)
    assert math.isclose(float(g["gan_BB"]), 5.0 * 1.0, rel_tol=1e-6)
    assert torch.equal(rec_b, torch.full_like(b, 0.75))
    assert set(m.b_losses(b, gan=False)[0]) == {"recon_B", "kl_B"}
    assert math.isclose(float(m.b_losses(b, recon_w=7.0)[0]["recon_B"]), 7.0 * 0.75 ** 2, rel_tol=1e-6)
    m = _wired(recon_kind="l1")
    assert math.isclose(float(m.b_losses(b)[0]["recon_B"]), 2.0 * 0.75, rel_tol=1e-6)


def test_x_loss_terms_on_known_inputs():
    x, b = torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4)
    m = _wired()
    _, z_b, _ = m.b_losses(b)
    g, fake_b, fake_a = m.x_losses(x, b, z_b)
    assert torch.equal(fake_b, torch.full_like(x, -0.25)) and fake_a is None
    # z_A = x = 0; rec_A = 0.5; x->B = -0.25; back through E_B (+1) = 0.75, G_A: 1.25
    assert set(g) == {"recon_A", "gan_AB", "cycle_A"}
    assert math.isclose(float(g["recon_A"]), 2.0 * 0.25, rel_tol=1e-6)
    assert math.isclose(float(g["gan_AB"]), 5.0 * 1.0, rel_tol=1e-6)
    assert math.isclose(float(g["cycle_A"]), 3.0 * 1.25 ** 2, rel_tol=1e-6)
    # two-way: b -> A = G_A(z_B) = 1.5; E_A: 1.5; G_B: 1.25 vs b = 0
    g, _, fake_a = _wired(cycle="two_way", d_on_a=True).x_losses(x, b, z_b)
    assert torch.equal(fake_a, torch.full_like(x, 1.5))
    assert math.isclose(float(g["cycle_B"]), 3.0 * 1.25 ** 2, rel_tol=1e-6) and math.isclose(float(g["gan_BA"]), 5.0, rel_tol=1e-6)
    assert "cycle_A" not in _wired(cycle="none").x_losses(x, b, z_b)[0]


def test_translate_uses_the_mean_and_crosses_domains():
    m = OST(**TINY_OST)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    m.train()
    assert torch.equal(m.translate(x), m.translate(x))  # no noise, even in training mode
    m.eval()
    from lit_i2i.nets.blocks import batchnorm_statistics

    with batchnorm_statistics(m, "sample"):
        assert torch.allclose(m.translate(x, "AtoB"), m.dec_B(m.enc_A(x)))
        assert torch.allclose(m.translate(x, "BtoA"), m.dec_A(m.enc_B(x)))
    assert set(m.visuals({"A": x, "B": x})) == {"real_A", "rec_A", "fake_B", "cyc_A", "real_B", "rec_B", "fake_A"}


# ------------------------------------------------------------------------------- exact resume
def _fit(root, model, epochs, ckpt=None):
    cb = ModelCheckpoint(dirpath=root / "ckpt", save_last=True, every_n_epochs=1, save_top_k=-1,
                         filename="{epoch}")
    t = trainer(root, max_epochs=epochs, limit_train_batches=3, enable_checkpointing=True, callbacks=[cb],
                deterministic=True)
    t.fit(model, one_shot(), ckpt_path=ckpt)
    return model


def _same(a, b):
    assert (a.iteration, a.phase2_start) == (b.iteration, b.phase2_start)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_resume_is_exact_across_the_phase_boundary(tmp_path):
    # 3 iterations per epoch; the boundary (iteration 4) falls inside epoch 2
    pl.seed_everything(1)
    straight = _fit(tmp_path / "a", OST(phase1_steps=4, pool_size=2, **TINY_OST), epochs=3)
    for ckpt in ("epoch=0.ckpt", "epoch=1.ckpt"):  # before the boundary, and after it
        pl.seed_everything(1)
        resumed = _fit(tmp_path / ckpt, OST(phase1_steps=4, pool_size=2, **TINY_OST), epochs=3,
                       ckpt=str(tmp_path / "a" / "ckpt" / ckpt))
        _same(straight, resumed)  # bitwise: buffers (iteration, phase), optimizers, pool, RNG
    assert straight.iteration == 9 and straight.phase2_start == 4


def test_phase2_from_a_phase1_checkpoint_and_its_exact_resume(tmp_path):
    pl.seed_everything(0)
    phase1 = _fit(tmp_path / "p1", OST(phase1_steps=10**6, **TINY_OST), epochs=1)
    assert phase1.phase2_start is None
    ckpt1 = str(tmp_path / "p1" / "ckpt" / "last.ckpt")

    class Probe(OST):
        def on_train_start(self):
            self.start = params(self)

    pl.seed_everything(1)
    straight = _fit(tmp_path / "a", Probe(init_from=ckpt1, phase1_steps=5, **TINY_OST), epochs=2)
    s0, p1 = straight.start, params(phase1)
    assert all(torch.equal(s0[k], p1[k]) for k in p1 if k.startswith(("enc_B", "dec_B")))
    # both official codes start Phase II with a fresh discriminator (phase2_reset)
    assert all(not torch.equal(s0[k], p1[k]) for k in p1 if k.startswith("dis_B") and k.endswith("weight"))
    assert all(torch.equal(s0[k], p1[k.replace("_A.", "_B.")]) for k in p1 if k.startswith(("enc_A", "dec_A")))
    assert straight.enc_A.shared is straight.enc_B.shared
    assert straight.iteration == 6 and straight.phase2_start == 0  # all in Phase II (phase1_steps ignored)
    pl.seed_everything(1)
    resumed = _fit(tmp_path / "b", OST(init_from=ckpt1, phase1_steps=5, **TINY_OST), epochs=2,
                   ckpt=str(tmp_path / "a" / "ckpt" / "epoch=0.ckpt"))
    _same(straight, resumed)


def test_init_from_errors_name_the_option(tmp_path):
    m = OST(init_from=str(tmp_path / "missing.ckpt"), **TINY_OST)
    with pytest.raises(UserError, match="model.init_from"):
        m.load_phase1(m.hparams.init_from)
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": OST(ngf=4, ndf=8).state_dict()}, other)
    with pytest.raises(UserError, match="does not match"):
        m.load_phase1(str(other))


# ------------------------------------------------------------------------------- CLI
from lit_i2i.cli import main  # noqa: E402

TINY_CLI = ["--model.init_args.ngf", "8", "--model.init_args.ndf", "8", "--model.init_args.phase1_steps", "4",
            "--trainer.enable_progress_bar", "false", "--trainer.logger", "false", "--trainer.limit_val_batches", "0",
            "--metrics.metrics", "[]", "--model.init_args.phase2_steps", "6", "--trainer.max_steps", "-1",
            "--data.init_args.num_workers", "0",
            "--data.init_args.batch_size", "4"]


def _cli_fit(tmp_path, config, *extra, steps_per_iteration=3):
    ckpt, state = cli_fit(tmp_path, config, *TINY_CLI, *extra)
    # 4 Phase I + 6 Phase II iterations; the MNIST loop: D real, D fake, G; the image loop: G, D
    assert state["iteration"] == 10 and state["ost_phase2_start"] == 4
    assert state["global_step"] == 10 * steps_per_iteration
    from lit_i2i.commands import load_run

    model, _ = load_run(ckpt)
    assert model.enc_A.shared is model.enc_B.shared and model.iteration == 10 and model.phase2_start == 4
    return model, ckpt


def test_cli_digits_20_steps_then_phase2_from_its_checkpoint(tmp_path, cli_env):
    model, ckpt = _cli_fit(tmp_path, "experiments/ost/digits.yaml")
    assert model.translate(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    # a Phase I only run, then Phase II with --model.init_args.init_from
    p1 = tmp_path / "p1"
    args = ["fit", "--config", "experiments/ost/digits.yaml", *TINY_CLI]
    assert main([*args, "--trainer.default_root_dir", str(p1), "--model.init_args.phase2_steps", "0"]) == 0
    state = torch.load(p1 / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["iteration"] == 4 and state["ost_phase2_start"] is None  # phase2_steps 0: a Phase I-only run
    p2 = tmp_path / "p2"
    assert main([*args, "--trainer.default_root_dir", str(p2), "--model.init_args.init_from",
                 str(p1 / "checkpoints" / "last.ckpt"), "--model.init_args.selective_backprop", "false"]) == 0
    state = torch.load(p2 / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["ost_phase2_start"] == 0 and state["iteration"] == 6  # phase2_steps iterations, all in Phase II


@pytest.mark.parametrize("config", ["mnist2svhn", "svhn2mnist"])
def test_cli_digit_folders_20_steps(tmp_path, cli_env, config):
    from data_factory import make_unpaired

    root = make_unpaired(tmp_path / "data", 1, 6, size=(28, 28), n_test=3)
    _cli_fit(tmp_path, f"experiments/ost/{config}.yaml", "--data.init_args.a_images", f"[{root / 'trainA' / '000.png'}]",
             "--data.init_args.a_test_root", str(root / "testA"), "--data.init_args.b_root", str(root / "trainB"),
             "--data.init_args.b_test_root", str(root / "testB"))


def test_cli_summer2winter_20_steps_on_a_tiny_folder(tmp_path, cli_env):
    from data_factory import make_unpaired

    root = make_unpaired(tmp_path / "data", 1, 6, size=(40, 40), n_test=2)
    model, _ = _cli_fit(tmp_path, "experiments/ost/summer2winter.yaml",
                        "--data.init_args.a_images", f"[{root / 'trainA' / '000.png'}]",
                        "--data.init_args.a_test_root", str(root / "testA"), "--data.init_args.b_root", str(root / "trainB"),
                        "--data.init_args.b_test_root", str(root / "testB"), "--data.init_args.load_size", "36",
                        "--data.init_args.crop_size", "32", "--model.init_args.n_res_shared", "1",
                        steps_per_iteration=2)
    assert model.hparams.arch == "resnet" and model.hparams.pool_size == 50


# ------------------------------------------------------------------------------- fidelity to the official codes
def test_parameter_counts_equal_the_official_mnist_nets():
    from lit_i2i.nets.blocks import count_params

    # model.G11 (conv_dim 64, 1-channel MNIST, 3-channel SVHN), every conv bias-free, BatchNorm affine:
    # conv1, conv1_svhn, conv2, conv3, conv4, deconv1 (+BN), deconv2, deconv2_svhn
    g11 = (1 * 64 * 16 + 128) + (3 * 64 * 16 + 128) + (64 * 128 * 16 + 256) + 2 * (128 * 128 * 9 + 256) \
        + (128 * 64 * 16 + 128) + 64 * 1 * 16 + 64 * 3 * 16
    m = OST(a_ch=1, b_ch=3, d_on_a=True)
    assert g11 == 566_400
    assert sum(p.numel() for p in unique(m.enc_A, m.dec_A, m.enc_B, m.dec_B)) == g11
    d = lambda c: c * 64 * 16 + (64 * 128 * 16 + 256) + (128 * 256 * 16 + 512) + 256 * 16  # D1 / D2, no biases
    assert count_params(m.dis_A) == d(1) == 661_248 and count_params(m.dis_B) == d(3) == 663_296


def unique(*modules):
    from lit_i2i.nets.vae import unique_parameters

    return unique_parameters(*modules)


def test_mnist_loop_uses_pytorch_default_init_and_the_image_loop_normal_002():
    torch.manual_seed(0)
    mnist = OST(**TINY_OST)
    assert mnist.code == "mnist" and mnist.init_type == "none"
    conv = mnist.dis_B.model[0]
    bound = 1 / math.sqrt(conv.weight[0].numel())  # kaiming_uniform(a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert conv.weight.abs().max() <= bound and conv.weight.std() > 0.5 * bound / math.sqrt(3)
    image = OST(arch="resnet", netD="basic", norm="instance", norm_D="instance", n_res_shared=1, **TINY_OST)
    assert image.code == "image" and image.init_type == "normal"
    assert abs(float(image.dis_B.model[0].weight.detach().std()) - 0.02) < 0.005


class ResetProbe(OST):
    def start_phase2(self, d_is_fresh=False):
        self.d_before = params(self.dis_B)
        self.opt_state_before = {n: len(self.optimizer(n).optimizer.state) for n in self.opt_names}
        super().start_phase2(d_is_fresh)
        self.d_after = params(self.dis_B)
        self.opt_state_after = {n: len(self.optimizer(n).optimizer.state) for n in self.opt_names}


@pytest.mark.parametrize("reset", [True, False])
def test_phase2_starts_with_a_fresh_discriminator_and_optimizers(tmp_path, reset):
    pl.seed_everything(0)
    m = ResetProbe(phase1_steps=2, phase2_steps=1, phase2_reset=reset, **TINY_OST)
    trainer(tmp_path, max_steps=-1, max_epochs=-1).fit(m, one_shot())
    assert all(m.opt_state_before[n] > 0 for n in ("D", "G"))
    weights = [k for k in m.d_before if k.endswith("weight")]
    if reset:  # both official codes: a new D and new optimizers for Phase II
        assert all(v == 0 for v in m.opt_state_after.values())
        assert all(not torch.equal(m.d_before[k], m.d_after[k]) for k in weights)
        assert all(torch.equal(m.d_after[k], torch.zeros_like(m.d_after[k])) for k in m.d_after if "running_mean" in k)
    else:
        assert m.opt_state_after == m.opt_state_before
        assert all(torch.equal(m.d_before[k], m.d_after[k]) for k in m.d_before)


def test_image_loop_d_loss_halves_each_pair_and_pools_both_fakes():
    torch.manual_seed(0)
    m = OST(official_code="image", pool_size=8, **TINY_OST)
    b, f1, f2 = (torch.rand(2, 3, 32, 32) * 2 - 1 for _ in range(3))
    r, f = m.d_pair(m.dis_B, b, f1, "fake_B")
    d = m.dis_B
    assert torch.allclose(r, ((d(b) - 1) ** 2).mean()) and torch.allclose(f, (d(f1) ** 2).mean())  # LSGAN
    m.d_pair(m.dis_B, b, f2, "fake_B")
    assert len(m.pools["fake_B"].images) == 4  # one pool holds both kinds of fakes


def test_translate_normalises_each_image_by_its_own_statistics():
    torch.manual_seed(0)
    m = OST(**TINY_OST)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    m.train()
    one_by_one = torch.cat([m.dec_B(m.enc_A(x[i:i + 1])) for i in range(4)]).detach()  # the official batch-1 forward
    running = {k: v.clone() for k, v in m.state_dict().items() if "running" in k}
    m.eval()
    y = m.translate(x)
    assert torch.allclose(y, one_by_one, atol=1e-5)
    assert torch.allclose(m.translate(x[2:3]), y[2:3], atol=1e-5)  # independent of the rest of the batch
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in running.items())  # running averages untouched
    m.hparams.bn_eval = "running"
    assert not torch.allclose(m.translate(x), y, atol=1e-3)
    with pytest.raises(ValueError, match="bn_eval"):
        OST(bn_eval="eval", **TINY_OST)


def test_phase1_reconstruction_weight_and_phase_lengths(tmp_path):
    class Logged(OST):
        def b_losses(self, b, gan=True, recon_w=None):
            self.seen.append((self.phase, recon_w))
            return super().b_losses(b, gan, recon_w)

    pl.seed_everything(0)
    m = Logged(phase1_steps=2, phase2_steps=3, lambda_recon_phase1=10.0, **TINY_OST)
    m.seen = []
    t = trainer(tmp_path, max_steps=-1, max_epochs=-1)
    t.fit(m, one_shot())
    assert m.seen == [(1, 10.0), (1, 10.0), (2, None), (2, None), (2, None)] and m.iteration == 5
    # a run that is already done stops before training another batch
    t2 = trainer(tmp_path / "again", max_steps=-1, max_epochs=-1)
    t2.fit(m, one_shot())
    assert m.iteration == 5
