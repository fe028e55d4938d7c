"""``lit-i2i reproduce TABLE.yaml``: a paper table as a file and one command.

A table file (``experiments/tables/<paper>_<table>.yaml``) names the paper and the table, says the
protocol in words, and lists:

- ``rows``: each a ``name``, a ``label``, a ``config`` (an ordinary ``lit-i2i fit`` config),
  ``overrides`` (dotted option -> value, the same as ``--option value`` on the command line; values
  may use ``{seed}``, ``{out}`` and ``{run:NAME}``, the run folder of another row of the same seed, or
  of a ``once`` row), and optionally ``once: true`` (one run for all seeds, e.g. OST's shared Phase I),
  ``table: false`` (a run other rows need, not a row of the table) and ``keys: {COLUMN_KEY:
  RESULT_KEY}`` (the row's result under another name, e.g. a method whose removal is AtoB where the
  column's is BtoA; also in a proxy row);
- ``evaluate``: the evaluation protocol, the keyword arguments of
  :func:`lit_i2i.metrics.evaluate_model` (``metrics``, ``directions``, ``split``, ``max_samples``,
  ``reference``, ``classifier``, ``translate``, ...), run on every finished (row, seed) from its ``last.ckpt``;
  a row may replace any of them with its own ``evaluate`` section; ``also``: a list of further
  evaluations of the same run, each with a ``prefix`` for its result keys and the options it changes
  (e.g. ``{prefix: intersection_, translate: {BtoA: {mode: intersection}}}``);
- ``columns``: ``key`` (a result key such as ``acc_AtoB``), ``label``, ``better`` (higher / lower),
  optionally ``scale`` (ours are multiplied by it, e.g. 100 for a paper's KID x 100), ``mean_of`` (a list
  of result keys: the column is their mean in each run, e.g. one measure over several directions; ``key``
  then only names the column), and the paper's value of each row (``paper: {row: value}``);
- ``claims``: checkable sentences, ``"ROW_A > ROW_B on KEY"`` (``>``, ``<``, ``>=``, ``<=``), each
  marked holds / does not hold from the means over seeds;
- ``layout``: ``metrics_as_rows`` writes table.md with one line per column and one column per row
  (for a table of many measures and no paper values); the default has one line per row;
- ``seeds`` and ``seed_args`` (how a seed enters a run; default ``--seed_everything {seed}``);
- ``proxy``: the same table on built-in data at CPU size: its own ``seeds``, ``overrides`` for every
  row, per-row ``config`` / ``overrides`` / ``evaluate`` replacements (``rows: {name: {...}}``), and
  ``skip``: the rows that have no built-in stand-in. A proxy row with its own ``config`` does not
  inherit the row's ``overrides`` (they are options of the real config);
- ``proxies``: more proxies by name (``{NAME: {...}}``, each in the form of ``proxy``), run with
  ``--proxy NAME`` (plain ``--proxy`` runs ``proxy``), e.g. a harder built-in pair beside the default one.

Every (row, seed) is an ordinary run folder ``OUT/<row>/seed<k>`` (``OUT/<row>`` for a ``once`` row)
made by ``lit-i2i fit``, so every tool of the suite works on it. A run whose evaluation file exists
is skipped; one with a ``last.ckpt`` but no evaluation resumes from it (``--ckpt_path last``). At the
end ``OUT/table.md`` and ``OUT/table.json`` hold, for every cell, the paper's value beside ours
(mean ± std over seeds, n) and each claim's verdict; the table is also logged as a ``wandb.Table`` in
the W&B group of the table (offline without credentials, as every run of the suite).

Launchers: ``local`` runs the fits one after the other in this process; ``submitit`` submits one
SLURM job per (row, seed) through submitit (each job a normal, possibly multi-GPU ``lit-i2i fit``:
Lightning reads the SLURM environment); calling ``reproduce`` again collects the results and submits
what is missing. ``--dry_run`` prints the resolved runs and their commands.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from lit_i2i.errors import UserError

EVAL_FILE = "table_eval.json"
RUN_FILE = "table_run.json"  # what a run was trained with (config, arguments, evaluation): a changed row is refused
CLAIM = re.compile(r"^\s*(\S+)\s*(>=|<=|>|<)\s*(\S+)\s+on\s+(\S+)\s*$")


@dataclass
class Run:
    """One ``lit-i2i fit`` of a table: a row at a seed (``seed`` None for a ``once`` row)."""

    row: str
    seed: int | None
    config: str
    folder: Path
    args: list[str]
    evaluate: dict
    in_table: bool = True
    needs: list[str] = field(default_factory=list)
    keys: dict = field(default_factory=dict)  # column key -> this row's result key (e.g. another direction)

    @property
    def key(self) -> str:
        return self.row if self.seed is None else f"{self.row}/seed{self.seed}"

    def fit_argv(self) -> list[str]:
        argv = ["fit", "--config", self.config, "--trainer.default_root_dir", str(self.folder), *self.args]
        if (self.folder / "checkpoints" / "last.ckpt").is_file():
            argv += ["--ckpt_path", "last"]
        return argv

    def command(self) -> str:
        return "lit-i2i " + " ".join(shlex.quote(a) for a in self.fit_argv())

    @property
    def done(self) -> bool:
        return (self.folder / EVAL_FILE).is_file() or (not self.in_table and (self.folder / "metrics.json").is_file())

    @property
    def started(self) -> bool:
        return (self.folder / "checkpoints" / "last.ckpt").is_file()

    def recipe(self) -> dict:
        return {"config": self.config, "args": list(self.args), "evaluate": self.evaluate}

    def stale(self) -> bool:
        """The folder holds a run trained (or evaluated) with another recipe than the table's row now gives."""
        p = self.folder / RUN_FILE
        if not p.is_file():
            return False
        try:
            return json.loads(p.read_text()) != json.loads(json.dumps(self.recipe()))
        except ValueError:
            return True


