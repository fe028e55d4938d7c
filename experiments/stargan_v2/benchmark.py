"""StarGAN v2 on the built-in colored digits (10 domains = the 10 digits): does an output take its
target domain, and does it keep the source's colours? On a trained checkpoint of
``experiments/stargan_v2/digits.yaml`` (test split, 360 digits)::

    lit-i2i fit --config experiments/stargan_v2/digits.yaml
    python experiments/stargan_v2/benchmark.py --ckpt runs/stargan_v2_digits/checkpoints/last.ckpt

Each test source gets a target digit other than its own (a fixed random draw) and is translated
latent-guided (``mode="latent"``, seed 0) and reference-guided (a test image of the target digit as
reference). Columns: ``target_digit``: the share the shipped colored-digit classifier reads as the
target digit (chance 0.1; the measure of a multi-domain translator here); ``source_digit``: read as the
source's own digit (the copy failure); ``bg_err`` / ``fg_err``: background and foreground colour
error against the source (TUNIT's benchmark's measure, mean absolute RGB in [0, 1]); ``diversity``:
mean L1 between the outputs of seeds 0 and 1 (latent only). A "copy source" row calibrates.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@torch.no_grad()
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", default=None, help="also write the numbers here (JSON)")
    args = ap.parse_args(argv)
    from datamodules.builtin_multidomain import BuiltinMultiDomain
    from experiments.tunit.benchmark import colours
    from lit_i2i.commands import load_run
    from lit_i2i.metrics.classifier import load_digit_classifier

    model = load_run(args.ckpt)[0].eval()
    ds = BuiltinMultiDomain().dataset("test")
    x = torch.stack([ds[i]["image"] for i in range(len(ds))])
    y = torch.tensor([int(ds[i]["label"]) for i in range(len(ds))])
    g = torch.Generator().manual_seed(0)
    t = (y + torch.randint(1, 10, (len(y),), generator=g)) % 10  # another digit
    by_class = {k: torch.nonzero(y == k).flatten() for k in range(10)}
    ref = torch.stack([x[by_class[int(k)][torch.randint(len(by_class[int(k)]), (1,), generator=g)]][0] for k in t])
    judge = load_digit_classifier("colored-digits").eval()
    bg_s, fg_s = colours(x)

    def score(out: torch.Tensor) -> dict[str, float]:
        pred = judge(out.clamp(-1, 1)).argmax(1)
        bg, fg = colours(out)
        return {"target_digit": float((pred == t).float().mean()), "source_digit": float((pred == y).float().mean()),
                "bg_err": float((bg - bg_s).abs().mean()), "fg_err": float((fg - fg_s).abs().mean())}

    def run(mode: str, seed: int = 0) -> torch.Tensor:
        outs = []
        for k in range(10):  # the images of each target digit in one batch
            idx = torch.nonzero(t == k).flatten()
            r = ref[idx] if mode == "reference" else None
            o = model.translate(x[idx], k, reference=r, mode=mode, seed=seed)
            outs.append((idx, o))
        out = torch.empty_like(x)
        for idx, o in outs:
            out[idx] = o
        return out

    rows = {"latent": score(lat := run("latent", 0)), "reference": score(run("reference"))}
    rows["latent"]["diversity"] = float((lat - run("latent", 1)).abs().mean())
    rows["copy source"] = score(x)
    cols = ["target_digit", "source_digit", "bg_err", "fg_err", "diversity"]
    print("| guidance | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols))
    for name, r in rows.items():
        print(f"| {name} | " + " | ".join(f"{r[c]:.3f}" if c in r else "–" for c in cols) + " |")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
