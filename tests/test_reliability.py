"""Issue 11: bad input and interruptions give one clear line, nothing written is lost, checkpoints
load without running code, and a run's console and grids read well."""

import builtins
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from data_factory import make_image, make_unpaired
from helpers import cli_fit
from lit_i2i.cli import main

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false", "--trainer.limit_val_batches", "0",
         "--metrics.metrics", "[]"]
#: a tiny CycleGAN on the built-in digits
TINY = ["--trainer.max_steps", "2", "--data.init_args.train_limit", "16", "--data.init_args.batch_size", "4",
        "--model.init_args.ngf", "8", "--model.init_args.n_blocks", "1", "--model.init_args.ndf", "8", *QUIET]
#: the horse2zebra config (image folders) with tiny nets
H2Z = ["--config", "experiments/cyclegan/horse2zebra.yaml", "--model.init_args.netG", "resnet",
       "--model.init_args.n_blocks", "1", "--model.init_args.ngf", "8", "--model.init_args.netD", "n_layers",
       "--model.init_args.n_layers_D", "2", "--model.init_args.ndf", "8", "--trainer.max_steps", "2", *QUIET]
#: ... on folders of 32x32 images
FOLDERS = [*H2Z, "--data.init_args.preprocess", "resize", "--data.init_args.crop_size", "32",
           "--data.init_args.num_workers", "0", "--data.init_args.batch_size", "2"]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.chdir(ROOT)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny fit (2 steps): its folder and last.ckpt, shared by the tests that need a checkpoint."""
    tmp = tmp_path_factory.mktemp("fit")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_MODE", "disabled")
        mp.chdir(ROOT)
        ckpt, _ = cli_fit(tmp, "experiments/cyclegan/digits.yaml", *TINY)
    return ckpt.parents[1], ckpt


def error_lines(err: str) -> list[str]:
    """The ``lit-i2i: error:`` lines of stderr; asserts there is no traceback."""
    assert "Traceback" not in err, err
    return [ln for ln in err.splitlines() if ln.startswith("lit-i2i: error:")]


def one_error(capsys, *argv) -> str:
    """Runs ``lit-i2i ARGV`` in this process; asserts exit 2 and one error line, which it returns."""
    assert main(list(argv)) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1, lines
    return lines[0]


# ------------------------------------------------------------------ security
class Payload:
    """Unpickling this writes a file: what a crafted checkpoint could do instead."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "the payload ran"))


def test_a_checkpoint_with_a_payload_is_refused_and_never_runs(tmp_path, capsys, run):
    marker = tmp_path / "marker"
    _, real = run
    state = torch.load(real, weights_only=True)
    state["payload"] = Payload(marker)
    bad = tmp_path / "crafted.ckpt"
    torch.save(state, bad)
    # the payload is live: a plain unpickling runs it
    with open(bad, "rb") as f:
        torch.load(f, weights_only=False)
    assert marker.read_text() == "the payload ran"
    marker.unlink()
    (tmp_path / "in").mkdir()
    make_image(tmp_path / "in" / "x.png", (32, 32))
    for argv in (["evaluate", "--ckpt", str(bad)],
                 ["translate", "--ckpt", str(bad), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")],
                 ["fit", "--config", "experiments/cyclegan/digits.yaml", "--ckpt_path", str(bad),
                  "--trainer.default_root_dir", str(tmp_path / "resumed"), *TINY]):
        line = one_error(capsys, *argv)
        assert "refused" in line and str(bad) in line and "weights_only=True" in line
        assert not marker.exists()
    assert not (tmp_path / "out").exists() and not (tmp_path / "resumed" / "checkpoints").exists()


def test_resume_loads_with_weights_only(tmp_path, monkeypatch, run):
    """fit --ckpt_path: LightningCLI's hyper-parameter read and the trainer's restore both use weights_only=True."""
    seen = []
    load = torch.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("weights_only"))
        return load(*args, **kwargs)
    monkeypatch.setattr(torch, "load", spy)
    _, ckpt = run
    assert main(["fit", "--config", "experiments/cyclegan/digits.yaml", "--ckpt_path", str(ckpt),
                 "--trainer.default_root_dir", str(tmp_path / "resumed"), *TINY, "--trainer.max_steps", "4"]) == 0
    assert len(seen) >= 2 and all(w is True for w in seen), seen