def ckpt_behind(run: Run) -> tuple[int, int] | None:
    """(step of last.ckpt, the run's final step) when a finished run's last.ckpt is from before its end,
    else None. Lightning 2.6 kept the last periodic checkpoint as last.ckpt when training ended between
    two of them; runs made before the suite's fix (core.callbacks.Checkpoint, 2026-12-03) can hold one."""
    from lit_i2i.core.safe_load import load_checkpoint

    ckpt, summary = run.folder / "checkpoints" / "last.ckpt", run.folder / "metrics.json"
    if not (ckpt.is_file() and summary.is_file()):
        return None
    try:
        final = json.loads(summary.read_text()).get("global_step")
    except ValueError:
        return None
    step = load_checkpoint(ckpt, f"reproduce: {run.key}", mmap=True).get("global_step")  # no weights read
    if isinstance(final, int) and isinstance(step, int) and step < final:
        return step, final
    return None


def resume_behind(runs: list[Run]) -> None:
    """Finished runs whose last.ckpt is behind their end are resumed from it to the end (exact resume gives
    the same final weights) and evaluated again; their old evaluation (of the earlier weights) is kept as
    ``table_eval.json.behind`` (``metrics.json.behind`` for a shared run), never deleted."""
    for r in runs:
        if not r.done or (gap := ckpt_behind(r)) is None:
            continue
        old = r.folder / (EVAL_FILE if r.in_table else "metrics.json")
        old.rename(old.with_name(old.name + ".behind"))
        print(f"reproduce: {r.key}: its last.ckpt is from step {gap[0]} but the run ended at step {gap[1]} "
              f"(Lightning kept an earlier checkpoint as last.ckpt); it resumes from there to its end and is evaluated "
              f"again (the old evaluation is kept as {old.name}.behind)", flush=True)


def check_stale(runs: list[Run]) -> None:
    """Refuse to skip or resume a run whose row changed since it ran (its table_run.json differs)."""
    stale = [r for r in runs if r.stale()]
    if stale:
        r = stale[0]
        raise UserError(f"reproduce: {r.key}: the run in {r.folder} was made with other settings than the table now "
                        f"gives ({len(stale)} such run(s); compare {r.folder / RUN_FILE}); move or delete those folders, "
                        "or pass --out DIR, so that nothing is mixed into the table")


