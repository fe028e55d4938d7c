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
    m = OST(phase1_steps=2, **TINY_OST)
    assert m.enc_A.shared is m.enc_B.shared and m.dec_A.shared is m.dec_B.shared
    shared = {k: (v.data_ptr(), v) for k, v in m.enc_B.shared.state_dict(keep_vars=True).items()}
    trainer(tmp_path, max_steps=8).fit(m, one_shot())  # 2 Phase I + 2 Phase II iterations
    assert int(m.iteration) == 4 and bool(m.phase2_started)
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
    m = Recording(phase1_steps=3, **TINY_OST)
    trainer(tmp_path, max_steps=10).fit(m, one_shot())
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

    def x_backward(self, loss):
        super().x_backward(loss)
        if not hasattr(self, "x_grads"):
            self.x_grads = {n: (None if p.grad is None else p.grad.detach().clone()) for n, p in self.named_parameters()}


def _x_grads(tmp_path, **kw):
    pl.seed_everything(0)
    m = GradProbe(phase1_steps=1, **TINY_OST, **kw)
    trainer(tmp_path, max_steps=4).fit(m, one_shot())  # iteration 0: Phase I, iteration 1: Phase II
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


def test_official_mnist_flag_lets_x_losses_update_b_outer_layers_only(tmp_path):
    m, grads = _x_grads(tmp_path, selective_backprop=True, x_updates_b_outer=True)
    shared, b_outer, a_outer, _ = _groups(m)
    assert all(_zero(grads[n]) for n in shared)
    assert all(not _zero(grads[n]) for n in b_outer | a_outer)


class StepProbe(OST):
    def generator_step(self, loss_x, loss_b):
        before = params(self)
        super().generator_step(loss_x, loss_b)
        if loss_x is not None:
            self.moved = {k: not torch.equal(before[k], v) for k, v in params(self).items()
                          if v.is_floating_point() and "running" not in k}


def _moved(tmp_path, **kw):
    pl.seed_everything(0)
    m = StepProbe(phase1_steps=1, **TINY_OST, **kw)
    trainer(tmp_path, max_steps=4).fit(m, one_shot())
    return m.moved


def test_phase2_g_step_updates(tmp_path):
    moved = _moved(tmp_path / "a")  # selective: A from x losses, shared and B from B losses
    assert all(v for k, v in moved.items() if k.startswith(("enc_A.front", "dec_A.back")))
    assert any(v for k, v in moved.items() if ".shared." in k) and any(v for k, v in moved.items() if "enc_B.front" in k)
    frozen = _moved(tmp_path / "b", freeze_shared=True)  # "no Phase II update of E_S, G_S"
    assert not any(v for k, v in frozen.items() if ".shared." in k)
    assert all(v for k, v in frozen.items() if k.startswith(("enc_A.front", "dec_A.back")))


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
    g, z_b = m.b_losses(b)
    # mu_B = b + 1 = 1 -> KL 1; rec_B = 1 - 0.25 = 0.75 -> MSE 0.5625; LSGAN (0 - 1)^2 = 1
    assert torch.equal(z_b, torch.ones_like(b))
    assert math.isclose(float(g["kl_B"]), 0.1 * 1.0, rel_tol=1e-6)
    assert math.isclose(float(g["recon_B"]), 2.0 * 0.75 ** 2, rel_tol=1e-6)
    assert math.isclose(float(g["gan_BB"]), 5.0 * 1.0, rel_tol=1e-6)
    assert set(m.b_losses(b, gan=False)[0]) == {"recon_B", "kl_B"}
    m = _wired(recon_kind="l1")
    assert math.isclose(float(m.b_losses(b)[0]["recon_B"]), 2.0 * 0.75, rel_tol=1e-6)


