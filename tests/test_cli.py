"""``lit-i2i`` end to end: help, short runs, translate, bad input (every config starts: tests/test_configs.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lit_i2i.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY_G = ["--model.init_args.ngf", "8", "--trainer.enable_progress_bar", "false", "--trainer.logger", "false"]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.chdir(ROOT)


def test_help_lists_every_subcommand(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("fit", "validate", "test", "predict", "translate", "evaluate", "train-classifier", "bench"):
        assert cmd in out


def _fit(tmp_path, config, *extra):
    root = tmp_path / "run"
    args = ["fit", "--config", config, "--trainer.default_root_dir", str(root), "--trainer.max_steps", "20",
            "--data.init_args.train_limit", "64", "--trainer.limit_val_batches", "0", *TINY_G, *extra]
    assert main(args) == 0
    return root


def test_cyclegan_20_steps_through_the_cli_then_translate(tmp_path):
    root = _fit(tmp_path, "experiments/cyclegan/digits.yaml", "--model.init_args.n_blocks", "1", "--metrics.metrics", "[]",
                "--checkpoint.every_n_epochs", "1")
    ckpt = root / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    # 8 batches per epoch, 10 batches in all: two whole epochs, then the partial third one where max_steps stops it
    assert sorted(p.name for p in (root / "checkpoints").glob("epoch=*.ckpt")) == [
        "epoch=0000-step=00000008.ckpt", "epoch=0001-step=00000016.ckpt", "epoch=0002-step=00000020.ckpt"]
    state = torch.load(ckpt, weights_only=True)  # checkpoints hold tensors and plain data only
    assert state["lit_i2i_config"]["model"]["class_path"].endswith("CycleGAN")
    assert state["global_step"] == 20  # 10 batches x 2 optimizer steps
    assert list((root / "grids").glob("final_*.png"))
    summary = json.loads((root / "metrics.json").read_text())
    assert summary["method"] == "cyclegan" and "train/loss_G" in summary
    # translate round trip: file names kept, PNGs of the network's output size
    from torchvision.io import read_image, write_png

    from datamodules.builtin import indices, render

    inp = tmp_path / "in"
    inp.mkdir()
    imgs, labels, _ = render("digits", indices("A", "test")[:3])
    for i, x in enumerate(imgs):
        write_png(x, str(inp / f"digit{i}.png"))
    out = tmp_path / "out"
    assert main(["translate", "--ckpt", str(ckpt), "--input", str(inp), "--output", str(out)]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["digit0.png", "digit1.png", "digit2.png"]
    assert read_image(str(out / "digit0.png")).shape == (3, 32, 32)
    # the same as calling translate() on the model
    from lit_i2i.commands import load_run

    model, _ = load_run(ckpt)
    x = imgs[:1].float() / 127.5 - 1
    expected = ((model.translate(x)[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    assert (read_image(str(out / "digit0.png")).int() - expected.int()).abs().max() <= 1
    # refuses to overwrite, then overwrites when asked
    assert main(["translate", "--ckpt", str(ckpt), "--input", str(inp), "--output", str(out)]) == 2
    assert main(["translate", "--ckpt", str(ckpt), "--input", str(inp), "--output", str(out), "--overwrite"]) == 0


def test_last_ckpt_is_the_final_step_when_training_ends_between_periodic_saves(tmp_path):
    """Lightning 2.6 alone leaves last.ckpt at the last periodic save (step 16 here); ours writes the end."""
    root = _fit(tmp_path, "experiments/cyclegan/digits.yaml", "--model.init_args.n_blocks", "1", "--metrics.metrics", "[]",
                "--checkpoint.every_n_epochs", "2")
    assert [p.name for p in (root / "checkpoints").glob("epoch=*.ckpt")] == ["epoch=0001-step=00000016.ckpt"]
    state = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 20 and state["lit_i2i_config"]["model"]["class_path"].endswith("CycleGAN")
    summary = json.loads((root / "metrics.json").read_text())
    assert summary["global_step"] == 20
    # continued to 28 steps: last.ckpt again (Lightning's version counter would write last-v1.ckpt)
    args = ["fit", "--config", "experiments/cyclegan/digits.yaml", "--trainer.default_root_dir", str(root),
            "--trainer.max_steps", "28", "--data.init_args.train_limit", "64", "--trainer.limit_val_batches", "0",
            *TINY_G, "--model.init_args.n_blocks", "1", "--metrics.metrics", "[]", "--checkpoint.every_n_epochs", "2",
            "--ckpt_path", "last"]
    assert main(args) == 0
    names = sorted(p.name for p in (root / "checkpoints").iterdir())
    assert "last.ckpt" in names and not [n for n in names if "-v1" in n], names
    assert torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 28


def test_continuing_from_an_epoch_end_checkpoint_with_metrics_is_exact(tmp_path):
    """max_steps run, periodic saves at epoch ends, metrics every epoch: a run stopped at an epoch end (step 16)
    and continued with --ckpt_path last ends with the uninterrupted run's weights and optimizer states, bit for
    bit (Lightning's restart on epoch end and the evaluation's own random draws used to shift every later step)."""
    def fit(root, steps, *extra):
        args = ["fit", "--config", "experiments/cyclegan/digits.yaml", "--trainer.default_root_dir", str(root),
                "--trainer.max_steps", str(steps), "--data.init_args.train_limit", "64", *TINY_G,
                "--model.init_args.n_blocks", "1", "--checkpoint.every_n_epochs", "1",
                "--trainer.check_val_every_n_epoch", "1", "--trainer.limit_val_batches", "1",
                "--metrics.metrics", "[acc]", "--metrics.directions", "[AtoB]", "--metrics.every_n_epochs", "1",
                "--metrics.max_samples", "8", "--metrics.cache", "false", *extra]
        assert main(args) == 0
        return torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)

    straight = fit(tmp_path / "a", 28)
    assert fit(tmp_path / "b", 16)["global_step"] == 16  # saved in on_train_epoch_end of epoch 1
    resumed = fit(tmp_path / "b", 28, "--ckpt_path", "last")
    assert straight["global_step"] == resumed["global_step"] == 28
    for k, v in straight["state_dict"].items():
        assert torch.equal(v, resumed["state_dict"][k]), k
    for oa, ob in zip(straight["optimizer_states"], resumed["optimizer_states"]):
        for sa, sb in zip(oa["state"].values(), ob["state"].values()):
            assert all(torch.equal(sa[k], sb[k]) for k in sa if torch.is_tensor(sa[k]))


def test_pix2pix_20_steps_through_the_cli(tmp_path):
    root = _fit(tmp_path, "experiments/pix2pix/digits.yaml", "--metrics.metrics", "[]")
    state = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 20


def test_fit_refuses_to_reuse_a_run_folder_and_resumes_with_last(tmp_path):
    root = _fit(tmp_path, "experiments/cyclegan/digits.yaml", "--model.init_args.n_blocks", "1", "--metrics.metrics", "[]",
                "--trainer.max_steps", "4")
    before = (root / "checkpoints" / "last.ckpt").read_bytes()
    args = ["fit", "--config", "experiments/cyclegan/digits.yaml", "--trainer.default_root_dir", str(root),
            "--data.init_args.train_limit", "64", "--model.init_args.n_blocks", "1", "--metrics.metrics", "[]", *TINY_G]
    assert main([*args, "--trainer.max_steps", "8"]) == 2  # would overwrite: refused
    assert (root / "checkpoints" / "last.ckpt").read_bytes() == before  # nothing lost
    assert main([*args, "--trainer.max_steps", "8", "--ckpt_path", "last"]) == 0
    assert torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 8


def _cli(*args, cwd=ROOT):
    env = {**os.environ, "WANDB_MODE": "disabled"}
    return subprocess.run([sys.executable, "-m", "lit_i2i.cli", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


def test_bad_data_root_is_one_line_without_traceback(tmp_path):
    missing = tmp_path / "no_such_dataset"
    r = _cli("fit", "--config", "experiments/cyclegan/horse2zebra.yaml", "--data.init_args.root", str(missing),
             "--trainer.default_root_dir", str(tmp_path / "run"), "--trainer.logger", "false")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("lit-i2i: error:") and str(missing) in errors[0]
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_bad_option_value_names_the_option(tmp_path):
    r = _cli("fit", "--config", "experiments/quickstart.yaml", "--data.init_args.a", "letters",
             "--trainer.default_root_dir", str(tmp_path / "run"), "--trainer.logger", "false")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "data.a" in r.stderr and "letters" in r.stderr


def test_options_lightning_refuses_are_one_line(tmp_path):
    # two checkpoint schedules (the suite's default every_n_epochs 10 and a step schedule), then an accelerator
    # this machine lacks: Lightning's MisconfigurationException becomes one line naming the options
    r = _cli("fit", "--config", "experiments/quickstart.yaml", "--checkpoint.every_n_train_steps", "50",
             "--trainer.default_root_dir", str(tmp_path / "run"), "--trainer.logger", "false")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "--checkpoint.every_n_epochs 0" in errors[0]
    assert not (tmp_path / "run").exists()
    r = _cli("fit", "--config", "experiments/quickstart.yaml", "--trainer.accelerator", "mps",
             "--trainer.default_root_dir", str(tmp_path / "run2"), "--trainer.logger", "false")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("lit-i2i: error: --trainer options:") and "MPS" in errors[0]


def test_translate_bad_inputs(tmp_path):
    r = _cli("translate", "--ckpt", str(tmp_path / "missing.ckpt"), "--input", str(tmp_path), "--output", str(tmp_path / "o"))
    assert r.returncode == 2 and "missing.ckpt" in r.stderr and "Traceback" not in r.stderr
    bogus = tmp_path / "bogus.ckpt"
    bogus.write_text("not a checkpoint")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"\x89PNG broken")
    r = _cli("translate", "--ckpt", str(bogus), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o"))
    assert r.returncode == 2 and "bogus.ckpt" in r.stderr and "Traceback" not in r.stderr
