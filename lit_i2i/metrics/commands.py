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
    ap.add_argument("--celeba", default=None, metavar="ROOT",
                    help="train a CelebA attribute classifier instead (ResNet-18, one logit) on this CelebA folder")
    ap.add_argument("--attribute", default=None, metavar="EXPR",
                    help="with --celeba: the domain expression it predicts, e.g. Eyeglasses or Mouth_Slightly_Open")
    ap.add_argument("--versus", default=None, metavar="EXPR2",
                    help="with --celeba: the other class (default: not EXPR), e.g. DIDD's A-vs-B classifier")
    ap.add_argument("--image_size", type=int, default=128, help="with --celeba: the input size (178 crop resized)")
    ap.add_argument("--batch_size", type=int, default=64, help="with --celeba")
    ap.add_argument("--lr", type=float, default=1e-3, help="with --celeba: Adam's learning rate")
    ap.add_argument("--weights", default=None,
                    help="with --celeba: 'imagenet' (torchvision's weights, offline rule) or a file; default from scratch")
    ap.add_argument("--max_train", type=int, default=None, help="with --celeba: train on a random subset")
    ap.add_argument("--num_workers", type=int, default=0, help="with --celeba: DataLoader workers")
    a = ap.parse_args(argv)
    if a.celeba is not None or a.attribute is not None:
        return _train_celeba(a)
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


def _train_celeba(a) -> int:
    from datamodules.celeba import _slug
    from lit_i2i.errors import UserError
    from lit_i2i.metrics.attribute_classifier import save_attribute_classifier, train_attribute_classifier
    from lit_i2i.metrics.classifier import cache_root

    if not a.celeba or not a.attribute:
        raise UserError("--celeba ROOT and --attribute EXPR go together (e.g. --celeba datasets/celeba "
                        "--attribute Eyeglasses)")
    name = f"celeba-{_slug(a.attribute)}" + (f"-vs-{_slug(a.versus)}" if a.versus else "") + \
        f"-{a.image_size}px-seed{a.seed}.pt"
    out = Path(a.out) if a.out else cache_root() / "classifiers" / name
    if out.suffix not in (".pt", ".pth"):
        out = out / name
    if out.exists():
        raise UserError(f"--out: {out} exists; remove it or choose another file (nothing is overwritten)")
    print(f"training the CelebA classifier of {a.attribute!r} (seed {a.seed}) ...")
    model, info = train_attribute_classifier(a.celeba, a.attribute, image_size=a.image_size,
                                             epochs=a.epochs if a.epochs is not None else 5, batch_size=a.batch_size,
                                             lr=a.lr, seed=a.seed, weights=a.weights, max_train=a.max_train,
                                             num_workers=a.num_workers, versus=a.versus)
    path = save_attribute_classifier(model, info, out)
    print(f"  test accuracy {info['test_accuracy']:.4f} (balanced {info['test_balanced_accuracy']:.4f}) on "
          f"{info['test_images']} test images ({info['test_positives']} with the attribute), "
          f"{info['train_seconds']:.0f} s -> {path}")
    print(f"  use it as --metrics.attribute_classifier '{{\"AtoB\": \"{path}@CLASS\"}}' (CLASS 1: the target "
          "domain has the attribute, 0: it has not)")
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