# ------------------------------------------------------------------------------------------ the file
def load_table(path: str | Path) -> dict:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise UserError(f"reproduce: table file not found: {p}")
    try:
        spec = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise UserError(f"reproduce: {p} is not valid YAML: {e}") from None
    for k in ("paper", "table", "rows", "columns"):
        if k not in spec:
            raise UserError(f"reproduce: {p} has no '{k}' section")
    names = [r.get("name") for r in spec["rows"]]
    if len(set(names)) != len(names) or not all(names):
        raise UserError(f"reproduce: {p}: every row needs a unique name, got {names}")
    for c in spec.get("claims") or []:
        m = CLAIM.match(c)
        if not m or m.group(1) not in names or m.group(3) not in names:
            raise UserError(f"reproduce: {p}: cannot read the claim {c!r}; write 'ROW_A > ROW_B on KEY' with two row names")
    for c in spec["columns"]:
        if "mean_of" in c and not (isinstance(c["mean_of"], list) and c["mean_of"]
                                   and all(isinstance(k, str) for k in c["mean_of"])):
            raise UserError(f"reproduce: {p}: column {c.get('key')!r}: mean_of must be a list of result keys")
    if not isinstance(spec.get("proxies") or {}, dict) or not all(
            isinstance(v, dict) for v in (spec.get("proxies") or {}).values()):
        raise UserError(f"reproduce: {p}: 'proxies' must map each proxy's name to a section like 'proxy'")
    spec["_path"] = str(p)
    spec["_id"] = p.stem
    return spec


def _fmt(value, seed: int | None, out: Path, folders: dict[str, Path]) -> str:
    s = str(value)
    if seed is not None:
        s = s.replace("{seed}", str(seed))
    s = s.replace("{out}", str(out))

    def run(m):
        name = m.group(1)
        if name not in folders:
            raise UserError(f"reproduce: {{run:{name}}} names no row")
        return str(folders[name])
    return re.sub(r"\{run:([^}]+)\}", run, s)


def _as_args(overrides: dict, seed, out, folders) -> list[str]:
    args = []
    for k, v in (overrides or {}).items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif v is None:
            v = "null"
        elif isinstance(v, (list, dict)):
            v = json.dumps(v)
        args += [f"--{k}", _fmt(v, seed, out, folders)]
    return args


def proxy_section(spec: dict, proxy: bool | str) -> dict:
    """The proxy section ``proxy`` names: {} for the real table (False), ``proxy`` for True, else
    ``proxies[proxy]``."""
    if not proxy:
        return {}
    if proxy is True:
        px = spec.get("proxy")
        if not px:
            raise UserError(f"reproduce: {spec['_path']} has no proxy section")
        return px
    named = spec.get("proxies") or {}
    if proxy not in named:
        have = ", ".join(["(plain --proxy)"] * bool(spec.get("proxy")) + sorted(named)) or "none"
        raise UserError(f"reproduce --proxy: {spec['_path']} has no proxy named {proxy!r}; it has: {have}")
    return named[proxy]


def proxy_suffix(proxy: bool | str) -> str:
    """The default output folder's suffix of a proxy: '', '-proxy' or '-proxy-NAME'."""
    return "" if not proxy else "-proxy" if proxy is True else f"-proxy-{proxy}"


