"""Content transfer on the built-in "accessory" digits: Press et al., DIDD, MBU and Fader networks side by side.

The same four trainings and measures are a table file now, ``lit-i2i reproduce
experiments/tables/content_transfer_accessory.yaml`` (its measures are evaluator metrics: ``l1_truth``,
``l1_outside``, ``colour_error``, ``mask_iou``, ...); this script adds the "input" and "ground truth"
calibration columns and the training times, and draws transfer references at random.

One command trains the four ``digits_accessory.yaml`` configs through ``lit-i2i fit`` (one after the
other, never in parallel), evaluates them on the test split and prints a markdown table
(also written to ``<out>/benchmark.md`` and ``<out>/benchmark.json``)::

    python experiments/content_transfer/benchmark.py                 # train (or reuse) and evaluate
    python experiments/content_transfer/benchmark.py --retrain       # train again from scratch
    python experiments/content_transfer/benchmark.py --max_steps 400 # a quick look (fewer steps)

Domain A = ``no-accessory`` (half A of the digits), B = ``accessory`` (half B): the same coloured
digits with and without a bar across the top rows. The renderer knows exactly where the bar is and
what the image looks like without it, so the papers' protocols become exact measurements:

- removal (B -> A, Press Table 4 / MBU Table 6): the mean probability of "has accessory" given by an
  accessory classifier (lower is better); the L1 distance to the same digit rendered without the
  bar (the exact ground truth); the L1 change outside the bar (MBU's "similarity"); the share of
  outputs whose digit label a colored-digit classifier still reads correctly.
- transfer (A + reference b -> B, DIDD Table 1): the share of outputs the accessory classifier
  calls "has accessory"; the error of the bar's colour against the reference's bar; the L1 distance
  to the source digit with the reference's bar painted in; the change outside the bar; digit kept.
- MBU's mask (its segmentation protocol): IoU of the thresholded mask with the true bar mask at the
  removal threshold 0.1, at 0.5, and at the best threshold (the README's protocol: chosen on the
  test set itself, so optimistic); the share of pixels of bar-free A images that the mask marks.
- FID / KID (x100) of removal outputs against real A test images and of transfer outputs against
  real B test images, on the 64-d features of the colored-digit classifier (the suite's
  ``fid_digits`` / ``kid_digits`` extractor).

Two baseline columns calibrate every number: "input" (the output is the unchanged input) and
"ground truth" (the exact answer from the renderer). DIDD's removal is its B -> A translation with
a reference from A (G(E^c(b), E^s_A(a), 0), the DIDD Table 1 protocol); its intersection
G(E^c(b), 0, 0) is reported on its own row. Fader networks (the papers' "Fader" rows) take no
reference: removal is the decoder at attribute value 0, "transfer" adds the attribute at value 1
(the bar's colour is then the model's own choice, so its colour error is not a guided transfer's);
its slider is measured on its own rows, P(has accessory) of A test images decoded at values 0, 0.5,
1 and 1.5.

Classifiers: ``load_digit_classifier("accessory")`` and ``load_digit_classifier("colored-digits")``
from ``lit_i2i.metrics`` (the latter reads digits with and without the bar); if the metrics package
is missing, two small CNNs trained here on the training split (cached under ``<out>/classifiers``).
FID and KID come from ``lit_i2i.metrics.fid`` / ``kid`` (torchmetrics) on those features; without the
metrics package, from the formulas here (KID: unbiased MMD^2, cubic polynomial kernel, 50 subsets
of 100). KID is reported x100.

Runs with one torch thread by default: on the shared 2-core machine this was written on, two threads
competing with other processes were 10-20x slower than one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from datamodules.builtin import accessory_box, indices, render  # noqa: E402
from lit_i2i.metrics.evaluate import iou_per_image  # noqa: E402
from experiments.benchkit import measures_table, reuse_or_clear  # noqa: E402

METHODS = {"press": ("Press et al.", "experiments/press/digits_accessory.yaml"),
           "didd": ("DIDD", "experiments/didd/digits_accessory.yaml"),
           "mbu": ("MBU", "experiments/mbu/digits_accessory.yaml"),
           "fader": ("Fader networks", "experiments/fader/digits_accessory.yaml")}
FADER_SLIDER = (0.0, 0.5, 1.0, 1.5)  # attribute values at which Fader's slider is measured


# ---------------------------------------------------------------------------------------- data
def to_float(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 127.5 - 1


def test_data(seed: int = 0) -> dict[str, torch.Tensor]:
    """Test images of both halves, their labels, the true masks and the exact ground truths."""
    ia, ib = indices("A", "test"), indices("B", "test")
    a, la, _ = render("no-accessory", ia)
    b, lb, mb = render("accessory", ib)
    b_clean, _, _ = render("no-accessory", ib)  # the same digits without the bar: removal's ground truth
    a, b, b_clean = to_float(a), to_float(b), to_float(b_clean)
    ref = torch.from_numpy(np.random.default_rng(seed).integers(len(ib), size=len(ia)))
    box = accessory_box(len(ia))
    ref_colour = ((b[ref] + 1) / 2 * box).sum((2, 3)) / box.sum((2, 3))  # (n, 3) in [0, 1]
    gt_transfer = ((a + 1) / 2 * (1 - box) + ref_colour[:, :, None, None] * box) * 2 - 1
    return {"A": a, "A_label": la, "B": b, "B_label": lb, "B_mask": mb, "B_clean": b_clean, "ref": ref,
            "ref_colour": ref_colour, "box": box, "transfer_gt": gt_transfer,
            "A_ref": a[torch.arange(len(ib)) % len(ia)]}


# ---------------------------------------------------------------------------------------- classifiers
class SmallCNN(nn.Module):
    """A small 32x32 classifier; ``features`` gives the 128-d penultimate layer (for FID/KID)."""

    def __init__(self, n_out: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(128 * 16, 128), nn.ReLU())
        self.head = nn.Linear(128, n_out)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x))


def _train_cnn(x: torch.Tensor, y: torch.Tensor, n_out: int, epochs: int = 4, seed: int = 0) -> SmallCNN:
    torch.manual_seed(seed)
    net = SmallCNN(n_out)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            j = perm[i:i + 64]
            loss = F.cross_entropy(net(x[j]), y[j])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


class Judges:
    """The accessory classifier (P(has accessory)) and the digit classifier (labels, features)."""

    def __init__(self, cache: Path):
        self.source = "trained here (SmallCNN on the training split)"
        try:  # the suite's own classifiers, when the metrics package has them
            try:
                from lit_i2i.metrics import load_digit_classifier  # type: ignore
            except ImportError:
                from lit_i2i.metrics.classifier import load_digit_classifier  # type: ignore

            self.acc_net = load_digit_classifier("accessory").eval()
            self.digit_net = load_digit_classifier("colored-digits").eval()
            self.source = "lit_i2i.metrics load_digit_classifier('accessory' / 'colored-digits')"
        except (ImportError, AttributeError, TypeError, ValueError):
            self.acc_net, self.digit_net = self._fallback(cache)

    @staticmethod
    def _fallback(cache: Path) -> tuple[nn.Module, nn.Module]:
        cache.mkdir(parents=True, exist_ok=True)
        nets = {}
        for name, n_out in (("accessory", 2), ("digit", 10)):
            path = cache / f"{name}.pt"
            if path.is_file():
                net = SmallCNN(n_out)
                net.load_state_dict(torch.load(path, weights_only=True))
                nets[name] = net.eval()
                continue
            idx = indices("all", "train")
            if name == "accessory":  # the same digits with and without the bar: only the bar differs
                x0, _, _ = render("no-accessory", idx)
                x1, _, _ = render("accessory", idx)
                x = to_float(torch.cat([x0, x1]))
                y = torch.cat([torch.zeros(len(idx)), torch.ones(len(idx))]).long()
            else:  # colored digits with and without the bar (two renderings each) of every training digit
                xs, ys = zip(*[render(dom, idx, seed=s)[:2] for dom in ("colored-digits", "accessory") for s in (1, 2)])
                x, y = to_float(torch.cat(xs)), torch.cat(ys)
            nets[name] = _train_cnn(x, y, n_out)
            torch.save(nets[name].state_dict(), path)
        return nets["accessory"], nets["digit"]

    @torch.no_grad()
    def p_accessory(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.acc_net(x[i:i + 256]).softmax(1)[:, 1] for i in range(0, len(x), 256)])

    @torch.no_grad()
    def digit(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.digit_net(x[i:i + 256]).argmax(1) for i in range(0, len(x), 256)])

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> np.ndarray:
        f = self.digit_net.features if hasattr(self.digit_net, "features") else self.digit_net
        return torch.cat([f(x[i:i + 256]).flatten(1) for i in range(0, len(x), 256)]).double().numpy()


# ---------------------------------------------------------------------------------------- distances
def fid(f1: np.ndarray, f2: np.ndarray) -> float:
    from scipy import linalg

    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean.real))


def kid(f1: np.ndarray, f2: np.ndarray, subsets: int = 50, subset_size: int = 100, seed: int = 0) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel, averaged over random subsets (x100)."""
    rng = np.random.default_rng(seed)
    d = f1.shape[1]
    m = min(subset_size, len(f1), len(f2))
    vals = []
    for _ in range(subsets):
        x, y = f1[rng.choice(len(f1), m, replace=False)], f2[rng.choice(len(f2), m, replace=False)]
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        vals.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                    - 2 * kxy.mean())
    return float(np.mean(vals) * 100)


