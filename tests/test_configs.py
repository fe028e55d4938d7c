"""Every shipped config starts: the ones on built-in data run ``lit-i2i fit`` for 2 optimizer steps
through the CLI (their metrics, grids and checkpoints included: metrics run at the end of fit);
the ones on real datasets, which are not here, resolve with ``--print_config``."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from lit_i2i.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "experiments").rglob("*.yaml")
                 if p.parent.name != "tables")  # table files are for lit-i2i reproduce (tests/test_reproduce.py)

pytestmark = pytest.mark.usefixtures("one_thread")


def builtin_data(config: str) -> bool:
    """Whether the config's data need no files: the built-in digits, digit data or one-shot data on
    built-in domains (no real dataset), or a single pair of built-in photographs."""
    from datamodules.builtin import DOMAINS, PHOTOS

    data = yaml.safe_load((ROOT / config).read_text())["data"]
    cls, args = data["class_path"].rsplit(".", 1)[-1], data.get("init_args") or {}
    if cls == "BuiltinDigits":
        return True
    if cls == "DigitDatasets":
        return all(args.get(k, d) in DOMAINS for k, d in (("a", "mnist"), ("b", "svhn")))
    if cls == "OneShot":
        return not any(args.get(k) for k in ("a_images", "a_test_root", "b_root", "a_dataset", "b_dataset"))
    if cls == "SinglePair":
        return all(args.get(k, d) in PHOTOS for k, d in (("a", "chelsea"), ("b", "coffee")))
    return False


def test_the_built_in_configs_are_found():
    assert {"experiments/quickstart.yaml", "experiments/ost/digits.yaml", "experiments/unit/digits.yaml"} <= {
        c for c in CONFIGS if builtin_data(c)}


@pytest.mark.parametrize("config", CONFIGS)
def test_every_config_starts(config, tmp_path, cli_env, capsys):
    if not builtin_data(config):
        with pytest.raises(SystemExit) as e:
            main(["fit", "--config", config, "--print_config"])
        assert e.value.code in (0, None)
        out = capsys.readouterr().out
        assert "class_path" in out and "model:" in out and "data:" in out
        return
    root = tmp_path / "run"
    assert main(["fit", "--config", config, "--trainer.default_root_dir", str(root), "--trainer.max_steps", "2",
                 "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
                 "--metrics.max_samples", "40"]) == 0
    state = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] >= 2 and state["iteration"] >= 1  # stops at the batch that reaches 2 steps
    assert list((root / "grids").glob("final_*.png"))
    summary = json.loads((root / "metrics.json").read_text())
    cfg = yaml.safe_load((ROOT / config).read_text())
    for m in (cfg.get("metrics") or {}).get("metrics") or []:  # the config's metrics ran, at the end of fit
        if m in ("acc", "fid_digits", "attr_prob", "attr_success"):
            assert any(k.startswith(f"val/{m}_") for k in summary), (m, sorted(summary))
