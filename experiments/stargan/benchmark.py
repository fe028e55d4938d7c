"""Attribute editing on the built-in accessory digits: StarGAN, AttGAN and STGAN side by side.

One command trains the three ``digits_accessory.yaml`` configs (``experiments/{stargan,attgan,stgan}/``)
through ``lit-i2i fit``, one after the other, evaluates them on the test split and prints a markdown
table (also ``<out>/benchmark.md`` and ``<out>/benchmark.json``) and the attribute grids
(``<out>/<method>/test_grid.png``)::

    python experiments/stargan/benchmark.py                        # train (or reuse) and evaluate
    python experiments/stargan/benchmark.py --retrain              # train again from scratch
    python experiments/stargan/benchmark.py --methods attgan --max_steps 600 --max_samples 64   # a quick look

The data are a one-attribute data set: "has the bar" (A = ``no-accessory``, half A of the digits; B =
``accessory``, half B), so every method's ``AtoB`` adds the bar (edit ``accessory=1``) and ``BtoA``
removes it (``accessory=0``). The renderer knows where the bar is and what each B image looks like
without it, so the measures are exact:

- adding (A -> B): the share of outputs the shipped accessory classifier calls "has accessory"
  (``attr_success``), the share whose digit the colored-digit classifier still reads (``acc``), the L1
  change outside the bar (pixels in [0, 1]);
- removing (B -> A): the share the accessory classifier calls "no accessory", the digit kept, the L1
  distance to the same digit rendered without the bar (the exact answer), the L1 change outside the bar;
- AttGAN / STGAN: the L1 of the reconstruction G(x, own attribute);
- the training's CPU time (this process's user + system time: on a shared machine the wall time mostly
  measures the other processes) and wall time, the optimizer steps.

An "input (no change)" column calibrates the numbers. Runs with one torch thread (``--threads``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from datamodules.builtin import accessory_box, indices, render  # noqa: E402
from experiments.benchkit import measures_table, reuse_or_clear  # noqa: E402

METHODS = {"stargan": ("StarGAN", "experiments/stargan/digits_accessory.yaml"),
           "attgan": ("AttGAN", "experiments/attgan/digits_accessory.yaml"),
           "stgan": ("STGAN", "experiments/stgan/digits_accessory.yaml")}


def to_float(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 127.5 - 1


def test_data(max_samples: int | None = None) -> dict[str, torch.Tensor]:
    ia, ib = indices("A", "test")[:max_samples], indices("B", "test")[:max_samples]
    a, la, _ = render("no-accessory", ia)
    b, lb, mask = render("accessory", ib)
    b_clean, _, _ = render("no-accessory", ib)  # the same digits without the bar: removal's exact answer
    box = accessory_box(1)
    return {"A": to_float(a), "A_label": la, "B": to_float(b), "B_label": lb, "B_clean": to_float(b_clean),
            "box": box}


def l1(x: torch.Tensor, y: torch.Tensor, where: torch.Tensor | None = None) -> float:
    """Mean |x - y| in [0, 1] pixel units, over ``where`` (a mask broadcast over channels) or everywhere."""
    d = (x - y).abs() / 2
    if where is None:
        return float(d.mean())
    w = where.expand_as(d)
    return float((d * w).sum() / w.sum())


class Judges:
    def __init__(self):
        from lit_i2i.metrics.classifier import load_digit_classifier

        self.acc_net = load_digit_classifier("accessory")
        self.digit_net = load_digit_classifier("colored-digits")

    @torch.no_grad()
    def has_accessory(self, x):
        return self.acc_net(x).softmax(1)[:, 1]

    @torch.no_grad()
    def digit(self, x):
        return self.digit_net(x).argmax(1)


def batched(fn, x: torch.Tensor, bs: int = 64) -> torch.Tensor:
    return torch.cat([fn(x[i:i + bs]) for i in range(0, len(x), bs)])


def measure(add: torch.Tensor, remove: torch.Tensor, d: dict, judges: Judges) -> dict[str, float]:
    outside = 1 - d["box"]
    p_add, p_rm = judges.has_accessory(add), judges.has_accessory(remove)
    return {
        "add_success": float((p_add > 0.5).float().mean()),
        "add_p_accessory": float(p_add.mean()),
        "add_digit_kept": float((judges.digit(add) == d["A_label"]).float().mean()),
        "add_l1_outside": l1(add, d["A"], outside),
        "remove_success": float((p_rm <= 0.5).float().mean()),
        "remove_p_accessory": float(p_rm.mean()),
        "remove_digit_kept": float((judges.digit(remove) == d["B_label"]).float().mean()),
        "remove_l1_to_truth": l1(remove, d["B_clean"]),
        "remove_l1_outside": l1(remove, d["B"], outside),
    }


@torch.no_grad()
def evaluate(model, d: dict, judges: Judges) -> dict[str, float]:
    model.eval()
    add = batched(lambda x: model.translate(x, "AtoB"), d["A"]).clamp(-1, 1)
    remove = batched(lambda x: model.translate(x, "BtoA"), d["B"]).clamp(-1, 1)
    out = measure(add, remove, d, judges)
    if getattr(model, "grid_reconstruction", False):
        def rec(x, value):  # G(x, the image's own attribute), nothing edited
            a = torch.full((len(x), 1), value)
            keep = torch.zeros_like(a, dtype=torch.bool)
            return model.generate(x, a, a, keep, (keep, torch.zeros_like(a)))

        rec_a, rec_b = batched(lambda x: rec(x, 0.0), d["A"]), batched(lambda x: rec(x, 1.0), d["B"])
        out["reconstruction_l1"] = (l1(rec_a, d["A"]) + l1(rec_b, d["B"])) / 2
    return out


def save_grid(model, d: dict, path: Path, n: int = 6) -> Path:
    from lit_i2i.core.visuals import save_grid as write
    from lit_i2i.core.visuals import visual_grid

    model.eval()
    vis = model.visuals({"A": d["A"][:n], "B": d["B"][:n]})
    return write(visual_grid(vis, max_rows=2 * n, labels=True), path)


def train(key: str, out: Path, max_steps: int | None, max_samples: int | None, retrain: bool):
    """(last.ckpt, CPU seconds, wall seconds); the times are None when an earlier run is reused."""
    from lit_i2i.cli import main

    run = out / key
    ckpt = reuse_or_clear(run, key, retrain)
    if ckpt is not None:
        return ckpt, None, None
    ckpt = run / "checkpoints" / "last.ckpt"
    args = ["fit", "--config", str(ROOT / METHODS[key][1]), "--trainer.default_root_dir", str(run),
            "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
            # no periodic checkpoints: last.ckpt is written at the end (Lightning refreshes it only with a save)
            "--checkpoint.every_n_epochs", "0", "--checkpoint.every_n_train_steps", "0"]
    if max_steps is not None:
        args += ["--trainer.max_steps", str(max_steps)]
    if max_samples is not None:
        args += ["--metrics.max_samples", str(max_samples)]
    print(f"[{key}] lit-i2i {' '.join(args)}", flush=True)
    c0, t0 = time.process_time(), time.perf_counter()
    if main(args) != 0:
        raise SystemExit(f"[{key}] training failed")
    return ckpt, time.process_time() - c0, time.perf_counter() - t0


ROWS = [  # key, label, better
    ("add_success", "add the bar (AtoB): share the accessory classifier calls 'has it'", "higher"),
    ("add_digit_kept", "add: digit label kept", "higher"),
    ("add_l1_outside", "add: L1 change outside the bar", "lower"),
    ("remove_success", "remove the bar (BtoA): share called 'no accessory'", "higher"),
    ("remove_p_accessory", "remove: mean P(has accessory)", "lower"),
    ("remove_digit_kept", "remove: digit label kept", "higher"),
    ("remove_l1_to_truth", "remove: L1 to the bar-free rendering", "lower"),
    ("remove_l1_outside", "remove: L1 change outside the bar", "lower"),
    ("reconstruction_l1", "reconstruction G(x, own attribute): L1", "lower"),
    ("fid_digits_AtoB", "add: FID (digit features) vs real B (the fit's metrics)", "lower"),
    ("fid_digits_BtoA", "remove: FID (digit features) vs real A (the fit's metrics)", "lower"),
    ("train_cpu_minutes", "training CPU time (min, this process)", ""),
    ("train_wall_minutes", "training wall time (min)", ""),
    ("steps", "optimizer steps", ""),
]


def table(results: dict[str, dict], base: dict[str, float], keys: list[str]) -> str:
    return measures_table(ROWS, [(METHODS[k][0], results[k]) for k in keys] + [("input (no change)", base)],
                          skip_empty=len(keys) + 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/attribute_editing", help="run folders and the table")
    ap.add_argument("--methods", default="stargan,attgan,stgan")
    ap.add_argument("--max_steps", type=int, default=None, help="override the configs' trainer.max_steps")
    ap.add_argument("--max_samples", type=int, default=None, help="evaluate on the first N test images per domain")
    ap.add_argument("--retrain", action="store_true", help="train again even where a last.ckpt exists")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    os.environ.setdefault("WANDB_MODE", "disabled")
    out = Path(a.out)
    keys = [k for k in a.methods.split(",") if k]
    for k in keys:
        if k not in METHODS:
            raise SystemExit(f"--methods: unknown {k!r}; choose from {', '.join(METHODS)}")
    from lit_i2i.commands import load_run

    t0 = time.perf_counter()
    judges, d = Judges(), test_data(a.max_samples)
    results = {}
    for k in keys:
        ckpt, cpu, wall = train(k, out, a.max_steps, a.max_samples, a.retrain)
        model, _ = load_run(ckpt)
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        results[k] = {**evaluate(model, d, judges), "steps": float(state["global_step"])}
        summary, times = out / k / "metrics.json", out / k / "train_time.json"
        if summary.is_file():
            fit = json.loads(summary.read_text())
            results[k].update({m: fit[m] for m in ("fid_digits_AtoB", "fid_digits_BtoA") if fit.get(m) is not None})
        if cpu is not None:
            times.write_text(json.dumps({"train_cpu_minutes": cpu / 60, "train_wall_minutes": wall / 60}))
        if times.is_file():
            results[k].update(json.loads(times.read_text()))
        grid = save_grid(model, d, out / k / "test_grid.png")
        print(f"[{k}] grid {grid}; " + ", ".join(f"{m}={v:.3f}" for m, v in results[k].items()), flush=True)
    base = measure(d["A"], d["B"], d, judges)
    md = table(results, base, keys)
    header = (f"Accessory digits, test split ({len(d['A'])} A and {len(d['B'])} B images); total wall time "
              f"{(time.perf_counter() - t0) / 60:.1f} min.\n\n")
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmark.md").write_text(header + md + "\n")
    (out / "benchmark.json").write_text(json.dumps({"methods": results, "input": base}, indent=2))
    print("\n" + header + md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
