"""OST's one-shot claim on the built-in digits -> colored digits: with ONE sample of A, OST translates
far better than UNIT or CycleGAN trained on the same single sample, and better than OST without
selective backpropagation (Benaim & Wolf 2018, Figure 3 and Table 1).

For each of ``--seeds`` choices of the single A digit x (drawn from the A training split with
``numpy.random.default_rng(seed)``, as ``OneShot(seed=...)`` draws it; the rendering seed stays 0):
  - OST: Phase II from one shared Phase I checkpoint (a VAE-GAN on colored digits only: it never sees
    A, so one Phase I serves every x, as the official code loads one Phase I checkpoint per run);
  - OST without selective backprop (the same Phase I, ``selective_backprop: false``);
  - UNIT trained from scratch on x (fresh augmentations) and the colored digits;
  - CycleGAN trained from scratch on the same data.
Every run sees the same batches of the one-shot datamodule (x freshly augmented in every item).
Translation accuracy: every digit of the A test split is translated A->B and classified by the
shipped colored-digits classifier (``lit_i2i.metrics``); the share equal to the source label.
That classifier reads white-on-black digits too (untranslated A test digits score ~0.99), so accuracy
alone cannot tell a translation from a copy: the script also reports the "B rate", the share of
translations that a small domain classifier (trained here, in seconds, on noisy A training digits
vs B training digits) calls colored digits, and a reference row for the identity map. Image grids of
the first test digits and their translations go to ``--out``/grids.
Reports the mean and (sample) standard deviation over the choices of x, the per-run numbers, and
wall/CPU time, and writes ``results.json`` and ``results.md`` to ``--out``.

    python experiments/ost/one_shot_comparison.py                 # the reported setting (< 30 min CPU)
    python experiments/ost/one_shot_comparison.py --seeds 2 --phase1_iters 50 --phase2_iters 20 \
        --baseline_iters 20                                       # a smoke run

The nets are small (sized for a 2-core CPU) and the iteration counts far below the papers'; the
numbers are a benchmark of this CPU setting, not a reproduction of the MNIST/SVHN figures.
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

import numpy as np  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402

from datamodules.builtin import domain_source  # noqa: E402
from datamodules.oneshot import OneShot  # noqa: E402

METHODS = ("OST", "OST-noSB", "UNIT-1", "CycleGAN-1")  # OST-noSB: OST without selective backprop


def load_classifier():
    try:
        from lit_i2i.metrics import load_digit_classifier
    except ImportError:
        from lit_i2i.metrics.classifier import load_digit_classifier
    return load_digit_classifier("colored-digits")


def sample_index(seed: int) -> int:
    """The position of x in the A training split: the draw of ``OneShot(seed=seed, k=1)``."""
    n = len(domain_source("digits", "A", "train", 0))
    return int(np.random.default_rng(seed).choice(n, 1, replace=False)[0])


def data(index: int, args) -> OneShot:
    return OneShot(a_builtin="digits", b_builtin="colored-digits", a_index=[index], seed=0, augment=True,
                   batch_size=args.batch_size)


class StopAfter(pl.Callback):
    """Stops training after ``n`` batches (iterations), whatever the method's optimizer steps per batch."""

    def __init__(self, n: int):
        self.n, self.seen = n, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seen += 1
        if self.seen >= self.n:
            trainer.should_stop = True


def fit(model, dm, iters: int, root: Path, seed: int):
    """Train ``iters`` iterations; returns the CPU seconds spent and the trainer."""
    pl.seed_everything(seed, verbose=False)
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=-1, max_epochs=-1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, limit_val_batches=0, default_root_dir=str(root),
                         callbacks=[StopAfter(iters)])
    t = time.process_time()
    trainer.fit(model, dm)
    return time.process_time() - t, trainer


