"""Real digit datasets (MNIST, SVHN, USPS) through torchvision's classes, on tiny files written in the
exact formats torchvision reads (``data_factory.make_mnist/make_svhn/make_usps``). Nothing downloads:
the one test of a failing download replaces torchvision's download function."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.datasets as tvd
from data_factory import make_mnist, make_svhn, make_usps, svhn_checksums

from datamodules import digit_datasets as dd
from datamodules.digit_datasets import DigitDatasets, digit_dataset_source, labelled_arrays
from datamodules.oneshot import OneShot
from lit_i2i.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_OST = ["--model.init_args.ngf", "8", "--model.init_args.ndf", "8", "--model.init_args.phase1_steps", "1",
            "--model.init_args.phase2_steps", "1"]
TINY_DIDD = ["--model.init_args.ngf", "4", "--model.init_args.dim", "32", "--model.init_args.sep", "4",
             "--model.init_args.disc_hidden", "16", "--model.init_args.e2_max_channels", "16"]
QUICK = ["--trainer.max_steps", "2", "--trainer.logger", "false", "--metrics.metrics", "[]",
         "--trainer.enable_progress_bar", "false", "--trainer.limit_val_batches", "0",
         "--data.init_args.num_workers", "0", "--data.init_args.batch_size", "2"]


def accept_fake_svhn(monkeypatch, root):
    """torchvision checks SVHN's MD5: let it check against the fake files' own (the check still runs)."""
    for split, md5 in svhn_checksums(root).items():
        url, name, _ = tvd.SVHN.split_list[split]
        monkeypatch.setitem(tvd.SVHN.split_list, split, [url, name, md5])


@pytest.fixture
def digits_root(tmp_path, monkeypatch):
    """A root holding tiny MNIST, SVHN and USPS files; returns (root, {name: {split: (images, labels)}})."""
    root = tmp_path / "digits"
    written = {"mnist": make_mnist(root), "svhn": make_svhn(root), "usps": make_usps(root)}
    accept_fake_svhn(monkeypatch, root)
    return root, written


def resized(x: np.ndarray) -> torch.Tensor:
    """What the loader should make of grey (N, h, w) uint8: 32x32 bilinear antialiased, 3 channels."""
    t = F.interpolate(torch.from_numpy(x)[:, None].float(), size=(32, 32), mode="bilinear", antialias=True,
                      align_corners=False)
    return t.round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1)


@pytest.mark.parametrize("name", ["mnist", "svhn", "usps"])
def test_each_dataset_loads_as_32x32_rgb_uint8_with_labels(digits_root, name):
    root, written = digits_root
    for split, n in (("train", 6), ("test", 4)):
        src = digit_dataset_source(name, root, split)
        images, labels = written[name][split]
        assert len(src) == n and src.images.shape == (n, 3, 32, 32) and src.images.dtype == torch.uint8
        x, label, path = src[1]
        assert x.shape == (3, 32, 32) and x.dtype == torch.uint8 and path == f"torchvision://{name}/{split}/1"
        assert src.labels.tolist() == labels.tolist() and label == int(labels[1])
        expected = torch.from_numpy(images) if name == "svhn" else resized(images)
        assert torch.equal(src.images, expected)
    assert digit_dataset_source(name, root, "val") is digit_dataset_source(name, root, "test")  # val = test, cached


def test_svhn_zero_is_label_0_and_labelled_arrays(digits_root):
    root, written = digits_root
    images, labels = labelled_arrays("svhn", root, "train")
    assert 0 in labels.tolist() and 10 not in labels.tolist()  # the file holds 10 for the digit zero
    assert images.shape == (6, 3, 32, 32) and labels.dtype == torch.int64
    grey, _ = labelled_arrays("mnist", root, "train")
    assert torch.equal(grey[:, 0], grey[:, 2])  # grey repeated to 3 channels


def test_decoded_once_per_process(digits_root, monkeypatch):
    root, _ = digits_root
    first = digit_dataset_source("usps", root, "train")
    monkeypatch.setattr(dd, "_decode", lambda *a: pytest.fail("decoded twice"))
    assert digit_dataset_source("usps", str(root), "train") is first


def test_missing_files_name_the_folder_the_files_and_the_option(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = {"mnist": ["MNIST/raw/train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"],
             "svhn": ["test_32x32.mat"], "usps": ["usps.t.bz2"]}
    for name, files in cases.items():
        with pytest.raises(UserError) as e:
            DigitDatasets(a=name, b="digits", root=str(empty)).eval_source("A", "test")
        msg = str(e.value)
        assert "\n" not in msg and msg.startswith("data.root: ") and str(empty) in msg
        assert all(f in msg for f in files) and "--data.init_args.download true" in msg, msg
    with pytest.raises(UserError, match="data.b_root: .*does not exist.*train_32x32.mat"):
        DigitDatasets(a="digits", b="svhn", b_root=str(tmp_path / "nowhere")).check()


def test_bad_files_and_failing_download_are_one_line(digits_root, monkeypatch, tmp_path):
    root, _ = digits_root
    (root / "usps.bz2").write_bytes(b"not bz2 at all")
    with pytest.raises(UserError, match=r"cannot read USPS train files .*usps.bz2.*download true"):
        DigitDatasets(a="usps", b="digits", root=str(root)).eval_source("A", "train")
    monkeypatch.setitem(tvd.SVHN.split_list, "test", [*tvd.SVHN.split_list["test"][:2], "0" * 32])
    with pytest.raises(UserError, match=r"test_32x32.mat is not torchvision's SVHN file: its MD5"):
        digit_dataset_source("svhn", root, "test")
    calls = []

    def offline(url, *args, **kw):  # replaces torchvision's download: no network is touched
        calls.append(url)
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(tvd.usps, "download_url", offline)
    with pytest.raises(UserError, match=r"could not download USPS into .*Temporary failure.*usps.t.bz2") as e:
        digit_dataset_source("usps", tmp_path / "fresh", "test", download=True)
    assert calls and "\n" not in str(e.value)


def test_digit_datasets_batch_contract_and_builtin_domain(digits_root):
    root, written = digits_root
    dm = DigitDatasets(a="mnist", b="svhn", root=str(root), batch_size=4, eval_batch_size=3)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"A", "B", "A_path", "B_path", "A_label", "B_label"}
    assert batch["A"].shape == batch["B"].shape == (4, 3, 32, 32) and batch["A"].dtype == torch.float32
    assert batch["A"].min() >= -1 and batch["A"].max() <= 1 and batch["B"].min() >= -1
    assert all(p.startswith("torchvision://mnist/train/") for p in batch["A_path"])
    val = next(iter(dm.val_dataloader()))
    assert val["A_label"].tolist() == written["mnist"]["test"][1][:3].tolist()
    assert dm.builtin_domain("A") == "mnist" and dm.builtin_domain("B") == "svhn" and dm.name == "mnist2svhn"
    item = dm.eval_dataset("B", "test")[0]
    assert torch.allclose(item["image"], torch.from_numpy(written["svhn"]["test"][0][0]).float() / 127.5 - 1,
                          atol=1e-6)
    # a built-in domain on either side (its A or B half, as BuiltinDigits), train_limit
    mixed = DigitDatasets(a="usps", b="colored-digits", root=str(root), train_limit=3, batch_size=2)
    assert mixed.builtin_domain("B") == "colored-digits" and len(mixed.dataset("train").a) == 3
    assert next(iter(mixed.train_dataloader()))["B"].shape == (2, 3, 32, 32)
    with pytest.raises(UserError, match="data.b: unknown digit domain 'cifar'"):
        DigitDatasets(b="cifar")


def test_oneshot_on_real_datasets(digits_root):
    root, written = digits_root
    dm = OneShot(a_dataset="mnist", b_dataset="svhn", dataset_root=str(root), a_index=[2], batch_size=4)
    dm.check()
    assert dm.shots()[0][2] == "torchvision://mnist/train/2" and dm.shots()[0][1] == 2
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"A", "B", "A_path", "B_path", "A_label", "B_label"}
    assert batch["A"].shape == (4, 3, 32, 32) and set(batch["A_path"]) == {"torchvision://mnist/train/2"}
    assert all(p.startswith("torchvision://svhn/train/") for p in batch["B_path"])
    assert len(dm.eval_source("A", "test")) == 4 and len(dm.eval_source("B", "val")) == 4  # the test splits
    assert dm.builtin_domain("A") == "mnist" and dm.builtin_domain("B") == "svhn"
    k = OneShot(a_dataset="usps", b_builtin="colored-digits", dataset_root=str(root), k=2, seed=1)
    assert len(k.shots()) == 2 and k.builtin_domain("B") == "colored-digits"
    # the dataset B side with a built-in A; a folder B still takes precedence over b_dataset
    assert OneShot(a_builtin="digits", b_dataset="usps", dataset_root=str(root)).builtin_domain("B") == "usps"
    with pytest.raises(UserError, match=r"data.a_index: positions must be in \[0, 6\) \(the mnist training split\)"):
        OneShot(a_dataset="mnist", dataset_root=str(root), a_index=[6]).shots()
    with pytest.raises(UserError, match="data.a_dataset: unknown digit dataset 'emnist'"):
        OneShot(a_dataset="emnist").check()
    with pytest.raises(UserError, match=r"data.dataset_root: .*no SVHN train files.*train_32x32.mat"):
        OneShot(a_builtin="digits", b_dataset="svhn", dataset_root=str(root / "MNIST")).check()


def test_cli_without_files_is_one_line_and_exit_2(tmp_path, cli_env, capsys):
    from lit_i2i.cli import main

    missing = tmp_path / "no_digits"
    code = main(["fit", "--config", "experiments/ost/mnist2svhn.yaml", "--data.init_args.dataset_root", str(missing),
                 "--trainer.default_root_dir", str(tmp_path / "run"), *QUICK])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    lines = [ln for ln in err.splitlines() if str(missing) in ln]
    assert len(lines) == 1 and "data.dataset_root" in lines[0] and "train-images-idx3-ubyte" in lines[0]
    assert "--data.init_args.download true" in lines[0]
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("config,tiny", [("ost/mnist2svhn", TINY_OST), ("ost/svhn2mnist", TINY_OST),
                                         ("didd/mnist2svhn", TINY_DIDD)])
def test_configs_start_on_the_files(digits_root, tmp_path, cli_env, config, tiny):
    from lit_i2i.cli import main

    root, _ = digits_root
    option = "dataset_root" if config.startswith("ost") else "root"
    run = tmp_path / "run"
    assert main(["fit", "--config", f"experiments/{config}.yaml", f"--data.init_args.{option}", str(root),
                 "--trainer.default_root_dir", str(run), *QUICK, *tiny]) == 0
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] >= 2
