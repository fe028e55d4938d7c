"""Street digits -> digits (the built-in SVHN -> MNIST stand-in): XGAN, its ablations, DTN, DTN with
f fine-tuned, CycleGAN and UNIT on the same data and budget.

    python experiments/xgan/benchmark.py                          # every row, 1 seed
    python experiments/xgan/benchmark.py --rows XGAN,DTN --seeds 0,1 --iters 1500
    python experiments/xgan/benchmark.py --iters 3 --max_test 40 --rows XGAN,DTN --out /tmp/b   # a smoke run

Data: ``BuiltinDigits(a="street-digits", b="digits")``: A = printed digits on photographic
backgrounds (10,000 training renders of half A), B = the white-on-black handwritten digits of half B
(719 training images); batch 32 for every method. Budget: the same number of training iterations
(``--iters`` batches; a batch is one G step plus at most one D step for every method here) and the
same batches (``seed_everything(seed)`` before each run); the CPU seconds each run took are reported
(one torch thread; each run must stay under 15 CPU minutes).

Accuracy: every image of the A test split (2,000 street digits, or ``--max_test``) is translated
A -> B in eval mode and read by the shipped ``digits`` classifier; the share equal to the source
label. The ``identity`` row classifies the untranslated street digits with that classifier.

Rows (``--rows``):
  - ``XGAN``: ``experiments/xgan/street2digits.yaml`` (rec + dann + sem + GAN on B, thresholded D);
  - ``XGAN-noSem`` (sem_w 0), ``XGAN-noDANN`` (dann_w 0), ``XGAN-noGAN`` (gan_w 0), ``XGAN-noSem-noDANN``
    (only reconstruction and the GAN);
  - ``DTN``: ``experiments/dtn/street2digits.yaml`` (f = the shipped street-digits classifier's
    64-d features, frozen; alpha = beta = 15); ``DTN-ft``: the same with ``finetune_f: true``;
  - ``CycleGAN`` and ``UNIT``: the suite's methods at small widths (their kwargs below).

The curve: every ``--curve_every`` batches the accuracy on the first ``--curve_test`` (500) test
digits, in ``results.json`` (its CPU time is not counted in the run's).

For XGAN rows also ``nn_acc``: the share of A test digits whose nearest neighbour among the B test
digits (180 handwritten digits) in the joint embedding (``XGAN.neighbours``: e1 of the query, e2 of
the bank, cosine) has the same label: whether the embedding aligns digit identity across domains.

Writes ``<out>/results.json``, ``<out>/results.md`` and ``<out>/grids/<row>_seed<k>.png`` (the
first 16 test digits and their translations). The numbers are a CPU benchmark of this setting, not
a reproduction of the slides' SVHN -> MNIST figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("WANDB_MODE", "disabled")

import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from lit_i2i.core.callbacks import StopAfter  # noqa: E402

XGAN_CONFIG = "experiments/xgan/street2digits.yaml"
DTN_CONFIG = "experiments/dtn/street2digits.yaml"
CYCLEGAN = ("lit_i2i.methods.cyclegan.CycleGAN",
            dict(netG="resnet", ngf=16, n_blocks=3, n_down=2, netD="n_layers", ndf=16, n_layers_D=2, gan_mode="lsgan",
                 lambda_A=10.0, lambda_B=10.0, lambda_identity=0.0, pool_size=50, lr=2e-4, lr_policy="constant"))
UNIT = ("lit_i2i.methods.unit.UNIT",
        dict(variant="nips", arch="unit", ngf=16, n_down=2, n_res_unshared=1, n_res_shared=1, netD="single", ndf=16,
             n_layers_D=3))
#: row -> (config file or (class path, kwargs), model overrides)
ROWS = {
    "XGAN": (XGAN_CONFIG, {}),
    "XGAN-noSem": (XGAN_CONFIG, {"sem_w": 0.0}),
    "XGAN-noDANN": (XGAN_CONFIG, {"dann_w": 0.0}),
    "XGAN-noGAN": (XGAN_CONFIG, {"gan_w": 0.0}),
    "XGAN-noSem-noDANN": (XGAN_CONFIG, {"sem_w": 0.0, "dann_w": 0.0}),
    "DTN": (DTN_CONFIG, {}),
    "DTN-ft": (DTN_CONFIG, {"finetune_f": True}),
    "CycleGAN": (CYCLEGAN, {}),
    "UNIT": (UNIT, {}),
}
DEFAULT_ROWS = ("XGAN", "XGAN-noSem", "XGAN-noDANN", "XGAN-noGAN", "DTN", "DTN-ft", "CycleGAN", "UNIT")
BATCH = 32


def import_class(path: str):
    import importlib

    mod, _, name = path.rpartition(".")
    return getattr(importlib.import_module(mod), name)


def build_model(row: str, extra: dict | None = None):
    spec, overrides = ROWS[row]
    if isinstance(spec, str):
        cfg = yaml.safe_load((ROOT / spec).read_text())["model"]
        cls, kwargs = cfg["class_path"], dict(cfg.get("init_args") or {})
    else:
        cls, kwargs = spec[0], dict(spec[1])
    return import_class(cls)(**{**kwargs, **overrides, **(extra or {})})


def data(batch_size: int = BATCH, train_limit: int | None = None):
    from datamodules.builtin import BuiltinDigits

    return BuiltinDigits(a="street-digits", b="digits", batch_size=batch_size, train_limit=train_limit)


class Curve(pl.Callback):
    """Every ``every`` batches, the accuracy on the first ``n`` test digits (eval mode, no randomness
    consumed: translation is deterministic for every method here); its CPU time is kept apart."""

    def __init__(self, every: int, classifier, x: torch.Tensor, y: torch.Tensor):
        self.every, self.clf, self.x, self.y = every, classifier, x, y
        self.seen, self.points, self.cpu = 0, [], 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seen += 1
        if self.every and self.seen % self.every == 0:
            t = time.process_time()
            acc, _ = accuracy(self.clf, pl_module, self.x, self.y)
            pl_module.train()
            self.points.append((self.seen, round(acc, 4)))
            self.cpu += time.process_time() - t


def fit(model, dm, iters: int, root: Path, seed: int, curve: Curve | None = None) -> float:
    """Train ``iters`` batches; returns the CPU seconds of this process spent in fit (less the curve's)."""
    pl.seed_everything(seed, verbose=False)
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=-1, max_epochs=-1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, limit_val_batches=0, default_root_dir=str(root),
                         callbacks=[StopAfter(iters)] + ([curve] if curve is not None else []))
    t = time.process_time()
    trainer.fit(model, dm)
    return time.process_time() - t - (curve.cpu if curve is not None else 0.0)


