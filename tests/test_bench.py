"""The benchmarks' machinery (issue 19): the bare loop is the method's own step, each bench mode runs
on a tiny setting, the fast-path options run and keep results, the decoded-image cache gives the
same batches. Speed itself is measured by ``lit-i2i bench ...``, never asserted here."""

from __future__ import annotations

import json
import warnings

import pytest
import pytorch_lightning as pl
import torch
import yaml
from data_factory import make_folder, make_unpaired

from datamodules.folders import UnpairedFolders
from lit_i2i.cli import instantiate, main

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_CYCLEGAN = {
    "trainer": {"log_every_n_steps": 1},
    "model": {"class_path": "lit_i2i.methods.cyclegan.CycleGAN",
              "init_args": {"netG": "resnet", "ngf": 4, "ndf": 4, "n_blocks": 1, "n_down": 2, "n_layers_D": 1, "pool_size": 4}},
    "data": {"class_path": "datamodules.builtin.BuiltinDigits",
             "init_args": {"a": "digits", "b": "colored-digits", "batch_size": 2, "train_limit": 16}},
}


def _config(tmp_path, cfg=TINY_CYCLEGAN, name="tiny.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(cfg))
    return p


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_the_bare_loop_trains_exactly_as_the_trainer():
    """Same seed, same data, 3 batches: the plain loop and the Trainer end with the same weights, so
    the bare side of --compare bare is the method's own step and not a lighter copy."""
    from lit_i2i.bench.bare import BareLoop

    def fresh():
        pl.seed_everything(0, verbose=False)
        return instantiate(TINY_CYCLEGAN["model"]), instantiate(TINY_CYCLEGAN["data"])

    model, dm = fresh()
    loop = BareLoop(model, dm)
    assert loop.run(3) == 3
    bare = _state(model)

    model, dm = fresh()
    pl.Trainer(max_steps=-1, limit_train_batches=3, max_epochs=1, logger=False, enable_checkpointing=False,
               enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
               num_sanity_val_steps=0).fit(model, dm)
    lit = _state(model)
    assert model.iteration == 3
    assert bare.keys() == lit.keys()
    for k in bare:
        torch.testing.assert_close(bare[k], lit[k], rtol=0, atol=1e-6, msg=k)


def test_bench_train_compare_bare_and_every_variant_run(tmp_path, cli_env, capsys):
    cfg = _config(tmp_path)
    out = tmp_path / "rows.json"
    assert main(["bench", "train", "--configs", str(cfg), "--steps", "2", "--warmup", "1", "--compare", "bare",
                 "--repeats", "2", "--min_seconds", "0.01", "--variants", "fp32,bf16+cl+fused,fp32+compile",
                 "--compile_backend", "eager",
                 "--peak_tflops", "1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["variant"] for r in rows] == ["fp32", "bf16+cl+fused", "fp32+compile"]
    for r in rows:
        assert r["trainer_img_s"] > 0 and r["bare_img_s"] > 0 and r["ratio"] > 0
        assert r["ratio_min"] <= r["ratio"] <= r["ratio_max"]
        assert r["gflop_step"] > 0 and 0 < r["mfu"] < 1  # of a 1-TFLOP/s device
        assert r["peak_mib"] >= 0  # tiny nets may add nothing the resident set shows
    table = capsys.readouterr().out
    assert "Trainer/bare" in table and "MFU" in table
    # each row's own line carries every column, so a run cut off by a time limit has printed them
    assert sum(line.startswith("bench: ") and "GFLOP/step, MFU" in line for line in table.splitlines()) == 3


def test_bench_refuses_bad_options_in_one_line(tmp_path, cli_env, capsys):
    cfg = _config(tmp_path)
    assert main(["bench", "train", "--configs", str(cfg), "--variants", "fp64"]) == 2
    assert "--variants" in capsys.readouterr().err
    assert main(["bench", "train", "--configs", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err
    assert main(["bench", "train", "--configs", str(cfg), "--compare", "bare", "--variants", "fp16"]) == 2
    assert "fp16" in capsys.readouterr().err
    assert main(["bench", "nonsense"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_bench_data_generates_a_cyclegan_folder_and_times_each_setting(tmp_path, cli_env, capsys, monkeypatch):
    monkeypatch.setenv("LIT_I2I_CACHE", str(tmp_path / "cache"))
    cfg = dict(TINY_CYCLEGAN, data={"class_path": "datamodules.folders.UnpairedFolders",
                                    "init_args": {"root": "unused", "load_size": 40, "crop_size": 32,
                                                  "batch_size": 2}})
    p = _config(tmp_path, cfg)
    assert main(["bench", "data", "--config", str(p), "--generate", "12", "--workers", "0,1", "--decode_cache",
                 "none,memory,disk", "--batches", "3", "--warmup", "1", "--train_img_s", "5"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith(("none ", "memory ", "disk "))]
    assert [(r[0], r[1]) for r in rows] == [(c, w) for c in ("none", "memory", "disk") for w in ("0", "1")]
    assert all(float(r[3]) > 0 for r in rows)
    assert not (tmp_path / "cache" / "decoded").exists()  # the generated files' cache left with them


def test_bench_eval_prints_the_cold_warm_ratio(tmp_path, capsys):
    from lit_i2i.bench.eval import bench_eval_main

    assert bench_eval_main(["--n", "40", "--cache_dir", str(tmp_path), "--metrics", "fid_digits,kid_digits",
                            "--inception_n", "2", "--batch_size", "20"]) == 0
    out = capsys.readouterr().out
    assert "ratio cold / warm" in out and "same results cold and warm: True" in out
    assert "Inception-v3 features" in out


@pytest.mark.parametrize("mode", ["memory", "disk"])
def test_decode_cache_gives_the_same_batches(tmp_path, monkeypatch, mode):
    root = make_unpaired(tmp_path / "data", 6, 5, size=(20, 18), n_test=2)
    monkeypatch.setenv("LIT_I2I_CACHE", str(tmp_path / "cache"))

    def batches(cache):
        dm = UnpairedFolders(str(root), load_size=24, crop_size=16, batch_size=2, decode_cache=cache)
        dm.setup("fit")
        torch.manual_seed(3)
        return list(dm.train_dataloader())

    plain, cached = batches("none"), batches(mode)
    assert len(plain) == len(cached) == 3
    for p, c in zip(plain, cached):
        assert p["A_path"] == c["A_path"] and p["B_path"] == c["B_path"]
        assert torch.equal(p["A"], c["A"]) and torch.equal(p["B"], c["B"])
    if mode == "disk":
        files = list((tmp_path / "cache").rglob("*.pt"))
        assert len(files) == 2  # one per domain, reused (memory-mapped) by the next run
        again = batches("disk")
        assert all(torch.equal(p["A"], c["A"]) for p, c in zip(plain, again))


def test_decode_cache_option_is_checked(tmp_path):
    from lit_i2i.errors import UserError

    root = make_unpaired(tmp_path / "data", 2, 2)
    dm = UnpairedFolders(str(root), load_size=16, crop_size=16, decode_cache="gpu")
    with pytest.raises(UserError, match="decode_cache"):
        dm.setup("fit")


def test_fused_optimizers_keep_groups_and_say_which_cannot():
    from lit_i2i.core.fast import fused

    net = torch.nn.Linear(3, 2)
    adam = torch.optim.Adam([{"params": [net.weight], "lr": 1e-3}, {"params": [net.bias], "lr": 5e-4}],
                            betas=(0.5, 0.999))
    f = fused(adam)
    assert f is not adam and f.defaults["fused"] is True
    assert [g["lr"] for g in f.param_groups] == [1e-3, 5e-4] and f.param_groups[0]["betas"] == (0.5, 0.999)
    assert [g["params"] for g in f.param_groups] == [[net.weight], [net.bias]]
    rms = torch.optim.RMSprop(net.parameters())
    assert fused(rms) is rms

    model = instantiate(TINY_CYCLEGAN["model"])
    model._fused_optimizers = True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opts, _ = model.configure_optimizers()  # CycleGAN: Adam only, nothing to warn about
    assert all(o.defaults["fused"] for o in opts)


def test_fit_with_the_fast_options(tmp_path, cli_env):
    """--fast.channels_last / fused_optimizers / compile through `lit-i2i fit`; the run's checkpoint
    keeps the plain state-dict keys (compile in place), so translate loads it."""
    cfg = _config(tmp_path)
    run = tmp_path / "run"
    assert main(["fit", "--config", str(cfg), "--trainer.default_root_dir", str(run), "--trainer.max_steps", "4",
                 "--trainer.logger", "false", "--trainer.limit_val_batches", "0", "--metrics.metrics", "[]",
                 "--fast.channels_last", "true", "--fast.fused_optimizers", "true", "--fast.compile", "true",
                 "--fast.compile_backend", "eager"]) == 0
    ckpt = run / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    assert not any("_orig_mod" in k for k in state)
    images = make_folder(tmp_path / "in", 2, (32, 32))
    assert main(["translate", "--ckpt", str(ckpt), "--input", str(images[0].parent), "--output",
                 str(tmp_path / "out")]) == 0
    assert len(list((tmp_path / "out").glob("*.png"))) == 2


def test_loaders_keep_their_workers_and_never_start_more_than_the_cores(tmp_path):
    from datamodules.base import available_cpus

    root = make_unpaired(tmp_path / "data", 4, 4)
    dm = UnpairedFolders(str(root), load_size=16, crop_size=16, batch_size=2, num_workers=64)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert loader.num_workers == available_cpus() and loader.persistent_workers
    plain = UnpairedFolders(str(root), load_size=16, crop_size=16, batch_size=2)
    plain.setup("fit")
    assert not plain.train_dataloader().persistent_workers  # no workers, nothing to keep


def test_bench_a_failing_run_is_one_line_and_the_others_still_run(tmp_path, cli_env, capsys):
    import copy

    bad_cfg = copy.deepcopy(TINY_CYCLEGAN)
    bad_cfg["model"]["init_args"]["netG"] = "unet_256"  # 8 downsamplings: refuses the 32x32 digits in its forward
    for resnet_only in ("n_blocks", "n_down"):
        del bad_cfg["model"]["init_args"][resnet_only]
    bad, good = _config(tmp_path, bad_cfg, "bad.yaml"), _config(tmp_path)
    out = tmp_path / "rows.json"
    assert main(["bench", "train", "--configs", str(bad), str(good), "--steps", "1", "--warmup", "1", "--no_flops",
                 "--json", str(out)]) == 1
    printed = capsys.readouterr().out
    failed = [line for line in printed.splitlines() if ": failed (" in line]
    assert len(failed) == 1 and "bad.yaml" in failed[0] and "ValueError" in failed[0] and "Traceback" not in printed
    assert [r["config"].rpartition("/")[2] for r in json.loads(out.read_text())] == ["tiny.yaml"]
