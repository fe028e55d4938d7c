"""Commands of the metrics package, called by ``lit-i2i``:

  - ``lit-i2i train-classifier`` -> :func:`train_classifier_main`: train the built-in digit classifiers
    (``--out lit_i2i/assets`` regenerates the shipped files; default: the cache
    ``~/.cache/lit_i2i/classifiers``, where :func:`~lit_i2i.metrics.classifier.load_digit_classifier`
    also looks);
  - ``lit-i2i bench eval`` -> :func:`bench_eval_main`: time one full evaluation (1000 real + 1000
    translated 32x32 images, digit extractor) without and with cached real features.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import torch
from torch import nn


def train_classifier_main(argv: list[str]) -> int:
    from lit_i2i.commands import CommandParser
    from lit_i2i.metrics.classifier import (NUM_CLASSES, REAL, asset_name, cache_root, save_classifier,
                                            train_digit_classifier)

    ap = CommandParser(
        prog="lit-i2i train-classifier",
        description="Train the built-in digit classifiers used by acc / fid_digits / kid_digits / attr_* "
                    "(repeatable given --seed; one CPU thread, under two minutes each).")
    ap.add_argument("--domain", default="all", choices=[*NUM_CLASSES, "all"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="output folder (default: ~/.cache/lit_i2i/classifiers; "
                                                "lit_i2i/assets regenerates the shipped weights)")
    ap.add_argument("--epochs", type=int, default=None, help="default: the recipe's (see classifier.RECIPES)")
    ap.add_argument("--root", default=None, help=f"for {', '.join(REAL)}: the folder holding torchvision's files")
    a = ap.parse_args(argv)
    out = Path(a.out) if a.out else cache_root() / "classifiers"
    nets = [n for n in NUM_CLASSES if n not in REAL] if a.domain == "all" else [a.domain]
    if a.domain in REAL and not a.root:
        from lit_i2i.errors import UserError

        raise UserError(f"--root: the {a.domain} classifier trains on the {a.domain} files; give the folder holding them")
    rows = []
    for net in nets:
        print(f"training the {net} classifier (seed {a.seed}) ...")
        model, info = train_digit_classifier(net, a.seed, a.epochs, root=a.root)
        path = save_classifier(model, info, out / asset_name(net, a.seed))
        rows.append((net, info["test_accuracy"], info["test_images"], info["train_seconds"], path))
        print(f"  {net}: test accuracy {info['test_accuracy']:.4f} on {info['test_images']} images, "
              f"{info['train_seconds']:.1f} s -> {path} ({path.stat().st_size / 1024:.0f} KB)")
    print(f"\n{'classifier':<16} {'test acc':>9} {'n test':>7} {'train s':>8}  file")
    for net, acc, n, secs, path in rows:
        print(f"{net:<16} {acc:>9.4f} {n:>7} {secs:>8.1f}  {path}")
    return 0


class _Identity(nn.Module):
    """A stand-in 'model' for the benchmark: translate() returns its input."""

    directions = ("AtoB",)
    method_name = "identity"

    def translate(self, x, direction="AtoB", reference=None):
        return x


def bench_eval_main(argv: list[str]) -> int:
    from lit_i2i.commands import CommandParser
    from datamodules.builtin import BuiltinDigits
    from lit_i2i.metrics.evaluate import Evaluator

    ap = CommandParser(prog="lit-i2i bench eval",
                                 description="Time one evaluation without and with cached real features.")
    ap.add_argument("--n", type=int, default=1000, help="real and translated images (at most 1437)")
    ap.add_argument("--metrics", default="fid_digits,kid_digits,acc")
    ap.add_argument("--batch_size", type=int, default=100)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--cache_dir", default=None, help="default: a fresh temporary folder")
    a = ap.parse_args(argv)
    device = torch.device(a.device)
    # paired built-in data: both domains draw from all 1,437 training digits
    dm = BuiltinDigits(a="digits", b="colored-digits", paired=True)
    model = _Identity()
    metrics = [m for m in a.metrics.split(",") if m]
    with tempfile.TemporaryDirectory() as tmp:
        ev = Evaluator(metrics, ["AtoB"], split="train", max_samples=a.n, batch_size=a.batch_size,
                       cache_dir=a.cache_dir or tmp)
        plan = ev.plan(model, dm)[0]
        net = ev._net(plan.digit_net, device)  # loaded before timing: both runs pay only for images
        ev.cache.root.mkdir(parents=True, exist_ok=True)
        for f in ev.cache.root.glob("*.pt"):
            f.unlink()

        def timed(fn):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            return out, time.perf_counter() - t0

        (cold, _), t_cold = timed(lambda: ev.run(model, dm, device))
        (warm, _), t_warm = timed(lambda: ev.run(model, dm, device))
        x = torch.stack([dm.eval_dataset("B", "train")[i]["image"] for i in range(a.n)]).to(device)

        def extract():
            with torch.no_grad():
                for i in range(0, len(x), a.batch_size):
                    net(x[i:i + a.batch_size])

        extract()
        _, t_ext = timed(extract)
    same = all((math.isnan(cold[k]) and math.isnan(warm[k])) or abs(cold[k] - warm[k]) <= 1e-9 * max(1.0, abs(cold[k]))
               for k in cold)  # an unavailable KID std is NaN in both
    print(f"\nlit-i2i bench eval: {a.n} real + {a.n} translated 32x32 images, {net.name}, metrics "
          f"{', '.join(metrics)}, device {device}, {torch.get_num_threads()} threads")
    print(f"{'':<34} {'seconds':>8} {'images/s':>9}")
    print(f"{'cold (real features computed)':<34} {t_cold:>8.2f} {2 * a.n / t_cold:>9.0f}")
    print(f"{'warm (real features cached)':<34} {t_warm:>8.2f} {a.n / t_warm:>9.0f}")
    print(f"{'ratio cold / warm':<34} {t_cold / t_warm:>8.2f}")
    print(f"{'feature extraction alone':<34} {t_ext:>8.2f} {a.n / t_ext:>9.0f}")
    print(f"same results cold and warm: {same}")
    return 0