def l1(x: torch.Tensor, y: torch.Tensor, where: torch.Tensor | None = None) -> float:
    """Mean absolute difference in [0, 1] pixel units, optionally over the pixels where ``where`` = 1."""
    d = (x - y).abs().mean(1, keepdim=True) / 2
    if where is None:
        return float(d.mean())
    return float((d * where).sum() / where.sum().clamp(min=1))


def iou(mask: torch.Tensor, truth: torch.Tensor, threshold: float) -> float:
    """Mean per-image IoU of ``mask >= threshold`` with the true mask (the evaluator's ``mask_iou``)."""
    return float(iou_per_image(mask >= threshold, truth > 0.5).mean())


# ---------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def batched(fn, x: torch.Tensor, ref: torch.Tensor | None = None, bs: int = 64) -> torch.Tensor:
    return torch.cat([fn(x[i:i + bs], None if ref is None else ref[i:i + bs]) for i in range(0, len(x), bs)])


def removal_metrics(out: torch.Tensor, d: dict, judges: Judges) -> dict[str, float]:
    return {"removal_p_accessory": float(judges.p_accessory(out).mean()),
            "removal_l1_to_truth": l1(out, d["B_clean"]),
            "removal_l1_outside": l1(out, d["B"], 1 - d["B_mask"]),
            "removal_digit_kept": float((judges.digit(out) == d["B_label"]).float().mean())}