def test_set(max_test: int | None):
    from datamodules.builtin import domain_source

    src = domain_source("street-digits", "A", "test", 0)
    n = len(src) if max_test is None else min(max_test, len(src))
    return src.images[:n].float() / 127.5 - 1, src.labels[:n]


@torch.no_grad()
def accuracy(classifier, model, x: torch.Tensor, y: torch.Tensor, batch: int = 250) -> tuple[float, torch.Tensor]:
    """(share of translations read as the source label, the translations of the first 16)."""
    if model is not None:
        model.eval()
    correct, first = 0, None
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        yb = model.translate(xb, "AtoB") if model is not None else xb
        correct += int((classifier(yb).argmax(1) == y[i:i + batch]).sum())
        first = yb[:16] if first is None else first
    return correct / len(x), first


def bank():
    """The B (handwritten digits) test split: the bank of the nearest-neighbour retrieval."""
    from datamodules.builtin import domain_source

    src = domain_source("digits", "B", "test", 0)
    return src.images.float() / 127.5 - 1, src.labels


@torch.no_grad()
def retrieval(model, x: torch.Tensor, y: torch.Tensor) -> float | None:
    """XGAN only: the share of A test digits whose nearest B test digit in the joint embedding
    (``model.neighbours``, cosine) has the same label; None for methods without an embedding search."""
    if not hasattr(model, "neighbours"):
        return None
    bx, by = bank()
    _, idx = model.neighbours(x, bx, k=1)
    return float((by[idx[:, 0]] == y).float().mean())


def save_grid(path: Path, rows: list[torch.Tensor]) -> None:
    from torchvision.utils import save_image

    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(torch.cat(rows) * 0.5 + 0.5, path, nrow=len(rows[0]), padding=1)