def test_x_loss_terms_on_known_inputs():
    x, b = torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4)
    m = _wired()
    _, z_b = m.b_losses(b)
    g = m.x_losses(x, b, z_b)
    # z_A = x = 0; rec_A = 0.5; x->B = -0.25; back through E_B (+1) = 0.75, G_A: 1.25
    assert set(g) == {"recon_A", "gan_AB", "cycle_A"}
    assert math.isclose(float(g["recon_A"]), 2.0 * 0.25, rel_tol=1e-6)
    assert math.isclose(float(g["gan_AB"]), 5.0 * 1.0, rel_tol=1e-6)
    assert math.isclose(float(g["cycle_A"]), 3.0 * 1.25 ** 2, rel_tol=1e-6)
    # two-way: b -> A = G_A(z_B) = 1.5; E_A: 1.5; G_B: 1.25 vs b = 0
    g = _wired(cycle="two_way", d_on_a=True).x_losses(x, b, z_b)
    assert math.isclose(float(g["cycle_B"]), 3.0 * 1.25 ** 2, rel_tol=1e-6) and math.isclose(float(g["gan_BA"]), 5.0, rel_tol=1e-6)
    assert "cycle_A" not in _wired(cycle="none").x_losses(x, b, z_b)


def test_translate_uses_the_mean_and_crosses_domains():
    m = OST(**TINY_OST)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    m.train()
    assert torch.equal(m.translate(x), m.translate(x))  # no noise, even in training mode
    m.eval()
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
    assert int(straight.iteration) == 9 and bool(straight.phase2_started)


def test_phase2_from_a_phase1_checkpoint_and_its_exact_resume(tmp_path):
    pl.seed_everything(0)
    phase1 = _fit(tmp_path / "p1", OST(phase1_steps=10**6, **TINY_OST), epochs=1)
    assert not bool(phase1.phase2_started)
    ckpt1 = str(tmp_path / "p1" / "ckpt" / "last.ckpt")

    class Probe(OST):
        def on_train_start(self):
            self.start = params(self)

    pl.seed_everything(1)
    straight = _fit(tmp_path / "a", Probe(init_from=ckpt1, phase1_steps=5, **TINY_OST), epochs=2)
    s0, p1 = straight.start, params(phase1)
    assert all(torch.equal(s0[k], p1[k]) for k in p1 if k.startswith(("enc_B", "dec_B", "dis_B")))
    assert all(torch.equal(s0[k], p1[k.replace("_A.", "_B.")]) for k in p1 if k.startswith(("enc_A", "dec_A")))
    assert straight.enc_A.shared is straight.enc_B.shared
    assert int(straight.iteration) == 6 and bool(straight.phase2_started)  # all in Phase II (phase1_steps ignored)
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
            "--metrics.metrics", "[]", "--trainer.max_steps", "20", "--data.init_args.num_workers", "0",
            "--data.init_args.batch_size", "4"]


def _cli_fit(tmp_path, config, *extra):
    ckpt, state = cli_fit(tmp_path, config, *TINY_CLI, *extra)
    assert state["global_step"] == 20  # 10 iterations x (D step + G step)
    assert int(state["state_dict"]["iteration"]) == 10 and bool(state["state_dict"]["phase2_started"])
    from lit_i2i.commands import load_run

    model, _ = load_run(ckpt)
    assert model.enc_A.shared is model.enc_B.shared and int(model.iteration) == 10
    return model, ckpt


def test_cli_digits_20_steps_then_phase2_from_its_checkpoint(tmp_path, cli_env):
    model, ckpt = _cli_fit(tmp_path, "experiments/ost/digits.yaml")
    assert model.translate(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    # a Phase I only run, then Phase II with --model.init_args.init_from
    p1 = tmp_path / "p1"
    args = ["fit", "--config", "experiments/ost/digits.yaml", *TINY_CLI]
    assert main([*args, "--trainer.default_root_dir", str(p1), "--model.init_args.phase1_steps", "1000"]) == 0
    p2 = tmp_path / "p2"
    assert main([*args, "--trainer.default_root_dir", str(p2), "--model.init_args.init_from",
                 str(p1 / "checkpoints" / "last.ckpt"), "--model.init_args.selective_backprop", "false"]) == 0
    state = torch.load(p2 / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert bool(state["phase2_started"]) and int(state["iteration"]) == 10


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
                        "--data.init_args.crop_size", "32", "--model.init_args.n_res_shared", "1")
    assert model.hparams.arch == "resnet" and model.hparams.pool_size == 50
