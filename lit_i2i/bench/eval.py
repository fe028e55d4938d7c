"""``lit-i2i bench eval``: the cost of one evaluation pass, without and with the real-feature cache.

It times the built-in digits' metrics (the digit classifier's features; ``--metrics fid,kid`` for
Inception, whose weights need a download) over ``--n`` real and ``--n`` translated images (an
identity "model"), first with no cached real features and then with them, checks that both give the
same numbers, and prints images/s of the feature extraction alone.
"""

from __future__ import annotations

import math
import tempfile
import time

import torch
from torch import nn


class _Identity(nn.Module):
    """A stand-in 'model' for the benchmark: translate() returns its input."""

    directions = ("AtoB",)
    method_name = "identity"

    def translate(self, x, direction="AtoB", reference=None):
        return x


def bench_eval_main(argv: list[str]) -> int:
    from lit_i2i.cli import CommandParser
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
