"""OST's one-shot claims on built-in digit pairs: with ONE sample of A, OST translates better than UNIT
or CycleGAN trained on the same single sample (Benaim & Wolf 2018, Figure 3), and each of its parts
matters (Table 1: augmentation, the one-way cycle, selective backpropagation).

Pairs (``--pair``; several comma-separated run one after the other):
  - ``digits2colored``: digits -> colored digits (a near pixel-local recolouring: easy, see the README);
  - ``digits2street`` / ``street2digits``: handwritten digits <-> street digits (printed digits on
    photographic backgrounds with neighbours: the MNIST <-> SVHN stand-in).

Rows (``--table``, or ``--rows`` for any subset):
  - ``figure3``: ``OST`` (the full method), ``OST-noSB`` (without selective backprop), ``UNIT-1`` and
    ``CycleGAN-1`` (trained from scratch on the same single sample);
  - ``table1``: the paper's 11 ablation rows (augmentation x cycle x selective backprop, the row with
    no Phase II update of the shared layers, the two-way cycle rows), with the paper's MNIST->SVHN /
    SVHN->MNIST numbers beside ours.

For each of ``--seeds`` choices of the single A image x (drawn from the A training split with
``numpy.random.default_rng(seed)``, as ``OneShot(seed=...)`` draws it; the rendering seed stays 0),
every OST row runs Phase II from one shared Phase I checkpoint per pair (a VAE-GAN on B only: it never
sees A, so one Phase I serves every x and row, as the official code loads one Phase I checkpoint per
run). Every run of a seed sees the same batches of the one-shot datamodule.
Translation accuracy: every image of the A test split is translated A->B and classified by the
shipped classifier of B; the share equal to the source label. The classifier of colored digits also
reads white-on-black digits (the identity row), so the script also reports the "B rate", the share of
translations that a small domain classifier (trained here, in seconds, on noisy A vs B training
images) calls B. Image grids of the first test images and their translations go to ``--out``/grids.
Reports the mean and (sample) standard deviation over the choices of x, the per-run numbers, and
CPU time, and writes ``results.json`` and ``results.md`` to ``--out``/<pair>.

    python experiments/ost/one_shot_comparison.py                                  # figure3, digits2colored
    python experiments/ost/one_shot_comparison.py --pair digits2street,street2digits --table table1
    python experiments/ost/one_shot_comparison.py --seeds 2 --phase1_iters 50 --phase2_iters 20 \
        --baseline_iters 20                                                        # a smoke run

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
from lit_i2i.core.callbacks import StopAfter  # noqa: E402

PAIRS = {"digits2colored": ("digits", "colored-digits"), "digits2street": ("digits", "street-digits"),
         "street2digits": ("street-digits", "digits")}
#: Table 1 of the paper: (row, augmentation, cycle, selective backprop, no Phase II update of E_S / G_S,
#: paper accuracy MNIST->SVHN, SVHN->MNIST)
TABLE1 = (
    ("noaug_nocycle_nosb", False, "none", False, False, 0.07, 0.10),
    ("aug_nocycle_nosb", True, "none", False, False, 0.11, 0.11),
    ("noaug_cycle_nosb", False, "one_way", False, False, 0.13, 0.13),
    ("aug_cycle_nosb", True, "one_way", False, False, 0.14, 0.14),
    ("noaug_nocycle_sb", False, "none", True, False, 0.19, 0.20),
    ("aug_nocycle_sb", True, "none", True, False, 0.20, 0.20),
    ("noaug_cycle_sb", False, "one_way", True, False, 0.22, 0.23),
    ("aug_cycle_freeze_shared", True, "one_way", True, True, 0.16, 0.15),
    ("aug_twoway_sb", True, "two_way", True, False, 0.20, 0.13),
    ("aug_twoway_nosb", True, "two_way", False, False, 0.11, 0.12),
    ("full_ost", True, "one_way", True, False, 0.23, 0.23),
)
OST_ROWS = {r[0]: dict(augment=r[1], cycle=r[2], selective_backprop=r[3], freeze_shared=r[4]) for r in TABLE1}
OST_ROWS["OST"], OST_ROWS["OST-noSB"] = OST_ROWS["full_ost"], OST_ROWS["aug_cycle_nosb"]
PAPER = {r[0]: {"digits2street": r[5], "street2digits": r[6]} for r in TABLE1}
TABLES = {"figure3": ("OST", "OST-noSB", "UNIT-1", "CycleGAN-1"), "table1": tuple(r[0] for r in TABLE1)}
BASELINES = ("UNIT-1", "CycleGAN-1")


def load_classifier(domain: str):
    from lit_i2i.metrics.classifier import DIGIT_NET_FOR, load_digit_classifier

    return load_digit_classifier(DIGIT_NET_FOR[domain])


def sample_index(seed: int, a: str = "digits") -> int:
    """The position of x in the A training split: the draw of ``OneShot(seed=seed, k=1)``."""
    n = len(domain_source(a, "A", "train", 0))
    return int(np.random.default_rng(seed).choice(n, 1, replace=False)[0])


def data(pair: str, index: int, args, augment: bool = True) -> OneShot:
    a, b = PAIRS[pair]
    return OneShot(a_builtin=a, b_builtin=b, a_index=[index], seed=0, augment=augment, batch_size=args.batch_size)


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


def train_domain_classifier(a: str, b: str, seed: int = 0, epochs: int = 3):
    """Domain A (label 0) vs domain B (label 1), with pixel noise on both (the colored digits carry
    rendering noise: without it on A too the classifier could key on noise alone), from the training
    splits; a small CNN, seconds on a CPU. Returns (model, test accuracy)."""
    from lit_i2i.metrics.classifier import DigitClassifier

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)

    def split(name: str):
        xa = domain_source(a, "A", name, 0).images.float() / 127.5 - 1
        xb = domain_source(b, "B", name, 0).images.float() / 127.5 - 1
        return torch.cat([xa, xb]), torch.cat([torch.zeros(len(xa)), torch.ones(len(xb))]).long()

    def noisy(x):
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


def make_model(row: str, args, phase1_ckpt: Path):
    if row == "UNIT-1":
        return unit(args), args.baseline_iters
    if row == "CycleGAN-1":
        return cyclegan(args), args.baseline_iters
    kw = {k: v for k, v in OST_ROWS[row].items() if k != "augment"}
    return ost(args, init_from=str(phase1_ckpt), phase2_steps=args.phase2_iters, **kw), args.phase2_iters


def run_pair(pair: str, rows: list[str], args, out: Path) -> dict:
    from lit_i2i.core.visuals import save_grid, visual_grid

    a, b = PAIRS[pair]
    out.mkdir(parents=True, exist_ok=True)
    cpu0 = time.process_time()
    classifier = load_classifier(b)
    domain_clf, domain_acc = train_domain_classifier(a, b)
    print(f"[{pair}] domain classifier ({a} vs {b}) test accuracy {domain_acc:.3f}")
    src = domain_source(a, "A", "test", 0)
    x_test, y_test = src.images.float() / 127.5 - 1, src.labels
    id_acc, id_b, _ = scores(None, classifier, domain_clf, x_test, y_test)
    grids: dict[str, torch.Tensor] = {f"A test ({a})": x_test[:12]}
    seed_ids = list(range(args.first_seed, args.first_seed + args.seeds))
    samples = [sample_index(s, a) for s in seed_ids]
    pool = domain_source(a, "A", "train", 0)
    print(f"[{pair}] single A images (positions in the A training split): {samples}, "
          f"labels {[int(pool.labels[i]) for i in samples]}; {len(x_test)} A test images")
    results: dict[str, list[float]] = {r: [] for r in rows}
    b_rates: dict[str, list[float]] = {r: [] for r in rows}
    cpu: dict[str, float] = {r: 0.0 for r in rows}
    phase1_ckpt = out / "ost_phase1.ckpt"
    if any(r not in BASELINES for r in rows):
        if args.phase1_ckpt:
            phase1_ckpt = Path(args.phase1_ckpt)
        else:
            model = ost(args, phase1_steps=args.phase1_iters, phase2_steps=0)
            secs, trainer = fit(model, data(pair, samples[0], args), args.phase1_iters, out / "phase1", seed=0)
            trainer.save_checkpoint(phase1_ckpt)
            cpu["OST Phase I"] = secs
            print(f"[{pair}] OST Phase I: {args.phase1_iters} iterations on {b}, {secs:.0f} s CPU", flush=True)
    for s, idx in zip(seed_ids, samples):
        line = []
        for r in rows:
            if args.init_seed is not None:  # each row's random init from its own seed, not from the previous row's state
                pl.seed_everything(args.init_seed + s, verbose=False)
            model, iters = make_model(r, args, phase1_ckpt)
            augment = OST_ROWS[r]["augment"] if r in OST_ROWS else True
            secs, _ = fit(model, data(pair, idx, args, augment), iters, out / f"seed{s}", seed=s)
            acc, b_rate, fake = scores(model, classifier, domain_clf, x_test, y_test)
            results[r].append(acc)
            b_rates[r].append(b_rate)
            cpu[r] += secs
            line.append(f"{r} {acc:.3f} (B {b_rate:.2f})")
            grids[f"{r} seed {s}"] = fake[:12]
        print(f"[{pair}] seed {s} (x = A train #{idx}, a {int(pool.labels[idx])}): " + ", ".join(line), flush=True)
    save_grid(visual_grid(grids, max_rows=12), out / "grids" / "translations.png")
    paper_col = pair in ("digits2street", "street2digits")
    paper_name = {"digits2street": "MNIST->SVHN", "street2digits": "SVHN->MNIST"}.get(pair)
    head = "| row | accuracy mean ± std | per choice of x | B rate mean ± std | train CPU s |" + (
        f" paper ({paper_name}) |" if paper_col else "")
    lines = [head, "|" + "---|" * (6 if paper_col else 5)]
    for r in rows:
        mean, std = summary(results[r])
        bm, bs = summary(b_rates[r])
        paper = PAPER.get({"OST": "full_ost", "OST-noSB": "aug_cycle_nosb"}.get(r, r), {}).get(pair)
        lines.append(f"| {r} | {mean:.3f} ± {std:.3f} | {', '.join(f'{v:.3f}' for v in results[r])} | "
                     f"{bm:.2f} ± {bs:.2f} | {cpu[r]:.0f} |" + (f" {paper if paper is not None else ''} |"
                                                                 if paper_col else ""))
    if "OST Phase I" in cpu:
        lines.append(f"| (OST Phase I, shared by the OST rows) | | | | {cpu['OST Phase I']:.0f} |" + (" |" if paper_col else ""))
    lines.append(f"| (identity: A test images untranslated) | {id_acc:.3f} | | {id_b:.2f} | |" + (" |" if paper_col else ""))
    total = time.process_time() - cpu0
    report = (f"**{pair}** ({a} -> {b}): translation accuracy of the {len(x_test)} A test images by the {b} "
              f"classifier, {args.seeds} choices of the single A image; CPU {total / 60:.1f} min.\n\n"
              + "\n".join(lines) + "\n")
    (out / "results.md").write_text(report)
    result = {"pair": pair, "rows": rows, "samples": samples, "accuracy": results, "b_rate": b_rates,
              "identity": {"accuracy": id_acc, "b_rate": id_b}, "domain_classifier_test_accuracy": domain_acc,
              "summary": {r: dict(zip(("mean", "std"), summary(results[r]))) for r in rows},
              "paper": {r: PAPER.get(r, {}).get(pair) for r in rows}, "train_cpu_seconds": cpu, "cpu_seconds": total}
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    return {"report": report, **result}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pair", default="digits2colored", help="comma-separated: " + ", ".join(PAIRS))
    ap.add_argument("--table", default="figure3", choices=list(TABLES), help="the rows to run")
    ap.add_argument("--rows", default=None, help="comma-separated rows instead of --table: "
                                                 + ", ".join([*TABLES["table1"], *TABLES["figure3"]]))
    ap.add_argument("--seeds", type=int, default=5, help="how many choices of the single A image")
    ap.add_argument("--first_seed", type=int, default=0,
                    help="the first choice (seeds first_seed .. first_seed + seeds - 1; to extend an earlier run "
                         "with --phase1_ckpt of its Phase I)")
    ap.add_argument("--phase1_iters", type=int, default=1500, help="OST Phase I iterations (once per pair, on B only)")
    ap.add_argument("--phase2_iters", type=int, default=300, help="OST Phase II iterations per run")
    ap.add_argument("--baseline_iters", type=int, default=400, help="UNIT-1 / CycleGAN-1 iterations per run")
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--ost_ngf", type=int, default=32, help="OST generator width (G11 layout: ~146k parameters at 32)")
    ap.add_argument("--baseline_ngf", type=int, default=8,
                    help="UNIT / CycleGAN generator width (their layouts: ~137k / ~139k parameters at 8)")
    ap.add_argument("--ndf", type=int, default=16, help="discriminator width of every method")
    ap.add_argument("--init_seed", type=int, default=None,
                    help="seed each row's model construction with INIT_SEED + seed (default: not reseeded, so a "
                         "baseline's random init is the state the previous row's run left)")
    ap.add_argument("--phase1_ckpt", default=None, help="reuse this OST Phase I checkpoint (one pair only)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: OpenMP threads spin on a busy shared CPU)")
    ap.add_argument("--out", default="runs/one_shot_comparison")
    args = ap.parse_args(argv)
    from lit_i2i.cli import quiet_console

    quiet_console()  # no litlogger tip or LeafSpec warning from the plain Trainers below
    torch.set_num_threads(args.threads)
    pairs = [p.strip() for p in args.pair.split(",") if p.strip()]
    rows = [r.strip() for r in args.rows.split(",")] if args.rows else list(TABLES[args.table])
    bad = [p for p in pairs if p not in PAIRS] + [r for r in rows if r not in OST_ROWS and r not in BASELINES]
    if bad:
        raise SystemExit(f"unknown pair or row: {', '.join(bad)}")
    wall0 = time.perf_counter()
    reports = [run_pair(p, rows, args, Path(args.out) / p)["report"] for p in pairs]
    cmd = "python experiments/ost/one_shot_comparison.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = "\n".join(reports) + (f"\nWall {(time.perf_counter() - wall0) / 60:.1f} min, {torch.get_num_threads()} "
                                 f"thread(s). Command: `{cmd.strip()}`\n")
    print("\n" + text)
    (Path(args.out) / "results.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