def transfer_metrics(out: torch.Tensor, d: dict, judges: Judges) -> dict[str, float]:
    box = d["box"]
    colour = ((out + 1) / 2 * box).sum((2, 3)) / box.sum((2, 3))
    return {"transfer_gains_accessory": float((judges.p_accessory(out) > 0.5).float().mean()),
            "transfer_colour_error": float((colour - d["ref_colour"]).abs().mean()),
            "transfer_l1_to_truth": l1(out, d["transfer_gt"]),
            "transfer_l1_outside": l1(out, d["A"], 1 - box),
            "transfer_digit_kept": float((judges.digit(out) == d["A_label"]).float().mean())}


def fid_kid(real: np.ndarray, fake: np.ndarray) -> tuple[float, float]:
    """FID and KID x100: the suite's torchmetrics-based scores when present, else the formulas above."""
    try:
        from lit_i2i.metrics import fid as suite_fid
        from lit_i2i.metrics import kid as suite_kid
    except ImportError:
        return fid(real, fake), kid(real, fake)
    r, f = torch.from_numpy(real), torch.from_numpy(fake)
    return suite_fid(r, f), suite_kid(r, f)[0] * 100


def distribution_metrics(removal: torch.Tensor, transfer: torch.Tensor, d: dict, judges: Judges) -> dict[str, float]:
    fa, fb = judges.features(d["A"]), judges.features(d["B"])
    fr, ft = judges.features(removal), judges.features(transfer)
    (rf, rk), (tf, tk) = fid_kid(fa, fr), fid_kid(fb, ft)
    return {"removal_fid": rf, "removal_kid": rk, "transfer_fid": tf, "transfer_kid": tk}