def train_domain_classifier(seed: int = 0, epochs: int = 3):
    """Digits (label 0, with the B domain's pixel noise added) vs colored digits (label 1), from the
    training splits of both halves; a small CNN, about 10 s on a CPU. Returns (model, test accuracy)."""
    from lit_i2i.metrics.classifier import DigitClassifier

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)

    def split(name: str):
        a = domain_source("digits", "A", name, 0).images.float() / 127.5 - 1
        b = domain_source("colored-digits", "B", name, 0).images.float() / 127.5 - 1
        return torch.cat([a, b]), torch.cat([torch.zeros(len(a)), torch.ones(len(b))]).long()

    def noisy(x):  # the renderer adds N(0, 0.04) on [0, 1] to colored digits: do it to digits too
        return (x + 0.08 * torch.randn(x.shape, generator=g)).clamp(-1, 1)

    x, y = split("train")
    model = DigitClassifier(2)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 64):
            j = perm[i:i + 64]
            loss = torch.nn.functional.cross_entropy(model(noisy(x[j])), y[j])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval().requires_grad_(False)
    xt, yt = split("test")
    with torch.no_grad():
        acc = float((model(noisy(xt)).argmax(1) == yt).float().mean())
    return model, acc


@torch.no_grad()
def scores(model, classifier, domain_clf, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float, torch.Tensor]:
    """(translation accuracy, B rate, the translations) of the A test digits ``x`` with labels ``y``."""
    if model is not None:
        model.eval()
    outs = [(model.translate(x[i:i + 256], "AtoB") if model is not None else x[i:i + 256]).clamp(-1, 1)
            for i in range(0, len(x), 256)]
    out = torch.cat(outs)
    acc = float((classifier(out).argmax(1) == y).float().mean())
    b_rate = float((domain_clf(out).argmax(1) == 1).float().mean())
    return acc, b_rate, out


def ost(args, **kw):
    from lit_i2i.methods.ost import OST

    return OST(arch="dcgan", ngf=args.ost_ngf, ndf=args.ndf, n_down=2, n_unshared=1, n_res_shared=1, norm="batch",
               netD="dcgan", norm_D="batch", lr=2e-4, **kw)


def unit(args):
    from lit_i2i.methods.unit import UNIT

    return UNIT(variant="nips", ngf=args.baseline_ngf, n_res_unshared=1, n_res_shared=1, ndf=args.ndf, n_layers_D=3)


def cyclegan(args):
    from lit_i2i.methods.cyclegan import CycleGAN

    return CycleGAN(netG="resnet", ngf=args.baseline_ngf, n_blocks=3, n_down=2, netD="n_layers", ndf=args.ndf, n_layers_D=2,
                    gan_mode="lsgan", lambda_identity=0.5, pool_size=50, lr_policy="constant", lr_interval="step")


