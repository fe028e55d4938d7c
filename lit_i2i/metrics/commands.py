"""``lit-i2i train-classifier`` -> :func:`train_classifier_main`: train the built-in digit classifiers
(``--out lit_i2i/assets`` regenerates the shipped files; default: the cache
``~/.cache/lit_i2i/classifiers``, where :func:`~lit_i2i.metrics.classifier.load_digit_classifier`
also looks). (``lit-i2i bench eval`` lives in ``lit_i2i.bench.eval``.)
"""

from __future__ import annotations

from pathlib import Path



def train_classifier_main(argv: list[str]) -> int:
    from lit_i2i.cli import CommandParser
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