def evaluate_model(key: str, model, d: dict, judges: Judges) -> dict[str, float]:
    model.eval()
    b_ref = d["B"][d["ref"]]
    if key == "didd":
        removal = batched(lambda x, r: model.translate(x, "BtoA", reference=r), d["B"], d["A_ref"])
    else:
        removal = batched(lambda x, r: model.translate(x, "BtoA"), d["B"])
    transfer = batched(lambda x, r: model.translate(x, "AtoB", reference=r), d["A"], b_ref)
    res = {**removal_metrics(removal, d, judges), **transfer_metrics(transfer, d, judges),
           **distribution_metrics(removal, transfer, d, judges)}
    if key == "didd":
        inter = batched(lambda x, r: model.translate(x, mode="intersection"), d["B"])
        res["intersection_p_accessory"] = float(judges.p_accessory(inter).mean())
        res["intersection_l1_to_truth"] = l1(inter, d["B_clean"])
    if key == "mbu":
        mask = batched(lambda x, r: model.mask(x), d["B"])
        mask_a = batched(lambda x, r: model.mask(x), d["A"])
        thr = model.hparams.removal_threshold
        grid = [round(t, 2) for t in np.arange(0.05, 1.0, 0.05)]
        ious = {t: iou(mask, d["B_mask"], t) for t in grid}
        best = max(ious, key=ious.get)
        res.update({"mask_iou_at_removal_threshold": iou(mask, d["B_mask"], thr), "mask_iou_at_0.5": iou(mask, d["B_mask"], 0.5),
                    "mask_iou_best": ious[best], "mask_best_threshold": best,
                    "mask_area_on_A": float((mask_a >= thr).float().mean())})
    if key == "fader":
        for v in FADER_SLIDER:
            out = batched(lambda x, r, v=v: model.translate(x, value=v), d["A"])
            res[f"fader_slider_p_accessory_{v:g}"] = float(judges.p_accessory(out).mean())
    return res


def baselines(d: dict, judges: Judges) -> dict[str, dict[str, float]]:
    """'input': every output is its unchanged input; 'truth': the renderer's exact answer."""
    out = {}
    for name, removal, transfer in (("input", d["B"], d["A"]), ("truth", d["B_clean"], d["transfer_gt"])):
        out[name] = {**removal_metrics(removal, d, judges), **transfer_metrics(transfer, d, judges),
                     **distribution_metrics(removal, transfer, d, judges)}
    out["truth"].update({"mask_iou_at_removal_threshold": 1.0, "mask_iou_at_0.5": 1.0, "mask_iou_best": 1.0,
                         "mask_area_on_A": 0.0})
    return out


# ---------------------------------------------------------------------------------------- training
def metrics_off() -> list[str]:
    try:
        from lit_i2i.metrics import TranslationMetrics  # noqa: F401
    except ImportError:
        return []
    return ["--metrics.metrics", "[]"]


def train(key: str, out: Path, max_steps: int | None, retrain: bool) -> tuple[Path, float | None]:
    from lit_i2i.cli import main

    run = out / key
    ckpt = reuse_or_clear(run, key, retrain)
    if ckpt is not None:
        return ckpt, None
    ckpt = run / "checkpoints" / "last.ckpt"
    args = ["fit", "--config", str(ROOT / METHODS[key][1]), "--trainer.default_root_dir", str(run),
            "--trainer.logger", "false", "--trainer.enable_progress_bar", "false", *metrics_off(),
            # no periodic checkpoints: last.ckpt is then written at the end of training (Lightning refreshes
            # last.ckpt only together with a periodic save, so a run ending between two saves keeps a stale one)
            "--checkpoint.every_n_epochs", "0", "--checkpoint.every_n_train_steps", "0"]
    if max_steps is not None:
        args += ["--trainer.max_steps", str(max_steps)]
    print(f"[{key}] lit-i2i {' '.join(args)}", flush=True)
    t0 = time.perf_counter()
    if main(args) != 0:
        raise SystemExit(f"[{key}] training failed")
    return ckpt, time.perf_counter() - t0