def summary(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5, help="how many choices of the single A digit")
    ap.add_argument("--phase1_iters", type=int, default=1500, help="OST Phase I iterations (once, on B only)")
    ap.add_argument("--phase2_iters", type=int, default=300, help="OST Phase II iterations per run")
    ap.add_argument("--baseline_iters", type=int, default=400, help="UNIT-1 / CycleGAN-1 iterations per run")
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--ost_ngf", type=int, default=32, help="OST generator width (G11 layout: ~146k parameters at 32)")
    ap.add_argument("--baseline_ngf", type=int, default=8,
                    help="UNIT / CycleGAN generator width (their layouts: ~137k / ~139k parameters at 8)")
    ap.add_argument("--ndf", type=int, default=16, help="discriminator width of every method")
    ap.add_argument("--phase1_ckpt", default=None, help="reuse this OST Phase I checkpoint instead of training one")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: OpenMP threads spin on a busy shared CPU)")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of: " + ", ".join(METHODS))
    ap.add_argument("--out", default="runs/one_shot_comparison")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wall0, cpu0 = time.perf_counter(), time.process_time()

    from lit_i2i.core.visuals import save_grid, visual_grid

    classifier = load_classifier()
    domain_clf, domain_acc = train_domain_classifier()
    print(f"domain classifier (digits vs colored digits) test accuracy {domain_acc:.3f}")
    src = domain_source("digits", "A", "test", 0)
    x_test = src.images.float() / 127.5 - 1
    y_test = src.labels
    id_acc, id_b, _ = scores(None, classifier, domain_clf, x_test, y_test)
    grids: dict[str, torch.Tensor] = {"A test digits": x_test[:12]}
    samples = [sample_index(s) for s in range(args.seeds)]
    pool = domain_source("digits", "A", "train", 0)
    print(f"single A digits (positions in the A training split): {samples}, "
          f"labels {[int(pool.labels[i]) for i in samples]}; {len(x_test)} A test digits")

    results: dict[str, list[float]] = {m: [] for m in methods}
    b_rates: dict[str, list[float]] = {m: [] for m in methods}
    cpu: dict[str, float] = {m: 0.0 for m in methods}
    phase1_ckpt = Path(args.phase1_ckpt) if args.phase1_ckpt else out / "ost_phase1.ckpt"
    if any(m.startswith("OST") for m in methods) and not args.phase1_ckpt:
        model = ost(args, phase1_steps=args.phase1_iters, phase2_steps=0)
        secs, trainer = fit(model, data(samples[0], args), args.phase1_iters, out / "phase1", seed=0)
        trainer.save_checkpoint(phase1_ckpt)
        cpu["OST Phase I"] = secs
        print(f"OST Phase I: {args.phase1_iters} iterations on colored digits, {secs:.0f} s CPU")

    for s, idx in enumerate(samples):
        row = []
        for m in methods:
            if m == "OST":
                model = ost(args, init_from=str(phase1_ckpt), selective_backprop=True, phase2_steps=args.phase2_iters)
                iters = args.phase2_iters
            elif m == "OST-noSB":
                model = ost(args, init_from=str(phase1_ckpt), selective_backprop=False, phase2_steps=args.phase2_iters)
                iters = args.phase2_iters
            elif m == "UNIT-1":
                model, iters = unit(args), args.baseline_iters
            elif m == "CycleGAN-1":
                model, iters = cyclegan(args), args.baseline_iters
            else:
                raise SystemExit(f"unknown method {m!r}; choose from {', '.join(METHODS)}")
            secs, _ = fit(model, data(idx, args), iters, out / f"seed{s}", seed=s)
            acc, b_rate, fake = scores(model, classifier, domain_clf, x_test, y_test)
            results[m].append(acc)
            b_rates[m].append(b_rate)
            cpu[m] += secs
            row.append(f"{m} {acc:.3f} (B rate {b_rate:.2f})")
            grids[f"{m} seed {s}"] = fake[:12]
        print(f"seed {s} (x = A train #{idx}, a {int(pool.labels[idx])}): " + ", ".join(row), flush=True)

    wall, total_cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    save_grid(visual_grid(grids, max_rows=12), out / "grids" / "translations.png")
    lines = ["| method | accuracy mean ± std | per choice of x | B rate mean ± std | train CPU s |",
             "|---|---|---|---|---|"]
    for m in methods:
        mean, std = summary(results[m])
        bm, bs = summary(b_rates[m])
        lines.append(f"| {m} | {mean:.3f} ± {std:.3f} | {', '.join(f'{v:.3f}' for v in results[m])} | "
                     f"{bm:.2f} ± {bs:.2f} | {cpu[m]:.0f} |")
    if "OST Phase I" in cpu:
        lines.append(f"| (OST Phase I, shared by all OST runs) | | | | {cpu['OST Phase I']:.0f} |")
    lines.append(f"| (identity: A test digits untranslated) | {id_acc:.3f} | | {id_b:.2f} | |")
    table = "\n".join(lines)
    cmd = "python experiments/ost/one_shot_comparison.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report = (f"{table}\n\nTranslation accuracy of the {len(x_test)} A test digits (digits -> colored digits), "
              f"{args.seeds} choices of the single A digit; wall {wall / 60:.1f} min, CPU {total_cpu / 60:.1f} min "
              f"({torch.get_num_threads()} threads).\nCommand: `{cmd.strip()}`\n")
    print("\n" + report)
    (out / "results.md").write_text(report)
    (out / "results.json").write_text(json.dumps({
        "args": vars(args), "samples": samples, "accuracy": results, "b_rate": b_rates,
        "identity": {"accuracy": id_acc, "b_rate": id_b}, "domain_classifier_test_accuracy": domain_acc,
        "summary": {m: dict(zip(("mean", "std"), summary(results[m]))) for m in methods},
        "train_cpu_seconds": cpu, "wall_seconds": wall, "cpu_seconds": total_cpu}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