def summary(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def run(args) -> dict:
    from lit_i2i.metrics.classifier import load_digit_classifier

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clf = load_digit_classifier("digits")
    x, y = test_set(args.max_test)
    results = {"setting": {"iters": args.iters, "batch": BATCH, "seeds": args.seeds, "test_images": len(x),
                           "threads": args.threads}, "rows": {}}
    acc, first = accuracy(clf, None, x, y)
    results["rows"]["identity"] = {"acc": [acc], "cpu_s": [0.0]}
    print(f"identity: acc {acc:.3f}", flush=True)
    for row in args.rows:
        accs, cpus, nns = [], [], []
        for seed in args.seeds:
            pl.seed_everything(seed, verbose=False)
            model = build_model(row)
            curve = Curve(args.curve_every, clf, x[:args.curve_test], y[:args.curve_test])
            cpu = fit(model, data(train_limit=args.train_limit), args.iters, out / "runs" / row, seed, curve)
            acc, fakes = accuracy(clf, model, x, y)
            nn_acc = retrieval(model, x, y)
            accs.append(acc)
            cpus.append(cpu)
            save_grid(out / "grids" / f"{row}_seed{seed}.png", [x[:16], fakes])
            print(f"{row} seed {seed}: acc {acc:.3f}" + (f", nn_acc {nn_acc:.3f}" if nn_acc is not None else "")
                  + f"  ({cpu:.0f} CPU s)", flush=True)
            results["rows"][row] = {"acc": accs, "cpu_s": cpus,
                                    "curve": {**results["rows"].get(row, {}).get("curve", {}), str(seed): curve.points}}
            if nn_acc is not None:
                nns.append(nn_acc)
                results["rows"][row]["nn_acc"] = nns
            (out / "results.json").write_text(json.dumps(results, indent=2))
    lines = [f"street digits -> digits, {args.iters} iterations x batch {BATCH}, {len(x)} test digits, "
             f"seeds {args.seeds}", "",
             "| row | acc_AtoB | per seed | nn_acc (embedding retrieval) | CPU s per run |", "|---|---|---|---|---|"]
    for row, r in results["rows"].items():
        nn = summary(r["nn_acc"]) if r.get("nn_acc") else ""
        lines.append(f"| {row} | {summary(r['acc'])} | {', '.join(f'{a:.3f}' for a in r['acc'])} | {nn} | "
                     f"{', '.join(f'{c:.0f}' for c in r['cpu_s'])} |")
    curves = {row: r["curve"] for row, r in results["rows"].items() if any(r.get("curve", {}).values())}
    if curves:
        its = sorted({i for c in curves.values() for pts in c.values() for i, _ in pts})
        lines += ["", f"accuracy during training (first {args.curve_test} test digits; mean over seeds), by iteration:",
                  "", "| row | " + " | ".join(map(str, its)) + " |", "|---|" + "---|" * len(its)]
        for row, c in curves.items():
            cells = []
            for i in its:
                vals = [a for pts in c.values() for j, a in pts if j == i]
                cells.append(f"{statistics.mean(vals):.3f}" if vals else "")
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print("\n".join(lines))
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default=",".join(DEFAULT_ROWS), help=f"comma-separated, of {', '.join(ROWS)}")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds")
    ap.add_argument("--iters", type=int, default=1500, help="training batches per run")
    ap.add_argument("--max_test", type=int, default=None, help="test digits (default: all 2,000)")
    ap.add_argument("--train_limit", type=int, default=None, help="training images per domain (smoke runs)")
    ap.add_argument("--curve_every", type=int, default=150, help="accuracy every N batches (0: off)")
    ap.add_argument("--curve_test", type=int, default=500, help="test digits of the curve")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/xgan_benchmark")
    args = ap.parse_args(argv)
    from lit_i2i.cli import quiet_console

    quiet_console()  # no litlogger tip or LeafSpec warning from the plain Trainers below
    args.rows = [r for r in args.rows.split(",") if r]
    unknown = [r for r in args.rows if r not in ROWS]
    if unknown:
        ap.error(f"unknown rows {unknown}; choose from {', '.join(ROWS)}")
    args.seeds = [int(s) for s in args.seeds.split(",") if s]
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
