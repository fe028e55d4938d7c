"""TUNIT on the built-in colored digits as 10 unlabelled "species": clustering, reference-guided
translation, and the paper's claims in direction (joint vs separate training, Figure 4; the guiding
network's feedback from each translation loss, Figure 5; 10% labels vs none, Figures 10 and 12).

One command trains ``experiments/tunit/digits.yaml`` once per row through ``lit-i2i fit`` (one after
the other, never in parallel), evaluates every run on the test split and prints a markdown table
(also ``<out>/benchmark.md`` and ``<out>/benchmark.json``), and saves each run's grids::

    python experiments/tunit/benchmark.py                       # every row at the reported setting
    python experiments/tunit/benchmark.py --rows full,separate  # some rows
    python experiments/tunit/benchmark.py --iters 40 --separated 20 --out /tmp/tb   # a smoke test

Rows (the same data, seed, networks and length; only the named option differs):
  - ``full``: TUNIT as the official code trains it (E alone for ``--separated`` iterations, then E, D
    and G jointly, E's own loss x 0.1 and the translation losses' gradient into E);
  - ``separate``: the guiding network trained alone, then frozen while the GANs train (``joint: false``);
  - ``no_adv_feedback`` / ``no_style_feedback`` / ``no_rec_feedback``: the GANs train as in ``full`` but
    that translation loss sends no gradient to E (``feedback``);
  - ``semi10``: 10% of the labels (``label_fraction 0.1``), the official semi-supervised loop with its
    cycle scaled so that the GANs start at the same iteration (cycle = separated / 17).

Measures (test split: 360 digits, 36 per class; chance 0.1 where it applies):
  - clustering of E_class against the digit: Hungarian accuracy, NMI, ARI;
  - reference-guided translation, each test source with 3 references of other digits (fixed draws):
    ``ref_digit``: the share of outputs the shipped colored-digit classifier reads as the reference's
    digit; ``src_digit``: ... as the source's digit (the copy failure); colour keeping: the error of
    the output's background and foreground colours against the source's (mean absolute RGB difference
    in [0, 1]; background = median of the 2-pixel border, foreground = mean of the 15% of pixels
    farthest from it, measured the same way on every image);
  - ``mfid_digits``: class-wise FID grouped by the reference's class, on the classifier's 64-d
    features (reals: every image of the class; the suite's digit extractor, not Inception);
  - two calibration columns: "copy source" (output = source) and "copy reference" (output = reference).

Runs with one torch thread (``--threads``): on the shared 2-core machine, more threads were slower.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from experiments.benchkit import measures_table, reuse_or_clear  # noqa: E402
from lit_i2i.metrics.scores import image_colours as colours  # noqa: E402,F401 - also imported from here

CONFIG = "experiments/tunit/digits.yaml"
ROWS = {
    "full": ("TUNIT (joint)", []),
    "separate": ("separate training", ["--model.init_args.joint", "false"]),
    "no_adv_feedback": ("no adv. feedback to E", ["--model.init_args.feedback", "[style, rec]"]),
    "no_style_feedback": ("no style feedback to E", ["--model.init_args.feedback", "[adv, rec]"]),
    "no_rec_feedback": ("no rec. feedback to E", ["--model.init_args.feedback", "[adv, style]"]),
    "semi10": ("10% labels (semi)", None),  # built from --separated in row_args
}
N_REFS = 3


# ---------------------------------------------------------------------------------------- data
def test_set(seed: int = 0):
    from datamodules.builtin_multidomain import BuiltinMultiDomain

    dm = BuiltinMultiDomain()
    ds = dm.dataset("test")
    x = torch.stack([ds[i]["image"] for i in range(len(ds))])
    y = torch.tensor([ds[i]["label"] for i in range(len(ds))])
    tr = dm.eval_source  # reals of every class for mFID: train + test images of the class
    reals = {k: torch.cat([torch.stack([dm.eval_dataset(str(k), s)[i]["image"] for i in range(len(tr(str(k), s)))])
                           for s in ("train", "test")]) for k in range(10)}
    g = torch.Generator().manual_seed(seed)
    refs = []
    for _ in range(N_REFS):  # a reference of another digit for every source
        r = torch.randint(len(x), (len(x),), generator=g)
        while (bad := y[r] == y).any():
            r[bad] = torch.randint(len(x), (int(bad.sum()),), generator=g)
        refs.append(r)
    return {"x": x, "y": y, "refs": torch.stack(refs), "reals": reals}


# ---------------------------------------------------------------------------------------- measures
class Judge:
    def __init__(self):
        from lit_i2i.metrics.classifier import load_digit_classifier

        self.net = load_digit_classifier("colored-digits").eval()

    @torch.no_grad()
    def logits_features(self, x: torch.Tensor, bs: int = 256):
        f = torch.cat([self.net.features(x[i:i + bs]) for i in range(0, len(x), bs)])
        return self.net.head(f), f


@torch.no_grad()
def translations(model, d) -> tuple[torch.Tensor, torch.Tensor]:
    """(outputs (R*N, ...), the reference index of each) for every source and each of its references."""
    outs = []
    for r in d["refs"]:
        outs.append(torch.cat([model.translate(d["x"][i:i + 64], reference=d["x"][r[i:i + 64]])
                               for i in range(0, len(d["x"]), 64)]))
    return torch.cat(outs), d["refs"].reshape(-1)


def measure(out: torch.Tensor, ref_idx: torch.Tensor, d, judge: Judge) -> dict[str, float]:
    from lit_i2i.metrics import scores

    src = d["x"].repeat(len(out) // len(d["x"]), 1, 1, 1)
    src_y, ref_y = d["y"].repeat(len(out) // len(d["x"])), d["y"][ref_idx]
    logits, feats = judge.logits_features(out.clamp(-1, 1))
    pred = logits.argmax(1)
    bg_o, fg_o = colours(out)
    bg_s, fg_s = colours(src)
    real_f = {k: judge.logits_features(v)[1] for k, v in d["reals"].items()}
    rf = torch.cat(list(real_f.values()))
    rl = torch.cat([torch.full((len(v),), k) for k, v in real_f.items()])
    return {"ref_digit": float((pred == ref_y).float().mean()), "src_digit": float((pred == src_y).float().mean()),
            "bg_error": float((bg_o - bg_s).abs().mean()), "fg_error": float((fg_o - fg_s).abs().mean()),
            "mfid_digits": scores.class_wise_fid(rf, rl, feats, ref_y)[0]}


def clustering(model, d) -> dict[str, float]:
    from lit_i2i.metrics import scores

    with torch.no_grad():
        pred = torch.cat([model.cluster(d["x"][i:i + 256]) for i in range(0, len(d["x"]), 256)])
    return {"cluster_acc": scores.cluster_accuracy(pred, d["y"]), "nmi": scores.nmi(pred, d["y"]),
            "ari": scores.ari(pred, d["y"]), "clusters_used": float(len(pred.unique()))}


def baselines(d, judge: Judge) -> dict[str, dict[str, float]]:
    r = d["refs"].reshape(-1)
    src = d["x"].repeat(N_REFS, 1, 1, 1)
    return {"copy source": measure(src, r, d, judge), "copy reference": measure(d["x"][r], r, d, judge)}


# ---------------------------------------------------------------------------------------- training
def row_args(key: str, iters: int, separated: int, ema_start: int) -> list[str]:
    common = ["--model.init_args.max_iterations", str(iters), "--model.init_args.separated", str(separated),
              "--model.init_args.ema_start", str(ema_start)]
    if key != "semi10":
        return common + ROWS[key][1]
    cycle = max(1, round(separated / 17))  # official: separated = 20 x max(c/10, c p) + 15 c = 17 c at p = 0.1
    return ["--model.init_args.max_iterations", str(iters), "--model.init_args.mode", "semi",
            "--model.init_args.semi_cycle", str(cycle), "--model.init_args.ema_start", str(ema_start),
            "--data.init_args.labelled", "true", "--data.init_args.label_fraction", "0.1"]


def train(key: str, out: Path, iters: int, separated: int, ema_start: int, retrain: bool, extra: list[str]):
    from lit_i2i.cli import main

    run = out / key
    ckpt = reuse_or_clear(run, key, retrain)
    if ckpt is not None:
        return ckpt, None
    ckpt = run / "checkpoints" / "last.ckpt"
    args = ["fit", "--config", str(ROOT / CONFIG), "--trainer.default_root_dir", str(run), "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false", "--metrics.metrics", "[]", "--trainer.max_steps", "-1",
            "--checkpoint.every_n_epochs", "0", "--checkpoint.every_n_train_steps", "0",
            "--grids.every_n_steps", str(max(1, iters // 4)), *row_args(key, iters, separated, ema_start), *extra]
    print(f"[{key}] lit-i2i {' '.join(args)}", flush=True)
    c0, t0 = time.process_time(), time.perf_counter()
    if main(args) != 0:
        raise SystemExit(f"[{key}] training failed")
    return ckpt, {"train_cpu_min": (time.process_time() - c0) / 60, "train_wall_min": (time.perf_counter() - t0) / 60}


# ---------------------------------------------------------------------------------------- table
MEASURES = [("cluster_acc", "E clustering accuracy (Hungarian)", "higher"), ("nmi", "E clustering NMI", "higher"),
            ("ari", "E clustering ARI", "higher"), ("clusters_used", "clusters used (of 10)", ""),
            ("ref_digit", "output read as the reference's digit", "higher"),
            ("src_digit", "output read as the source's digit", "lower"),
            ("bg_error", "background colour error vs source", "lower"),
            ("fg_error", "foreground colour error vs source", "lower"),
            ("mfid_digits", "mFID (digit features, by reference class)", "lower"),
            ("train_cpu_min", "training CPU minutes", ""), ("iterations", "iterations", "")]


def _fmt(m: str, v: float) -> str:
    return f"{v:.0f}" if m in ("iterations", "clusters_used") else f"{v:.1f}" if m in ("mfid_digits", "train_cpu_min") \
        else f"{v:.3f}"


def table(results: dict, base: dict, keys: list[str]) -> str:
    cols = [(ROWS[k][0], results[k]) for k in keys] + list(base.items())
    return measures_table(MEASURES, cols, first="measure", fmt=_fmt)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/tunit_benchmark")
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--iters", type=int, default=None, help="iterations per run (default: the config's max_iterations)")
    ap.add_argument("--separated", type=int, default=None, help="E-only warm-up iterations (default: the config's)")
    ap.add_argument("--ema_start", type=int, default=None, help="G_EMA start (default: the config's)")
    ap.add_argument("--retrain", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("extra", nargs="*", help="more lit-i2i overrides for every run (after --)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    import yaml

    cfg = yaml.safe_load((ROOT / CONFIG).read_text())["model"]["init_args"]
    iters = a.iters or cfg["max_iterations"]
    separated = a.separated if a.separated is not None else cfg["separated"]
    ema_start = a.ema_start if a.ema_start is not None else min(cfg["ema_start"], iters - 1)
    keys = [k for k in a.rows.split(",") if k]
    for k in keys:
        if k not in ROWS:
            raise SystemExit(f"--rows: unknown {k!r}; choose from {', '.join(ROWS)}")
    out = Path(a.out)
    t0 = time.perf_counter()
    d, judge = test_set(), Judge()
    from lit_i2i.commands import load_run

    results = {}
    for k in keys:
        ckpt, timing = train(k, out, iters, separated, ema_start, a.retrain, a.extra)
        model, _ = load_run(ckpt)
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        if timing is not None and state["iteration"] != iters:
            raise SystemExit(f"[{k}] {ckpt} holds iteration {state['iteration']}, not the {iters} trained")
        o, r = translations(model, d)
        results[k] = {**clustering(model, d), **measure(o, r, d, judge), "iterations": float(state["iteration"]),
                      **(timing or {})}
        grid = sorted((out / k / "grids").glob("final_*.png"))
        if grid:
            shutil.copy(grid[-1], out / f"grid_{k}.png")
        print(f"[{k}] " + ", ".join(f"{m}={v:.3f}" for m, v in results[k].items()), flush=True)
    base = baselines(d, judge)
    md = table(results, base, keys)
    header = (f"Colored digits as 10 species, test split ({len(d['x'])} images, {N_REFS} references of other digits "
              f"each); {iters} iterations, E alone for the first {separated}, G_EMA from {ema_start}; total wall "
              f"{(time.perf_counter() - t0) / 60:.1f} min.\n\n")
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmark.md").write_text(header + md + "\n")
    (out / "benchmark.json").write_text(json.dumps({"rows": results, "baselines": base, "iterations": iters,
                                                    "separated": separated, "ema_start": ema_start}, indent=2))
    print("\n" + header + md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
