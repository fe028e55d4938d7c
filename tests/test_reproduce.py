"""``lit-i2i reproduce``: a tiny table (2 rows x 2 seeds, 2 steps, built-in data) end to end, skipping
finished runs, resuming a killed one, the submitit path under its debug executor, dry runs, and the
resolution of rows, seeds, proxies and shared runs."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from lit_i2i import reproduce as R
from lit_i2i.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"model.init_args.ngf": 8, "model.init_args.ndf": 8, "model.init_args.n_blocks": 1,
        "trainer.max_steps": 4, "trainer.max_epochs": 1, "trainer.logger": False,
        "trainer.enable_progress_bar": False, "data.init_args.train_limit": 32, "metrics.metrics": []}


def tiny_table(tmp_path: Path, **extra) -> Path:
    spec = {
        "paper": "Zhu et al., CycleGAN (a test table)", "table": "Table T",
        "protocol": "two tiny CycleGAN runs on built-in digits", "seeds": 2,
        "rows": [{"name": "full", "label": "CycleGAN", "config": "experiments/quickstart.yaml", "overrides": TINY},
                 {"name": "no_identity", "label": "without identity", "config": "experiments/quickstart.yaml",
                  "overrides": {**TINY, "model.init_args.lambda_identity": 0.0}}],
        "evaluate": {"metrics": ["acc"], "directions": ["AtoB"], "max_samples": 20},
        "columns": [{"key": "acc_AtoB", "label": "acc A->B", "better": "higher",
                     "paper": {"full": 0.5, "no_identity": 0.4}}],
        "claims": ["full > no_identity on acc_AtoB"],
        **extra}
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(spec))
    return p


def test_a_tiny_table_end_to_end_then_skips_finished_runs_and_resumes_a_killed_one(tmp_path, cli_env, monkeypatch,
                                                                                   capsys):
    table, out = tiny_table(tmp_path), tmp_path / "out"
    assert R.reproduce_main([str(table), "--out", str(out), "--no_wandb"]) == 0
    t = json.loads((out / "table.json").read_text())
    cell = t["cells"]["full"]["acc_AtoB"]
    assert cell["n"] == 2 and cell["paper"] == 0.5 and 0 <= cell["mean"] <= 1 and len(cell["values"]) == 2
    assert t["claims"][0]["verdict"] in ("holds", "does not hold")
    md = (out / "table.md").read_text()
    assert "CycleGAN" in md and "(n=2)" in md and "0.500" in md and "full > no_identity on acc_AtoB" in md
    head, rule = [line for line in md.splitlines() if line.startswith("|")][:2]
    assert head.count("|") == rule.count("|") == 4  # row, ours, paper: a well-formed markdown table
    for row in ("full", "no_identity"):
        for s in (0, 1):  # ordinary run folders
            run = out / row / f"seed{s}"
            assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "metrics.json").is_file()
            assert (run / R.EVAL_FILE).is_file()
    # a second call skips every finished run
    monkeypatch.setattr(R, "run_one", lambda run: pytest.fail(f"{run.key} ran again"))
    assert R.reproduce_main([str(table), "--out", str(out), "--no_wandb"]) == 0
    monkeypatch.undo()
    # a run killed after its last checkpoint resumes from it
    killed = out / "full" / "seed1"
    for f in ("metrics.json", R.EVAL_FILE):
        (killed / f).unlink()
    runs = R.plan(R.load_table(table), out)
    k = next(r for r in runs if r.key == "full/seed1")
    assert k.started and not k.done and k.fit_argv()[-2:] == ["--ckpt_path", "last"]
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    assert R.reproduce_main([str(table), "--out", str(out), "--no_wandb"]) == 0
    assert (killed / R.EVAL_FILE).is_file()
    assert torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4
    # a row changed since its runs were made is refused, not skipped (its old numbers would enter the table)
    spec = yaml.safe_load(table.read_text())
    spec["rows"][1]["overrides"]["model.init_args.lambda_identity"] = 0.25
    table.write_text(yaml.safe_dump(spec))
    before = (out / "table.json").read_text()
    with pytest.raises(UserError, match=r"no_identity/seed0: the run in .* other settings .*\(2 such run"):
        R.reproduce_main([str(table), "--out", str(out), "--no_wandb"])
    assert (out / "table.json").read_text() == before
    assert R.reproduce_main([str(table), "--out", str(out), "--dry_run"]) == 0
    assert "[changed since it ran] no_identity/seed1" in capsys.readouterr().out


def test_submitit_debug_executor_runs_the_same_folders(tmp_path, cli_env):
    pytest.importorskip("submitit")
    table, out = tiny_table(tmp_path, seeds=1), tmp_path / "slurm"
    assert R.reproduce_main([str(table), "--out", str(out), "--no_wandb", "--rows", "full", "--launcher", "submitit",
                             "--slurm.cluster", "debug", "--slurm.partition", "gpu", "--slurm.time", "60"]) == 0
    assert (out / "full" / "seed0" / R.EVAL_FILE).is_file() and (out / "submitit").is_dir()
    t = json.loads((out / "table.json").read_text())
    assert [r["name"] for r in t["rows"]] == ["full"] and t["cells"]["full"]["acc_AtoB"]["n"] == 1


def test_plan_resolves_proxies_shared_runs_and_seeds(tmp_path, capsys):
    spec = {"paper": "P", "table": "T", "seeds": 3, "seed_args": ["--seed_everything", "{seed}", "--data.init_args.seed", "{seed}"],
            "rows": [{"name": "phase1", "once": True, "table": False, "config": "a.yaml",
                      "overrides": {"model.init_args.phase2_steps": 0}},
                     {"name": "full", "config": "a.yaml",
                      "overrides": {"model.init_args.init_from": "{run:phase1}/checkpoints/last.ckpt", "model.init_args.x": True}}],
            "columns": [{"key": "acc_AtoB"}], "evaluate": {"metrics": ["acc"]},
            "proxy": {"seeds": 2, "config": "b.yaml", "overrides": {"trainer.max_steps": 10},
                      "rows": {"full": {"overrides": {"model.init_args.ngf": 8}}}}}
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump(spec))
    s = R.load_table(p)
    runs = R.plan(s, tmp_path / "o")
    assert [r.key for r in runs] == ["phase1", "full/seed0", "full/seed1", "full/seed2"]
    full1 = runs[2]
    assert full1.folder == tmp_path / "o" / "full" / "seed1" and full1.needs == ["phase1"]
    assert str(tmp_path / "o" / "phase1" / "checkpoints" / "last.ckpt") in full1.args
    assert full1.args[-4:] == ["--seed_everything", "1", "--data.init_args.seed", "1"] and "true" in full1.args
    proxy = R.plan(s, tmp_path / "p", proxy=True)
    assert [r.key for r in proxy] == ["phase1", "full/seed0", "full/seed1"]
    assert all(r.config == "b.yaml" for r in proxy) and "--model.init_args.ngf" in proxy[1].args
    assert "--trainer.max_steps" in proxy[0].args
    assert [r.key for r in R.plan(s, tmp_path / "o", rows=["full"], seeds=1)] == ["phase1", "full/seed0"]
    with pytest.raises(UserError, match="unknown row"):
        R.plan(s, tmp_path / "o", rows=["nope"])
    from lit_i2i.cli import main

    assert main(["reproduce", str(p), "--out", str(tmp_path / "o"), "--dry_run"]) == 0  # as a user types it
    out = capsys.readouterr().out
    assert "[to run] full/seed2: lit-i2i fit --config a.yaml" in out and "4 runs" in out


def test_named_proxies(tmp_path, capsys, monkeypatch):
    """``proxies: {NAME: ...}`` beside ``proxy``: ``--proxy NAME`` plans that one, into its own default folder;
    an unknown name is one line naming the table and the proxies it has."""
    from lit_i2i.cli import main

    spec = {"paper": "P", "table": "T", "rows": [{"name": "full", "config": "a.yaml"}],
            "columns": [{"key": "acc_AtoB"}], "evaluate": {"metrics": ["acc"]},
            "proxy": {"config": "b.yaml", "seeds": 1},
            "proxies": {"hard": {"config": "c.yaml", "seeds": 2, "protocol": "the hard pair",
                                 "overrides": {"data.init_args.b": "street-digits"}}}}
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump(spec))
    s = R.load_table(p)
    assert [r.config for r in R.plan(s, tmp_path / "o", proxy=True)] == ["b.yaml"]
    hard = R.plan(s, tmp_path / "o", proxy="hard")
    assert [r.key for r in hard] == ["full/seed0", "full/seed1"] and all(r.config == "c.yaml" for r in hard)
    assert "street-digits" in hard[0].args
    assert R.build_table(s, hard, "hard")["proxy_protocol"] == "the hard pair"
    with pytest.raises(UserError, match="no proxy named 'nope'.*plain --proxy.*hard"):
        R.plan(s, tmp_path / "o", proxy="nope")
    monkeypatch.chdir(tmp_path)  # the default output folder is relative
    assert main(["reproduce", str(p), "--proxy", "hard", "--dry_run"]) == 0
    assert "(proxy-hard): 2 runs into runs/tables/t-proxy-hard" in capsys.readouterr().out
    assert main(["reproduce", str(p), "--proxy", "nope", "--dry_run"]) == 2
    assert main(["reproduce", "--proxy", str(p), "--dry_run"]) == 0  # the flag before the file: the plain proxy
    assert "(proxy): 1 runs into runs/tables/t-proxy" in capsys.readouterr().out
    assert main(["reproduce", "--dry_run"]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**spec, "proxies": ["hard"]}))
    with pytest.raises(UserError, match="'proxies' must map"):
        R.load_table(bad)


def test_row_keys_column_scale_proxy_configs_and_missing_classifier_files(tmp_path, monkeypatch):
    spec = {"paper": "P", "table": "T", "seeds": 2,
            "rows": [{"name": "mbu", "config": "real.yaml", "overrides": {"data.init_args.a": "Smiling"},
                      "evaluate": {"attribute_classifier": {"BtoA": str(tmp_path / "clf.pt@0")}}},
                     {"name": "attgan", "config": "real2.yaml", "keys": {"kid_BtoA": "kid_AtoB"}}],
            "columns": [{"key": "kid_BtoA", "scale": 100}], "evaluate": {"metrics": ["kid"], "directions": ["BtoA"]},
            "proxy": {"rows": {"mbu": {"config": "digits.yaml", "evaluate": {"attribute_classifier": {}}},
                               "attgan": {"keys": {"kid_BtoA": "kid_digits_BtoA"}}}}}
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump(spec))
    s = R.load_table(p)
    runs = R.plan(s, tmp_path / "o")
    with pytest.raises(UserError, match="clf.pt"):  # before anything trains
        R.check_classifier_files(runs)
    proxy = R.plan(s, tmp_path / "p", proxy=True)
    assert "--data.init_args.a" not in proxy[0].args and proxy[0].config == "digits.yaml"  # real overrides dropped
    R.check_classifier_files(proxy)  # the proxy uses the built-in classifier
    assert "--data.init_args.a" in runs[0].args
    for r, value in zip(runs, (0.01, 0.02, 0.03, 0.05)):
        r.folder.mkdir(parents=True)
        key = r.keys.get("kid_BtoA", "kid_BtoA")
        (r.folder / R.EVAL_FILE).write_text(json.dumps({"metrics": {key: value}}))
    cells = R.build_table(s, runs, proxy=False)["cells"]
    assert [r.key for r in runs] == ["mbu/seed0", "attgan/seed0", "mbu/seed1", "attgan/seed1"]
    assert cells["mbu"]["kid_BtoA"]["mean"] == pytest.approx(2.0) and cells["mbu"]["kid_BtoA"]["n"] == 2
    assert cells["attgan"]["kid_BtoA"]["mean"] == pytest.approx(3.5)  # read from its AtoB result, scaled
    assert proxy[1].keys == {"kid_BtoA": "kid_digits_BtoA"}


def test_a_column_may_be_the_mean_of_several_result_keys(tmp_path):
    spec = {"paper": "P", "table": "T", "seeds": 2, "rows": [{"name": "a", "config": "c.yaml"}],
            "columns": [{"key": "guided", "mean_of": ["x_0to5", "x_1to7"]}, {"key": "x_0to5"}]}
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump(spec))
    s = R.load_table(p)
    runs = R.plan(s, tmp_path / "o")
    for r, vals in zip(runs, ({"x_0to5": 0.2, "x_1to7": 0.4}, {"x_0to5": 0.6, "x_1to7": 1.0})):
        r.folder.mkdir(parents=True)
        (r.folder / R.EVAL_FILE).write_text(json.dumps({"metrics": vals}))
    cells = R.build_table(s, runs, proxy=False)["cells"]["a"]
    assert cells["guided"]["values"] == pytest.approx([0.3, 0.8]) and cells["guided"]["mean"] == pytest.approx(0.55)
    assert cells["x_0to5"]["mean"] == pytest.approx(0.4)
    (runs[1].folder / R.EVAL_FILE).write_text(json.dumps({"metrics": {"x_0to5": 0.6}}))  # one key missing
    assert R.build_table(s, runs, proxy=False)["cells"]["a"]["guided"]["n"] == 1
    spec["columns"][0]["mean_of"] = "x_0to5"
    p.write_text(yaml.safe_dump(spec))
    with pytest.raises(UserError, match="mean_of"):
        R.load_table(p)


def test_a_finished_run_whose_last_ckpt_is_behind_its_end_resumes_and_keeps_the_old_evaluation(tmp_path, capsys):
    spec = {"paper": "P", "table": "T", "rows": [{"name": "a", "config": "c.yaml"}, {"name": "b", "config": "c.yaml"}],
            "columns": [{"key": "acc_AtoB"}]}
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump(spec))
    runs = R.plan(R.load_table(p), tmp_path / "o")
    for r, step in zip(runs, (16, 20)):  # a: Lightning's stale last.ckpt (step 16 of 20); b: at its end
        (r.folder / "checkpoints").mkdir(parents=True)
        torch.save({"state_dict": {}, "global_step": step}, r.folder / "checkpoints" / "last.ckpt")
        (r.folder / "metrics.json").write_text(json.dumps({"global_step": 20}))
        (r.folder / R.EVAL_FILE).write_text(json.dumps({"metrics": {"acc_AtoB": 0.5}}))
    assert R.ckpt_behind(runs[0]) == (16, 20) and R.ckpt_behind(runs[1]) is None
    R.resume_behind(runs)
    assert not runs[0].done and runs[0].started and "--ckpt_path" in runs[0].fit_argv()  # resumes to its end
    assert json.loads((runs[0].folder / (R.EVAL_FILE + ".behind")).read_text())["metrics"]["acc_AtoB"] == 0.5
    assert runs[1].done
    assert "step 16 but the run ended at step 20" in capsys.readouterr().out


def test_bad_table_files_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        R.load_table(tmp_path / "missing.yaml")
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump({"paper": "P", "table": "T", "rows": [{"name": "a"}], "columns": [],
                                 "claims": ["a beats b"]}))
    with pytest.raises(UserError, match="cannot read the claim"):
        R.load_table(p)


TABLES = sorted(str(p.relative_to(Path(__file__).resolve().parents[1]))
                for p in (Path(__file__).resolve().parents[1] / "experiments" / "tables").glob("*.yaml"))


@pytest.mark.parametrize("table", ["experiments/tables/ost_table2.yaml", "experiments/tables/ost_table3.yaml"])
def test_ost_table2_and_table3_rows_resolve_every_paper_cell_has_a_home_and_the_proxy_needs_no_file(
        table, tmp_path, cli_env, capsys):
    """OST Tables 2-3: every run's ``lit-i2i fit`` arguments resolve through the CLI's parser (``--print_config``:
    nothing is read or built; one run per config and set of options), the one-sample rows run on the one-shot
    datamodule with the single sample as A (the official first file in the real table) and are evaluated A -> B
    only, every paper value sits in a column its row reports (the row's keys name the column), and the proxy reads
    only built-in data and evaluates with the seeded random VGG (no ImageNet file)."""
    from lit_i2i.cli import main

    spec = R.load_table(table)
    rows = {r["name"]: r for r in spec["rows"]}
    for c in spec["columns"]:
        for name in c["paper"]:
            assert c["key"] in rows[name].get("keys", {}), (c["key"], name)
    for proxy in (False, True):
        runs = R.plan(spec, tmp_path / ("proxy" if proxy else "real"), proxy=proxy)
        seen = set()
        for r in runs:
            kind = (r.config, tuple(a for a in r.args if a.startswith("--")))
            if kind in seen:
                continue
            seen.add(kind)
            with pytest.raises(SystemExit) as e:
                main([*r.fit_argv(), "--print_config"])
            assert e.value.code in (0, None), r.key
            data = yaml.safe_load(capsys.readouterr().out)["data"]
            args = data.get("init_args") or {}
            if r.row.split("_")[0] in ("ost1", "unit1", "cyclegan1"):
                assert data["class_path"] == "datamodules.oneshot.OneShot", r.key
                assert r.evaluate["directions"] == ["AtoB"] and r.needs == (["ost_phase1_" + r.row[5:]]
                                                                             if r.row.startswith("ost1") else [])
                if not proxy and r.row.startswith(("unit1", "cyclegan1")):  # the methods' own crop and flip
                    assert args["a_index"] == [0] and args["a_root"] and args["a_scale"] is None
            if proxy:
                assert not any(args.get(k) for k in ("root", "a_root", "a_images", "b_root", "a_test_root")), r.key
                assert data["class_path"] in ("datamodules.oneshot.OneShot", "datamodules.builtin.BuiltinDigits")
                assert "street-digits" in (args.get("b"), args.get("a_builtin"), args.get("b_builtin")), r.key
        table_runs = [r for r in runs if r.in_table]
        assert table_runs and all(r.evaluate["metrics"] == ["content", "style"] for r in table_runs)
        assert all((r.evaluate.get("vgg_weights") == "random") == proxy for r in table_runs)


@pytest.mark.parametrize("table", TABLES)
def test_every_shipped_table_dry_runs_real_and_proxy(table, tmp_path, cli_env, capsys):
    spec = R.load_table(table)
    assert R.reproduce_main([table, "--dry_run", "--out", str(tmp_path / "real")]) == 0
    runs = R.plan(spec, tmp_path / "real")
    assert runs and all(Path(r.config).is_file() for r in runs)
    if spec.get("proxy"):
        assert R.reproduce_main([table, "--dry_run", "--proxy", "--out", str(tmp_path / "proxy")]) == 0
        assert all(Path(r.config).is_file() for r in R.plan(spec, tmp_path / "proxy", proxy=True))
    for name in spec.get("proxies") or {}:
        assert R.reproduce_main([table, "--dry_run", "--proxy", name, "--out", str(tmp_path / name)]) == 0
        assert all(Path(r.config).is_file() for r in R.plan(spec, tmp_path / name, proxy=name))
    for c in spec["columns"]:  # every paper value belongs to a row of the table
        assert set(c.get("paper") or {}) <= {r["name"] for r in spec["rows"]}
    assert "lit-i2i fit --config" in capsys.readouterr().out


def test_ost_figure3_rows_resolve_and_the_proxy_reads_built_in_data_with_the_b_rate(tmp_path, cli_env, capsys):
    """OST Figure 3 at one sample (the old one_shot_comparison.py's figure3 rows): every run's ``lit-i2i fit``
    arguments resolve (``--print_config``); the real baselines train on ONE MNIST image against SVHN, the proxy's on
    built-in digits -> colored digits; the OST rows start from the shared Phase I; the proxy adds the B rate."""
    from lit_i2i.cli import main

    spec = R.load_table("experiments/tables/ost_figure3_m2s.yaml")
    for proxy in (False, True, "street"):
        runs = R.plan(spec, tmp_path / str(proxy), proxy=proxy)
        assert sorted({r.row for r in runs}) == ["cyclegan1", "ost", "ost_nosb", "phase1", "unit1"]
        for r in runs:
            if r.seed not in (None, 0):
                continue
            with pytest.raises(SystemExit) as e:
                main([*r.fit_argv(), "--print_config"])
            assert e.value.code in (0, None), r.key
            data = yaml.safe_load(capsys.readouterr().out)["data"]
            args = data["init_args"]
            assert data["class_path"] == "datamodules.oneshot.OneShot", r.key
            if proxy:
                b = "street-digits" if proxy == "street" else "colored-digits"
                assert (args["a_builtin"], args["b_builtin"]) == ("digits", b), r.key
            else:
                assert (args["a_dataset"], args["b_dataset"], args["a_builtin"]) == ("mnist", "svhn", None), r.key
            if r.in_table:
                assert r.evaluate["metrics"] == (["acc", "domain_rate"] if proxy else ["acc"]), r.key
            assert r.needs == (["phase1"] if r.row.startswith("ost") else []), r.key


def test_evaluate_also_adds_prefixed_evaluations_of_the_same_run(tmp_path, cli_env):
    table = tiny_table(tmp_path, seeds=1, evaluate={
        "metrics": ["acc"], "directions": ["AtoB"], "max_samples": 20,
        "also": [{"prefix": "small_", "max_samples": 10}, {"prefix": "l1_", "metrics": ["l1_input"]}]})
    out = tmp_path / "out"
    assert R.reproduce_main([str(table), "--out", str(out), "--rows", "full", "--no_wandb"]) == 0
    ev = json.loads((out / "full" / "seed0" / R.EVAL_FILE).read_text())
    assert set(ev["metrics"]) == {"acc_AtoB", "small_acc_AtoB", "l1_l1_input_AtoB"}
    assert 0 < ev["metrics"]["l1_l1_input_AtoB"] < 2 and not (out / "full" / "seed0" / (R.EVAL_FILE + ".partial")).exists()
    bad = tiny_table(tmp_path, seeds=1, evaluate={"metrics": ["acc"], "also": [{"max_samples": 10}]})
    with pytest.raises(UserError, match="each with a prefix"):  # refused before anything trains
        R.plan(R.load_table(bad), tmp_path / "bad")
