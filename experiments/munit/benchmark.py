"""MUNIT on the built-in digits -> colored digits: the measures of a multimodal translator, on a trained
checkpoint of ``experiments/munit/digits.yaml`` (test split, 180 images per domain)::

    lit-i2i fit --config experiments/munit/digits.yaml            # about 11.5 min on one CPU thread
    python experiments/munit/benchmark.py --ckpt runs/munit_digits/checkpoints/last.ckpt

Prints a markdown table (and writes ``--out``, JSON). Per direction:
  - ``digit_random`` / ``digit_ref``: the share of outputs the target domain's shipped digit classifier
    reads as the source's digit, with ``--k`` random styles (seeds 0..k-1) / with a reference of the
    target domain (test image of a fixed random permutation);
  - ``diversity``: mean pairwise distance among the k random-style outputs of each input
    (:func:`lit_i2i.metrics.diversity.pairwise_diversity`, all pairs): AlexNet-LPIPS when its weights are available
    offline, else mean absolute pixel difference (the ``distance`` column says which);
  - whether a reference's style is taken: ``bg_ref`` is the mean absolute RGB error (in [0, 1]) between
    the output's background (the median of its 2-pixel border) and the reference's, ``bg_other`` the
    same against an unrelated image of the target domain (a calibration: an output that ignores its
    reference scores bg_ref = bg_other; taking the style gives bg_ref well below bg_other).
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


def background(img: torch.Tensor) -> torch.Tensor:
    """(N, 3) median RGB in [0, 1] of each image's 2-pixel border: TUNIT's benchmark's measure."""
    from experiments.tunit.benchmark import colours

    return colours(img)[0]


def images(dm, domain: str) -> tuple[torch.Tensor, torch.Tensor]:
    ds = dm.eval_dataset(domain, "test")
    return torch.stack([ds[i]["image"] for i in range(len(ds))]), torch.tensor([int(ds[i]["label"]) for i in range(len(ds))])


@torch.no_grad()
def measure(model, dm, direction: str, k: int, distance, bs: int = 64) -> dict:
    from lit_i2i.metrics.classifier import load_digit_classifier
    from lit_i2i.metrics.diversity import pairwise_diversity

    src, tgt = ("A", "B") if direction == "AtoB" else ("B", "A")
    x, y = images(dm, src)
    ref, _ = images(dm, tgt)
    g = torch.Generator().manual_seed(0)
    r1, r2 = torch.randperm(len(ref), generator=g)[: len(x)], torch.randperm(len(ref), generator=g)[: len(x)]
    judge = load_digit_classifier(dm.builtin_domain(tgt))
    chunks = [slice(i, i + bs) for i in range(0, len(x), bs)]
    rand = [torch.cat([model.translate(x[c], direction, seed=s) for c in chunks]) for s in range(k)]
    guided = torch.cat([model.translate(x[c], direction, reference=ref[r1[c]]) for c in chunks])
    kept = lambda out: float((judge(out.clamp(-1, 1)).argmax(1) == y).float().mean())
    return {"digit_random": sum(kept(o) for o in rand) / k, "digit_ref": kept(guided),
            "diversity": float(pairwise_diversity(torch.stack(rand), distance).mean()),
            "distance": getattr(distance, "__name__", type(distance).__name__),
            "bg_ref": float((background(guided) - background(ref[r1])).abs().mean()),
            "bg_other": float((background(guided) - background(ref[r2])).abs().mean())}


def main(argv: list[str] | None = None) -> int:
    from datamodules.builtin import BuiltinDigits
    from lit_i2i.commands import load_run
    from lit_i2i.errors import UserError
    from lit_i2i.metrics.diversity import l1_distance, lpips_distance

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", default="runs/munit_digits/checkpoints/last.ckpt")
    ap.add_argument("--k", type=int, default=5, help="random styles per input")
    ap.add_argument("--out", default=None, help="JSON file (default: benchmark.json beside the checkpoint)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    model, _ = load_run(a.ckpt)
    try:
        distance = lpips_distance(download=False)
    except UserError as e:
        print(f"note: {e}\nnote: diversity is measured as mean absolute pixel difference instead (not LPIPS)")
        distance = l1_distance
    dm = BuiltinDigits()  # the config's data: digits -> colored-digits
    res = {d: measure(model, dm, d, a.k, distance) for d in ("AtoB", "BtoA")}
    cols = ["digit_random", "digit_ref", "diversity", "bg_ref", "bg_other"]
    print("| direction | " + " | ".join(cols) + " | distance |\n|---|" + "---|" * (len(cols) + 1))
    for d, r in res.items():
        print(f"| {d} | " + " | ".join(f"{r[c]:.3f}" for c in cols) + f" | {r['distance']} |")
    out = Path(a.out) if a.out else Path(a.ckpt).with_name("benchmark.json")
    out.write_text(json.dumps(res, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