def plan(spec: dict, out: Path, proxy: bool | str = False, rows: list[str] | None = None,
         seeds: int | None = None) -> list[Run]:
    """The runs of a table (rows x seeds), in the order they must run (``once`` rows first);
    ``proxy``: True for the table's ``proxy``, a name for one of its ``proxies``."""
    px = proxy_section(spec, proxy)
    n_seeds = seeds or (px.get("seeds") if proxy else None) or spec.get("seeds", 1)
    seed_args = spec.get("seed_args") or ["--seed_everything", "{seed}"]
    all_rows = {r["name"]: r for r in spec["rows"]}
    if rows:
        unknown = [r for r in rows if r not in all_rows]
        if unknown:
            raise UserError(f"reproduce --rows: unknown row(s) {', '.join(unknown)}; the table has {', '.join(all_rows)}")
        wanted = set(rows)
        for r in rows:  # rows another wanted row needs come along
            for v in (all_rows[r].get("overrides") or {}).values():
                wanted |= set(re.findall(r"\{run:([^}]+)\}", str(v)))
        selected = [r for r in spec["rows"] if r["name"] in wanted]
    else:
        selected = spec["rows"]
    if proxy:  # rows without a built-in stand-in
        selected = [r for r in selected if r["name"] not in (px.get("skip") or [])]
    runs: list[Run] = []
    once = [r for r in selected if r.get("once")]
    per_seed = [r for r in selected if not r.get("once")]
    once_folders = {r["name"]: out / r["name"] for r in once}
    for group, seed_list in ((once, [None]), (per_seed, list(range(n_seeds)))):
        for seed in seed_list:
            folders = {**once_folders, **{r["name"]: out / r["name"] / f"seed{seed}" for r in per_seed}}
            for r in group:
                pr = (px.get("rows") or {}).get(r["name"], {}) if proxy else {}
                config = pr.get("config") or (px.get("config") if proxy else None) or r.get("config")
                if not config:
                    raise UserError(f"reproduce: row {r['name']} has no config")
                # a proxy row with its own config drops the row's overrides (they belong to the real config)
                base = {} if pr.get("config") else (r.get("overrides") or {})
                overrides = {**base, **((px.get("overrides") or {}) if proxy else {}), **(pr.get("overrides") or {})}
                args = _as_args(overrides, seed, out, folders)
                if seed is not None:
                    args += [_fmt(a, seed, out, folders) for a in seed_args]
                evaluate = {**(spec.get("evaluate") or {}), **((px.get("evaluate") or {}) if proxy else {}),
                            **(r.get("evaluate") or {}), **(pr.get("evaluate") or {})}
                also = evaluate.get("also") or []
                if not isinstance(also, list) or not all(isinstance(e, dict) and e.get("prefix") for e in also):
                    raise UserError(f"reproduce: row {r['name']}: evaluate.also must be a list of evaluations, each "
                                    "with a prefix for its result keys")
                needs = sorted(set(re.findall(r"\{run:([^}]+)\}", json.dumps(overrides))))
                keys = {**(r.get("keys") or {}), **(pr.get("keys") or {})}
                runs.append(Run(r["name"], seed, config, folders[r["name"]], args, evaluate,
                                in_table=r.get("table", True) and not r.get("once"), needs=needs, keys=keys))
    return runs


def check_classifier_files(runs: list[Run]) -> None:
    """Classifier files (``PATH.pt@CLASS``) the evaluations name must exist before anything trains."""
    from lit_i2i.metrics.evaluate import parse_attribute_spec

    missing = {}
    for r in runs:
        if r.done or not r.in_table:
            continue
        for opt in ("classifier", "attribute_classifier"):
            for spec in (r.evaluate.get(opt) or {}).values():
                path = parse_attribute_spec(str(spec))[0]  # the evaluator's own reading of the spec
                if path.endswith((".pt", ".pth")) and not Path(path).expanduser().is_file():
                    missing.setdefault(path, r.key)
    if missing:
        first = next(iter(missing))
        raise UserError(f"reproduce: the evaluation of {missing[first]} needs the classifier file {first}, which does not "
                        f"exist ({len(missing)} missing); make it first with lit-i2i train-classifier --celeba ROOT "
                        "--attribute EXPR --out FILE (the table's protocol names the command)")


# ------------------------------------------------------------------------------------------ running
def run_one(run: Run) -> dict:
    """Fit (or resume) one run, then evaluate it; returns its results. Safe to call in a fresh process."""
    from lit_i2i.cli import main

    if not (run.folder / "metrics.json").is_file() or not (run.folder / "checkpoints" / "last.ckpt").is_file():
        code = main(run.fit_argv())
        if code != 0:
            raise UserError(f"reproduce: {run.key}: `{run.command()}` failed (exit {code})")
    (run.folder / RUN_FILE).write_text(json.dumps(run.recipe(), indent=2) + "\n")
    if not run.in_table:
        return {}
    return evaluate_run(run)