# ---------------------------------------------------------------------------------------- table
ROWS = [  # key, label, better
    ("removal_p_accessory", "removal: P(has accessory)", "lower"),
    ("removal_l1_to_truth", "removal: L1 to the bar-free rendering", "lower"),
    ("removal_l1_outside", "removal: L1 change outside the bar", "lower"),
    ("removal_digit_kept", "removal: digit label kept", "higher"),
    ("removal_fid", "removal: FID vs real A", "lower"),
    ("removal_kid", "removal: KID x100 vs real A", "lower"),
    ("intersection_p_accessory", "DIDD intersection G(E^c(b),0,0): P(has accessory)", "lower"),
    ("intersection_l1_to_truth", "DIDD intersection: L1 to the bar-free rendering", "lower"),
    ("transfer_gains_accessory", "transfer: share that gains an accessory", "higher"),
    ("transfer_colour_error", "transfer: bar colour error vs the reference's", "lower"),
    ("transfer_l1_to_truth", "transfer: L1 to source + reference's bar", "lower"),
    ("transfer_l1_outside", "transfer: L1 change outside the bar", "lower"),
    ("transfer_digit_kept", "transfer: digit label kept", "higher"),
    ("transfer_fid", "transfer: FID vs real B", "lower"),
    ("transfer_kid", "transfer: KID x100 vs real B", "lower"),
    ("mask_iou_at_removal_threshold", "MBU mask IoU at the removal threshold (0.1)", "higher"),
    ("mask_iou_at_0.5", "MBU mask IoU at 0.5", "higher"),
    ("mask_iou_best", "MBU mask IoU at the best threshold (chosen on test)", "higher"),
    ("mask_area_on_A", "MBU mask area on bar-free A images", "lower"),
    *[(f"fader_slider_p_accessory_{v:g}", f"Fader slider: P(has accessory) of A decoded at value {v:g}", "")
      for v in FADER_SLIDER],
    ("train_minutes", "training time (min, CPU)", ""),
    ("steps", "optimizer steps (2 per batch)", ""),
]


def table(results: dict[str, dict], base: dict[str, dict], keys: list[str]) -> str:
    cols = [(METHODS[k][0], results[k]) for k in keys] + [("input (no change)", base["input"]),
                                                          ("ground truth", base["truth"])]
    return measures_table(ROWS, cols, skip_empty=len(keys))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/content_transfer", help="run folders, classifiers and the table")
    ap.add_argument("--methods", default="press,didd,mbu,fader")
    ap.add_argument("--max_steps", type=int, default=None, help="override the configs' trainer.max_steps")
    ap.add_argument("--retrain", action="store_true", help="train again even where a last.ckpt exists")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: on a shared CPU, more threads than free cores is many times slower)")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    out = Path(a.out)
    keys = [k for k in a.methods.split(",") if k]
    for k in keys:
        if k not in METHODS:
            raise SystemExit(f"--methods: unknown {k!r}; choose from {', '.join(METHODS)}")
    t0 = time.perf_counter()
    judges = Judges(out / "classifiers")
    d = test_data()
    print(f"classifiers: {judges.source}; accessory P on real A/B test: "
          f"{float(judges.p_accessory(d['A']).mean()):.3f}/{float(judges.p_accessory(d['B']).mean()):.3f}; "
          f"digit accuracy on real A/B test: {float((judges.digit(d['A']) == d['A_label']).float().mean()):.3f}/"
          f"{float((judges.digit(d['B']) == d['B_label']).float().mean()):.3f}", flush=True)
    from lit_i2i.commands import load_run

    results = {}
    for k in keys:
        ckpt, seconds = train(k, out, a.max_steps, a.retrain)
        model, _ = load_run(ckpt)
        steps = torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"]
        import yaml

        expected = a.max_steps or yaml.safe_load((ROOT / METHODS[k][1]).read_text())["trainer"]["max_steps"]
        if seconds is not None and steps != expected:
            raise SystemExit(f"[{k}] {ckpt} holds step {steps}, not the {expected} trained")
        results[k] = {**evaluate_model(k, model, d, judges), "steps": float(steps)}
        if seconds is not None:
            results[k]["train_minutes"] = seconds / 60
        print(f"[{k}] " + ", ".join(f"{m}={v:.3f}" for m, v in results[k].items()), flush=True)
    base = baselines(d, judges)
    md = table(results, base, keys)
    total = time.perf_counter() - t0
    header = (f"Accessory digits, test split (A: {len(d['A'])}, B: {len(d['B'])} images); classifiers: {judges.source}; "
              f"total wall time {total / 60:.1f} min.\n\n")
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmark.md").write_text(header + md + "\n")
    (out / "benchmark.json").write_text(json.dumps({"methods": results, "baselines": base,
                                                    "classifiers": judges.source}, indent=2))
    print("\n" + header + md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
