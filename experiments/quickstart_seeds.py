"""The quickstart over several seeds: train (or reuse) one run per seed, print acc_AtoB and the
background flatness of fake_B of each, and draw the README's figure (``docs/quickstart.png``): real A
test digits, each seed's fake_B, real B.

Background flatness (:func:`background_std`): per image, the standard deviation over the pixels at
least 3 px away from the digit (mean over channels, [-1, 1] units); a real B image's is its noise
(0.08 for palette-digits), a blotchy background of several colours is several times that.

    python experiments/quickstart_seeds.py                         # seeds 0-4 into runs/quickstart_seeds
    python experiments/quickstart_seeds.py --seeds 0,1 --threads 1 --out runs/qs1
    python experiments/quickstart_seeds.py --figure docs/quickstart.png   # also write the figure
    python experiments/quickstart_seeds.py --out runs/qs_id0 -- --model.init_args.lambda_identity 0  # a variant

Each seed is ``lit-i2i fit --config experiments/quickstart.yaml --seed_everything K`` (run in a child
process with ``--threads`` torch threads, as a user's machine would: the float sums, and so a GAN's
path, depend on the thread count). A seed whose ``metrics.json`` exists is reused.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def train(seed: int, out: Path, threads: int, config: str = "experiments/quickstart.yaml",
          overrides: list[str] = ()) -> dict:
    run = out / f"seed{seed}"
    if (run / "metrics.json").is_file():
        print(f"[seed {seed}] reusing {run}", flush=True)
    else:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
               "WANDB_MODE": os.environ.get("WANDB_MODE", "disabled")}
        cmd = ["lit-i2i", "fit", "--config", config, "--seed_everything", str(seed),
               "--trainer.default_root_dir", str(run), "--trainer.logger", "false",
               "--trainer.enable_progress_bar", "false", *overrides]
        print(f"[seed {seed}] {' '.join(cmd)}", flush=True)
        t0 = time.time()
        with open(out / f"seed{seed}.log", "w") as log:
            rc = subprocess.call(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        if rc != 0:
            raise SystemExit(f"seed {seed} failed (exit {rc}); see {out / f'seed{seed}.log'}")
        print(f"[seed {seed}] {time.time() - t0:.0f} s wall", flush=True)
    return json.loads((run / "metrics.json").read_text())


def background_std(images: torch.Tensor, digit: torch.Tensor) -> torch.Tensor:
    """Per image, the std over the pixels at least 3 px from ``digit`` (N, 1, H, W bool), mean over channels."""
    import torch.nn.functional as F

    far = F.max_pool2d(digit.float(), 7, 1, 3) == 0
    return torch.stack([images[i][:, far[i, 0]].std(1).mean() for i in range(len(images))])


@torch.no_grad()
def flatness(run: Path) -> tuple[float, float]:
    """(mean background std of fake_B over domain A's test digits, the same of real B test images)."""
    from lit_i2i.cli import instantiate
    from lit_i2i.commands import load_run

    model, spec = load_run(str(run / "checkpoints" / "last.ckpt"))
    dm = instantiate(spec)
    a = torch.stack([it["image"] for it in dm.eval_dataset("A", "test")])
    b = torch.stack([it["image"] for it in dm.eval_dataset("B", "test")])
    fake = background_std(model.translate(a, "AtoB"), a.mean(1, keepdim=True) > -0.8)  # A: white on black
    corner = b[:, :, :3, :3].mean((2, 3), keepdim=True)  # B's background colour (the digit never reaches it)
    real = background_std(b, (b - corner).abs().sum(1, keepdim=True) > 0.6)
    return float(fake.mean()), float(real.mean())


@torch.no_grad()
def figure(out: Path, seeds: list[int], path: Path, n: int = 10) -> None:
    from lit_i2i.cli import instantiate
    from lit_i2i.commands import load_run
    from lit_i2i.core.visuals import save_grid, visual_grid

    models = {s: load_run(str(out / f"seed{s}" / "checkpoints" / "last.ckpt")) for s in seeds}
    dm = instantiate(models[seeds[0]][1])  # the runs' own datamodule (domain B as configured)
    a = torch.stack([dm.eval_dataset("A", "test")[i]["image"] for i in range(n)])
    b = torch.stack([dm.eval_dataset("B", "test")[i]["image"] for i in range(n)])
    cols = {"real A (test)": a}
    for s in seeds:
        cols[f"seed {s}"] = models[s][0].eval().translate(a, "AtoB")
    cols["real B (test)"] = b
    save_grid(visual_grid(cols, max_rows=n, labels=True), path)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--out", default="runs/quickstart_seeds")
    ap.add_argument("--figure", default=None, help="write the seeds' translations here (e.g. docs/quickstart.png)")
    ap.add_argument("--config", default="experiments/quickstart.yaml")
    ap.add_argument("overrides", nargs="*", help="after --: options passed to every `lit-i2i fit`")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    accs = {s: train(s, out, args.threads, args.config, args.overrides)["acc_AtoB"] for s in seeds}
    print("acc_AtoB: " + ", ".join(f"seed {s} {v:.3f}" for s, v in accs.items()))
    flat = {s: flatness(out / f"seed{s}") for s in seeds}
    print("fake_B background std: " + ", ".join(f"seed {s} {v[0]:.3f}" for s, v in flat.items())
          + f" (real B: {next(iter(flat.values()))[1]:.3f})")
    if args.figure:
        figure(out, seeds, Path(args.figure))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