# ------------------------------------------------------------------ nothing already written is lost
def test_test_and_validate_runs_keep_the_fits_files(capsys, run):
    root, ckpt = run
    before = {name: (root / name).read_text() for name in ("metrics.json", "config.yaml")}
    for stage in ("test", "validate"):
        assert main([stage, "--config", "experiments/cyclegan/digits.yaml", "--ckpt_path", str(ckpt),
                     "--trainer.default_root_dir", str(root), *TINY, "--trainer.limit_val_batches", "1",
                     "--trainer.limit_test_batches", "1"]) == 0
        assert (root / f"metrics_{stage}.json").is_file() and (root / f"config_{stage}.yaml").is_file()
    assert {name: (root / name).read_text() for name in before} == before
    assert json.loads(before["metrics.json"])["global_step"] == 2


def test_translate_refuses_two_inputs_that_would_share_an_output_name(tmp_path, capsys, run):
    _, ckpt = run
    inp = tmp_path / "in"
    make_image(inp / "a.png", (32, 32), seed=1)
    make_image(inp / "a.jpg", (32, 32), seed=2)
    line = one_error(capsys, "translate", "--ckpt", str(ckpt), "--input", str(inp), "--output", str(tmp_path / "out"))
    assert "a.png" in line and "a.jpg" in line
    assert not (tmp_path / "out").exists()


def test_ckpt_path_of_another_method_is_refused_naming_both(tmp_path, capsys, run):
    _, ckpt = run
    root = tmp_path / "p2p"
    line = one_error(capsys, "fit", "--config", "experiments/pix2pix/digits.yaml", "--ckpt_path", str(ckpt),
                     "--trainer.default_root_dir", str(root), "--trainer.max_steps", "2",
                     "--data.init_args.train_limit", "16", *QUIET)
    assert "CycleGAN" in line and "Pix2Pix" in line
    assert not (root / "checkpoints").exists()


# ------------------------------------------------------------------ one clear line instead of a traceback
def test_ckpt_path_to_a_text_file_is_one_line(tmp_path, capsys):
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint\n")
    line = one_error(capsys, "fit", "--config", "experiments/cyclegan/digits.yaml", "--ckpt_path", str(text),
                     "--trainer.default_root_dir", str(tmp_path / "run"), *TINY)
    assert "not a readable checkpoint" in line and str(text) in line


def test_translate_output_that_is_a_file_is_one_line(tmp_path, capsys, run):
    _, ckpt = run
    make_image(tmp_path / "in" / "x.png", (32, 32))
    (tmp_path / "out.png").write_bytes(b"x")
    line = one_error(capsys, "translate", "--ckpt", str(ckpt), "--input", str(tmp_path / "in"),
                     "--output", str(tmp_path / "out.png"))
    assert "--output" in line and "is a file" in line