def evaluate_run(run: Run) -> dict:
    from lit_i2i.cli import instantiate
    from lit_i2i.commands import load_run
    from lit_i2i.metrics import evaluate_model

    ckpt = run.folder / "checkpoints" / "last.ckpt"
    model, data_spec = load_run(ckpt)
    dm = instantiate(data_spec)
    dm.setup("test")
    opts = dict(run.evaluate)
    also = opts.pop("also", None) or []
    metrics = opts.pop("metrics", None)
    if not metrics:
        raise UserError(f"reproduce: row {run.row} has no evaluate.metrics")
    partial = run.folder / (EVAL_FILE + ".partial")  # the run counts as evaluated only when every evaluation is in
    results = evaluate_model(model, dm, metrics, out_json=str(partial), **opts)
    payload = json.loads(partial.read_text())
    for extra in also:  # more evaluations of the same run (another translate mode, threshold, ...), prefixed
        e = {**opts, **{k: v for k, v in extra.items() if k != "prefix"}}
        more = evaluate_model(model, dm, e.pop("metrics", metrics), **e)
        more = {f"{extra['prefix']}{k}": v for k, v in more.items()}
        results.update(more)
        payload["metrics"].update({k: (None if math.isnan(v) else v) for k, v in more.items()})
    (run.folder / EVAL_FILE).write_text(json.dumps(payload, indent=2) + "\n")
    partial.unlink()
    return results


def read_results(run: Run) -> dict[str, float]:
    p = run.folder / EVAL_FILE
    if not p.is_file():
        return {}
    return {k: v for k, v in json.loads(p.read_text()).get("metrics", {}).items() if v is not None}


def submit(runs: list[Run], out: Path, slurm: dict) -> list:
    """One SLURM job per run through submitit; a run whose needs are not done waits for a later call."""
    try:
        import submitit
    except ImportError:
        raise UserError("reproduce --launcher submitit needs submitit: pip install submitit") from None
    cluster = slurm.pop("cluster", None)
    ex = submitit.AutoExecutor(folder=str(out / "submitit"), cluster=cluster)
    params = {k: v for k, v in slurm.items() if v is not None}
    gpus = params.pop("gpus_per_node", None)
    mapped = {"timeout_min": params.pop("time", None), "nodes": params.pop("nodes", None),
              "slurm_partition": params.pop("partition", None), "slurm_account": params.pop("account", None)}
    if gpus:
        mapped.update(gpus_per_node=gpus, tasks_per_node=gpus)
    ex.update_parameters(**{k: v for k, v in mapped.items() if v is not None})
    jobs = []
    for r in runs:
        if r.done:
            continue
        waiting = [x.key for x in runs if x.row in r.needs and x.seed in (None, r.seed) and not x.done]
        if waiting:
            print(f"reproduce: {r.key} waits for {', '.join(waiting)} (call reproduce again when they finish)")
            continue
        job = ex.submit(run_one, r)
        jobs.append((r, job))
        print(f"reproduce: submitted {r.key} as job {job.job_id}")
        if cluster == "debug":  # submitit's debug executor runs the job here, when its result is asked for
            job.result()
    return jobs


# ------------------------------------------------------------------------------------------ the table
def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else float("nan"))


def _column_value(results: dict, run: Run, column: dict):
    """A run's value of a column: its result key (or the row's replacement of it), or the mean of the
    column's ``mean_of`` keys (None while any of them is missing)."""
    if "mean_of" not in column:
        return results.get(run.keys.get(column["key"], column["key"]))
    vals = [results.get(k) for k in column["mean_of"]]
    return None if any(v is None for v in vals) else sum(vals) / len(vals)


def build_table(spec: dict, runs: list[Run], proxy: bool | str) -> dict:
    rows = [r for r in spec["rows"] if r.get("table", True) and not r.get("once")]
    planned = {r.row for r in runs}
    rows = [r for r in rows if r["name"] in planned]
    cells: dict[str, dict[str, dict]] = {}
    for r in rows:
        cells[r["name"]] = {}
        for c in spec["columns"]:
            vals = [_column_value(read_results(x), x, c) for x in runs if x.row == r["name"]]
            vals = [v * c.get("scale", 1) for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v))]
            mean, std = _mean_std(vals) if vals else (None, None)
            paper = (c.get("paper") or {}).get(r["name"])
            cells[r["name"]][c["key"]] = {"mean": mean, "std": std, "n": len(vals), "paper": paper, "values": vals}
    verdicts = []
    for claim in spec.get("claims") or []:
        a, op, b, key = CLAIM.match(claim).groups()
        va, vb = (cells.get(a, {}).get(key) or {}).get("mean"), (cells.get(b, {}).get(key) or {}).get("mean")
        if va is None or vb is None:
            verdict = "not measured"
        else:
            ok = {">": va > vb, "<": va < vb, ">=": va >= vb, "<=": va <= vb}[op]
            verdict = "holds" if ok else "does not hold"
        verdicts.append({"claim": claim, "verdict": verdict, "a": va, "b": vb})
    return {"paper": spec["paper"], "table": spec["table"], "protocol": spec.get("protocol", ""),
            "proxy": proxy, "proxy_protocol": proxy_section(spec, proxy).get("protocol") if proxy else None,
            "rows": [{"name": r["name"], "label": r.get("label", r["name"])} for r in rows],
            "columns": [{k: c.get(k) for k in ("key", "label", "better")} for c in spec["columns"]],
            "cells": cells, "claims": verdicts, "layout": spec.get("layout", "rows")}


