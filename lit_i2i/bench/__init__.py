"""``lit-i2i bench``: the benchmarks (printed tables, not tests), in one home.

  - ``bench train`` (:mod:`lit_i2i.bench.train`): training throughput per config, the Trainer
    against a plain PyTorch loop (``--compare bare``, :mod:`lit_i2i.bench.bare`), precision and the
    fast paths of :mod:`lit_i2i.core.fast`, peak memory, FLOPs and MFU;
  - ``bench data`` (:mod:`lit_i2i.bench.data`): the training loader alone against the step's
    consumption, per ``num_workers``, with and without the decoded-image cache;
  - ``bench eval`` (:mod:`lit_i2i.bench.eval`): one evaluation pass without and with the real-feature
    cache.

The benchmarks use the CLI's helpers (``lit_i2i.cli``); the CLI imports this package only to
dispatch ``lit-i2i bench``.
"""

from __future__ import annotations

MODES = {"train": "training throughput per config (and --compare bare)",
         "data": "the training loader alone, per num_workers",
         "eval": "one evaluation pass, without and with the feature cache"}


def main(argv: list[str]) -> int:
    from lit_i2i.cli import CommandParser

    ap = CommandParser(prog="lit-i2i bench", description="Benchmarks (printed tables, not tests): "
                       + "; ".join(f"{k}: {v}" for k, v in MODES.items()))
    ap.add_argument("what", choices=list(MODES))
    if not argv or argv[0] not in MODES:  # --help, or one line naming the modes
        ap.parse_args(argv[:1])
    what, rest = argv[0], argv[1:]
    if what == "train":
        from lit_i2i.bench.train import bench_train_main

        return bench_train_main(rest)
    if what == "data":
        from lit_i2i.bench.data import bench_data_main

        return bench_data_main(rest)
    from lit_i2i.bench.eval import bench_eval_main

    return bench_eval_main(rest)