def truncated_jpeg(path: Path) -> Path:
    full = make_image(path.with_name("full_" + path.name), (128, 128), seed=7)
    data = full.read_bytes()
    full.unlink()
    path.write_bytes(data[: len(data) // 2])  # the header is intact, the pixels stop half way
    return path


@pytest.mark.parametrize("workers", ["0", "1"])
def test_a_truncated_jpeg_is_one_line_or_skipped(tmp_path, capsys, workers):
    root = make_unpaired(tmp_path / "data", 1, 2, size=(32, 32))
    bad = truncated_jpeg(root / "trainA" / "zz_truncated.jpg")
    args = ["fit", *FOLDERS, "--data.init_args.root", str(root), "--data.init_args.num_workers", workers]
    line = one_error(capsys, *args, "--trainer.default_root_dir", str(tmp_path / "run"))
    assert "truncated" in line and str(bad) in line and "skip_bad_files" in line
    with pytest.warns(UserWarning, match="zz_truncated") if workers == "0" else contextlib.nullcontext():
        assert main([*args, "--data.init_args.skip_bad_files", "true",
                     "--trainer.default_root_dir", str(tmp_path / "skipped")]) == 0
    assert (tmp_path / "skipped" / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize("size", [(1, 1), (1000, 8)])
def test_an_image_too_small_for_the_network_is_refused_before_training(tmp_path, capsys, size):
    root = make_unpaired(tmp_path / "data", 2, 2, size=(32, 32))
    small = make_image(root / "trainA" / "small.png", size)
    line = one_error(capsys, "fit", *FOLDERS, "--data.init_args.root", str(root), "--data.init_args.preprocess",
                     "none", "--trainer.default_root_dir", str(tmp_path / "run"))
    assert str(small) in line and "too small for the network" in line
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_data_channels_that_do_not_match_the_model_name_the_options(tmp_path, capsys):
    root = make_unpaired(tmp_path / "data", 2, 2, size=(32, 32))
    line = one_error(capsys, "fit", *FOLDERS, "--data.init_args.root", str(root), "--data.init_args.channels", "1",
                     "--trainer.default_root_dir", str(tmp_path / "run"))
    assert "--data.init_args.channels 3" in line and "--model.init_args.in_ch 1" in line


def test_single_pair_with_keep_aspect_is_refused_unless_sizes_fit_the_stride(tmp_path, capsys):
    a, b = make_image(tmp_path / "a.png", (220, 146), seed=1), make_image(tmp_path / "b.png", (220, 146), seed=2)
    pair = ["fit", *H2Z, "--data", "datamodules.single_pair.SinglePair", "--data.init_args.a", str(a),
            "--data.init_args.b", str(b), "--data.init_args.keep_aspect", "true", "--data.init_args.size", "44",
            "--data.init_args.steps_per_epoch", "2"]
    line = one_error(capsys, *pair, "--trainer.default_root_dir", str(tmp_path / "run"))
    assert "multiples of 4" in line and "--data.init_args.stride 4" in line
    assert main([*pair, "--data.init_args.stride", "4", "--trainer.default_root_dir", str(tmp_path / "ok")]) == 0


def test_checking_data_against_the_model_leaves_a_seeded_run_unchanged():
    import random

    import numpy as np

    from helpers import TINY_CYCLEGAN, tiny_data
    from lit_i2i.core.input_check import check_model_fits_data
    from lit_i2i.methods.cyclegan import CycleGAN

    dm, model = tiny_data(), CycleGAN(**TINY_CYCLEGAN)
    dm.setup("fit")
    before = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state(), model.state_dict()
    check_model_fits_data(model, dm)  # draws a training item (a random B) and runs every net
    after = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state(), model.state_dict()
    assert before[0] == after[0] and (before[1] == after[1]).all() and torch.equal(before[2], after[2])
    assert all(torch.equal(before[3][k], after[3][k]) for k in before[3]) and model.training


def test_permission_denied_is_said_as_such(tmp_path, monkeypatch):
    from datamodules.io import image_size, load_image
    from lit_i2i.errors import UserError

    locked = make_image(tmp_path / "locked.png", (8, 8))
    real_open = builtins.open

    def deny(file, *args, **kwargs):  # what chmod 000 does for a user who is not root
        if str(file) == str(locked):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)
    monkeypatch.setattr(builtins, "open", deny)
    monkeypatch.setattr(io, "open", deny)
    for read in (image_size, load_image):
        with pytest.raises(UserError, match=r"permission denied.*locked\.png"):
            read(locked)


def test_typo_in_an_option_is_one_line_with_a_suggestion(tmp_path, capsys):
    fit = ["fit", "--config", "experiments/quickstart.yaml"]
    (tmp_path / "typo.yaml").write_text("trainer:\n  max_stepz: 2\n")
    for typo, suggestion in (("--trainer.max_stepz", "--trainer.max_steps"),
                             ("--model.init_args.ngff", "--model.init_args.ngf"),
                             ("--data.init_args.batchsize", "--data.init_args.batch_size"),
                             ("--config", "trainer.max_steps")):  # a key in a config file
        value = str(tmp_path / "typo.yaml") if typo == "--config" else "2"
        assert main([*fit, typo, value, "--print_config"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "usage:" not in err, err
        assert error_lines(err)[0].startswith("lit-i2i: error:") and f"did you mean {suggestion}?" in err


def test_abbreviated_options_are_refused(capsys):
    assert main(["fit", "--config", "experiments/quickstart.yaml", "--trainer.max_step", "2", "--print_config"]) == 2
    assert "did you mean --trainer.max_steps?" in capsys.readouterr().err


def _fit_process(root: Path, *extra) -> subprocess.Popen:
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "lit_i2i.cli", "fit", "--config", "experiments/cyclegan/digits.yaml",
                             "--trainer.default_root_dir", str(root), *TINY, "--trainer.max_steps", "100000",
                             "--grids.every_n_steps", "1", *extra],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_fit_saves_last_ckpt_and_the_run_continues(tmp_path, sig, code):
    root = tmp_path / "run"
    proc = _fit_process(root, "--data.init_args.num_workers", "1")
    deadline = time.time() + 120
    while not list((root / "grids").glob("train_*.png")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)  # the first training batch has ended once its grid is written
    os.killpg(proc.pid, sig)  # to the process group, DataLoader worker included, as a terminal or a cluster does
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    assert "Traceback" not in err and f"stopped by {sig.name}" in err
    assert err.count("interrupted: stopping") == (sig == signal.SIGINT)  # said by the main process only
    state = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)
    step = state["global_step"]
    assert step >= 2
    if sig == signal.SIGTERM:  # a preempted job continues from it
        assert main(["fit", "--config", "experiments/cyclegan/digits.yaml", "--trainer.default_root_dir", str(root),
                     *TINY, "--trainer.max_steps", str(step + 2), "--ckpt_path", "last"]) == 0
        assert torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == step + 2


# ------------------------------------------------------------------ the first impression
def test_console_has_no_tips_warnings_or_colour_codes(tmp_path):
    env = {**os.environ, "WANDB_MODE": "offline"}
    r = subprocess.run([sys.executable, "-m", "lit_i2i.cli", "fit", "--config", "experiments/cyclegan/digits.yaml",
                        "--trainer.default_root_dir", str(tmp_path / "run"), *TINY, "--trainer.logger", "true",
                        "--data.init_args.num_workers", "64"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    text = r.stdout + r.stderr
    for noise in ("litlogger", "anonymous setting", "LeafSpec", "\x1b[", "worker processes in total"):
        assert noise not in text, noise
    assert text.count("num_workers 64 is more than") == 1


def test_loaders_use_at_most_the_available_cores():
    from datamodules.base import available_cpus
    from datamodules.builtin import BuiltinDigits

    dm = BuiltinDigits(train_limit=16, batch_size=4, num_workers=10_000)
    dm.setup("fit")
    assert dm.train_dataloader().num_workers == available_cpus()


def test_run_summary_prints_each_metric_once_and_only_numbers():
    from lit_i2i.core.callbacks import RunSummary

    data = {"method": "cyclegan", "global_step": 8, "val/acc_AtoB": 0.93, "acc_AtoB": 0.93, "val/kid_AtoB": 0.01,
            "kid_AtoB": 0.01, "kid_std_AtoB": None, "train/loss_G": 3.0}
    rows = [r.split()[0] for r in RunSummary.table(data)]
    assert rows == ["method", "global_step", "val/acc_AtoB", "val/kid_AtoB"]


def test_grids_name_their_columns(run):
    from torchvision.io import read_image

    from lit_i2i.core.visuals import visual_grid

    vis = {"real_A": -torch.ones(2, 3, 32, 32), "fake_B": -torch.ones(2, 3, 32, 32)}
    plain, labelled = visual_grid(vis, max_rows=2), visual_grid(vis, max_rows=2, labels=True)
    strip = labelled[:, : labelled.shape[1] - plain.shape[1]]
    assert strip.shape[1] >= 10 and torch.equal(labelled[:, strip.shape[1]:], plain)
    for col in (slice(2, 66), slice(68, 132)):  # each column's label is written over it
        assert (strip[:, :, col] < 128).any()
    root, _ = run  # the run's grids carry the strip: white, with the names in black
    top = read_image(str(sorted((root / "grids").glob("final_*.png"))[0]))[:, : strip.shape[1]]
    assert (top == 255).float().mean() > 0.8 and (top < 128).any()