def table_markdown(t: dict) -> str:
    def num(v):  # three decimals, or three significant digits below 0.1 (random-VGG losses are ~1e-3)
        if v is None:
            return ""
        return f"{v:.1f}" if abs(v) >= 100 else f"{v:.3f}" if abs(v) >= 0.1 or v == 0 else f"{v:.3g}"

    def arrow(c):
        return {"higher": " (↑)", "lower": " (↓)"}.get(c.get("better"), "")

    def ours(cell):
        return "—" if cell["mean"] is None else (
            f"{num(cell['mean'])}" + ("" if cell["n"] < 2 else f" ± {num(cell['std'])}") + f" (n={cell['n']})")

    lines = [f"**{t['paper']}**, {t['table']}" + (" — proxy on built-in data" if t["proxy"] else "")
             + (f" ({t['proxy']})" if isinstance(t["proxy"], str) else ""), ""]
    if t.get("layout") == "metrics_as_rows":  # one line per column, one column per row (many measures, no paper values)
        lines += ["| measure | " + " | ".join(r["label"] for r in t["rows"]) + " |", "|---|" + "---|" * len(t["rows"])]
        for c in t["columns"]:
            lines.append(f"| {c.get('label') or c['key']}{arrow(c)} | "
                         + " | ".join(ours(t["cells"][r["name"]][c["key"]]) for r in t["rows"]) + " |")
    else:
        head = ["row"] + [f"{c.get('label') or c['key']}{arrow(c)} ours | paper" for c in t["columns"]]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * (1 + 2 * len(t["columns"]))]  # ours and paper
        for r in t["rows"]:
            out = [r["label"]]
            for c in t["columns"]:
                cell = t["cells"][r["name"]][c["key"]]
                out.append(f"{ours(cell)} | {num(cell['paper'])}")
            lines.append("| " + " | ".join(out) + " |")
    if t["claims"]:
        lines += ["", "Claims:"] + [f"- {c['claim']}: **{c['verdict']}**" + (
            "" if c["a"] is None or c["b"] is None else f" ({num(c['a'])} vs {num(c['b'])})") for c in t["claims"]]
    return "\n".join(lines) + "\n"


def log_table(t: dict, spec: dict, out: Path) -> None:
    """The table as a ``wandb.Table`` in the table's W&B group (offline without credentials)."""
    from lit_i2i.core.loggers import WandbLogger

    try:
        import wandb

        logger = WandbLogger(save_dir=str(out), group=spec["_id"], name=f"{spec['_id']}-table", job_type="table")
        cols = ["row"] + [f"{c['key']} ours" for c in t["columns"]] + [f"{c['key']} paper" for c in t["columns"]]
        data = [[r["name"]] + [t["cells"][r["name"]][c["key"]]["mean"] for c in t["columns"]]
                + [t["cells"][r["name"]][c["key"]]["paper"] for c in t["columns"]] for r in t["rows"]]
        logger.experiment.log({"table": wandb.Table(columns=cols, data=data)})
        logger.finalize("success")
        if getattr(logger.experiment, "finish", None):
            logger.experiment.finish()
    except Exception as e:  # noqa: BLE001 - the table files are the result; W&B is a copy
        print(f"reproduce: the W&B copy of the table was not logged ({type(e).__name__}: {e})")


# ------------------------------------------------------------------------------------------ command
def reproduce_main(argv: list[str]) -> int:
    from lit_i2i.cli import CommandParser

    ap = CommandParser(prog="lit-i2i reproduce", description="Reproduce a paper table from its table file.")
    ap.add_argument("table", nargs="?", help="a table file, e.g. experiments/tables/ost_table1.yaml")
    ap.add_argument("--proxy", nargs="?", const=True, default=False, metavar="NAME",
                    help="the table's proxy: built-in data, CPU-sized; with NAME, one of the table's named proxies")
    ap.add_argument("--rows", default=None, help="comma-separated subset of the rows")
    ap.add_argument("--seeds", type=int, default=None, help="override the number of seeds")
    ap.add_argument("--out", default=None, help="output folder (default runs/tables/<table>[-proxy[-NAME]])")
    ap.add_argument("--dry_run", action="store_true", help="print the runs and their commands, run nothing")
    ap.add_argument("--launcher", default="local", choices=["local", "submitit"])
    ap.add_argument("--no_wandb", action="store_true", help="do not log the table to W&B")
    for opt, what in (("partition", "SLURM partition"), ("account", "SLURM account"), ("time", "minutes per job"),
                      ("nodes", "nodes per job"), ("gpus_per_node", "GPUs per node (= tasks per node)"),
                      ("cluster", "submitit cluster: slurm (default), local or debug")):
        ap.add_argument(f"--slurm.{opt}", dest=f"slurm_{opt}", default=None,
                        type=int if opt in ("time", "nodes", "gpus_per_node") else str, help=what)
    a = ap.parse_args(argv)
    if a.table is None and isinstance(a.proxy, str) and a.proxy.endswith((".yaml", ".yml")):
        a.table, a.proxy = a.proxy, True  # `reproduce --proxy TABLE.yaml`: the flag before the file
    if a.table is None:
        raise UserError("reproduce: name a table file, e.g. lit-i2i reproduce experiments/tables/ost_table1_m2s.yaml")
    spec = load_table(a.table)
    out = Path(a.out or f"runs/tables/{spec['_id']}{proxy_suffix(a.proxy)}")
    rows = [r.strip() for r in a.rows.split(",") if r.strip()] if a.rows else None
    runs = plan(spec, out, a.proxy, rows, a.seeds)
    if a.dry_run:
        print(f"{spec['paper']}, {spec['table']}{f' ({proxy_suffix(a.proxy)[1:]})' if a.proxy else ''}: {len(runs)} runs into {out}")
        for r in runs:
            state = ("changed since it ran" if r.stale() else "last.ckpt behind its end: resumes"
                     if r.done and ckpt_behind(r) else "done" if r.done else ("resumes" if r.started else "to run"))
            print(f"  [{state}] {r.key}: {r.command()}")
        return 0
    check_stale(runs)
    check_classifier_files(runs)
    resume_behind(runs)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_RUN_GROUP", spec["_id"])  # every run of the table in one W&B group
    if a.launcher == "submitit":
        slurm = {k[len("slurm_"):]: v for k, v in vars(a).items() if k.startswith("slurm_")}
        cluster = slurm.get("cluster")
        for r, job in submit(runs, out, slurm):
            if cluster == "local":  # local subprocess jobs: wait for them, so that the table is complete
                job.result()
    else:
        t0 = time.perf_counter()
        for i, r in enumerate(runs):
            if r.done:
                print(f"reproduce: [{i + 1}/{len(runs)}] {r.key}: done, skipped")
                continue
            print(f"reproduce: [{i + 1}/{len(runs)}] {r.key}: {'resuming' if r.started else 'running'}: {r.command()}",
                  flush=True)
            run_one(r)
        print(f"reproduce: {len(runs)} runs in {(time.perf_counter() - t0) / 60:.1f} min")
    table = build_table(spec, runs, a.proxy)
    (out / "table.json").write_text(json.dumps(table, indent=2) + "\n")
    md = table_markdown(table)
    (out / "table.md").write_text(md)
    print("\n" + md + f"\nwrote {out / 'table.md'} and {out / 'table.json'}")
    missing = [r.key for r in runs if r.in_table and not r.done]
    if missing:
        print(f"reproduce: {len(missing)} run(s) not finished yet ({', '.join(missing[:5])}...); call again to collect")
    if not a.no_wandb:
        log_table(table, spec, out)
    return 0


if __name__ == "__main__":
    sys.exit(reproduce_main(sys.argv[1:]))
