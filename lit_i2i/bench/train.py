"""``lit-i2i bench train``: training throughput of experiment configs (a benchmark, not a test).

For each config it builds the model and data as ``lit-i2i fit`` would (the YAML's ``model`` and
``data`` sections), trains ``--steps`` batches after ``--warmup`` untimed ones and prints images/s,
the peak memory (CUDA: allocated, over the timed steps; CPU: the peak resident set of one training
step in a fresh process, less its size before the model and data were built), the FLOPs of
one training step (``torch.utils.flop_counter``'s formulas, forward and backward of every network) and, given
``--peak_tflops`` (the device's peak for the precision used), the model FLOP utilisation. ::

    lit-i2i bench train --configs experiments/quickstart.yaml experiments/pix2pix/digits.yaml
    lit-i2i bench train --compare bare --repeats 3            # the suite's cost against a plain loop
    lit-i2i bench train --accelerator gpu --configs experiments/cyclegan/horse2zebra.yaml \\
        --batch_sizes 1,8 --peak_tflops 989                   # fp32, bf16, +channels_last, +compile

The Trainer side runs as ``lit-i2i fit`` does per step: the method's callbacks, a logger (CSV, in a
temporary folder, at the config's ``log_every_n_steps``) and the progress bar (its output discarded);
``--lean`` turns the logger and the bar off. Grids, checkpoints and metrics run at intervals, not per
step, and are left out.

``--compare bare`` also runs each config in :class:`lit_i2i.bench.bare.BareLoop` (the method's own
``training_step`` without the Trainer), the two interleaved in alternating order (bare, Trainer, Trainer, bare, ...)
``--repeats`` times, each time from a fresh model; it prints the Trainer/bare ratio of images/s (the
median of the repeats, with their range).

``--variants``: a comma list of ``fp32``, ``bf16``, ``fp16``, each optionally with ``+cl``
(channels-last), ``+compile`` (torch.compile of the networks) and ``+fused`` (fused optimizers): the
options of ``lit_i2i.core.fast``. Default ``fp32``; on a GPU, ``fp32,bf16,bf16+cl,bf16+cl+compile``.
On a GPU every variant runs with cuDNN's autotuner (``--trainer.benchmark true`` in a fit) and the batch sizes default to 1 and 8 (``--batch_sizes``). ``--synthetic SIZE``: the config's first
batch resized to SIZExSIZE, repeated (random A/B images when
the config's data is not on this machine); on a GPU the default is 256, or the model's ``img_size``
when it has one (the 128-px methods). Steps of methods with phases (TUNIT's guiding-only warm-up,
OST's two phases) are those of the run's first iterations.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
import yaml
from torch.utils._python_dispatch import TorchDispatchMode

from lit_i2i.bench.bare import sync
from lit_i2i.errors import UserError

DEFAULT_CONFIGS = ["experiments/quickstart.yaml", "experiments/cyclegan/digits.yaml", "experiments/pix2pix/digits.yaml"]
PRECISIONS = {"fp32": "32-true", "bf16": "bf16-mixed", "fp16": "16-mixed"}
GPU_VARIANTS = "fp32,bf16,bf16+cl,bf16+cl+compile"


def parse_variant(v: str) -> dict:
    """``bf16+cl+compile`` -> {precision, channels_last, compile, fused}."""
    parts = v.split("+")
    if parts[0] not in PRECISIONS or any(p not in ("cl", "compile", "fused") for p in parts[1:]):
        raise UserError(f"--variants: {v!r} is not a precision ({', '.join(PRECISIONS)}) followed by optional "
                        "+cl, +compile, +fused")
    return {"name": v, "precision": PRECISIONS[parts[0]], "channels_last": "cl" in parts[1:],
            "compile": "compile" in parts[1:], "fused": "fused" in parts[1:]}


class _Timer(pl.Callback):
    """Times ``steps`` training batches after ``warmup`` ones; stops the fit after them."""

    def __init__(self, warmup: int, steps: int, memory: _PeakMemory):
        self.warmup, self.steps, self.memory = warmup, steps, memory
        self.t0 = self.elapsed = None
        self.n = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        done = trainer.fit_loop.total_batch_idx + 1
        if done == self.warmup:
            sync(pl_module.device)
            self.memory.start(pl_module.device)
            self.t0 = time.perf_counter()
        elif self.t0 is not None and self.elapsed is None:
            self.n += 1
            if self.n >= self.steps:
                sync(pl_module.device)
                self.elapsed = time.perf_counter() - self.t0
                self.memory.stop()
                trainer.should_stop = True

    def rate(self) -> float:
        return self.n / self.elapsed if self.elapsed else float("nan")


class _PeakMemory:
    """Peak memory between start() and stop(): CUDA's allocated peak; on a CPU the process's peak
    resident set over the window (Linux: the VmHWM high-water mark, reset at start() through
    /proc/self/clear_refs; no sampling thread to compete with the step) less its size before the
    model and data were built (``baseline``): what building and training the config added. NaN where
    the kernel offers neither, and on a CPU without a ``baseline`` (the timed windows: their CPU
    column comes from the fresh-process probe, :meth:`Run.probe`)."""

    def __init__(self, baseline: float | None = None):
        self.peak_mib = float("nan")
        self.baseline = baseline
        self._reset = False

    def start(self, device: torch.device) -> None:
        self.device = torch.device(device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        if self.baseline is None:
            return
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset the peak-RSS mark
            self._reset = True
        except OSError:
            self._reset = False

    def stop(self) -> None:
        if self.device.type == "cuda":
            self.peak_mib = torch.cuda.max_memory_allocated(self.device) / 2**20
        elif self._reset and self.baseline == self.baseline:  # NaN: no /proc
            self.peak_mib = max(0.0, _proc_status("VmHWM") - self.baseline) / 2**20


def _proc_status(key: str) -> float:
    """A memory line of /proc/self/status in bytes (NaN without /proc)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float("nan")


class _Repeat(pl.LightningDataModule):
    """One batch (``samples``, a list of per-item dicts), served over and over (``--synthetic``)."""

    def __init__(self, samples: list[dict], batch_size: int, n: int = 100_000):
        super().__init__()
        self.samples, self.batch_size, self.n = samples, batch_size, n

    def train_dataloader(self):
        samples, n = self.samples, self.n

        class DS(torch.utils.data.Dataset):
            def __len__(_):
                return n

            def __getitem__(_, i):
                return samples[i % len(samples)]

        return torch.utils.data.DataLoader(DS(), batch_size=self.batch_size, shuffle=False, drop_last=True)


def synthetic_data(cfg: dict, size: int, bs: int):
    """The config's first training batch with its images resized to ``size`` (random unpaired A/B
    images when the config's data cannot be built here), as a datamodule repeating it."""
    from lit_i2i.cli import instantiate

    try:
        dm = instantiate({"class_path": cfg["data"]["class_path"],
                          "init_args": {**(cfg["data"].get("init_args") or {}), "batch_size": bs, "num_workers": 0}})
        dm.setup("fit")
        batch = next(iter(dm.train_dataloader()))
    except (UserError, OSError, StopIteration):
        batch = {"A": torch.rand(bs, 3, size, size) * 2 - 1, "B": torch.rand(bs, 3, size, size) * 2 - 1}
    resized = {k: (torch.nn.functional.interpolate(v, size=(size, size), mode="bilinear", align_corners=False)
                   if torch.is_tensor(v) and v.ndim == 4 and v.is_floating_point() else v) for k, v in batch.items()}
    samples = [{k: v[i] for k, v in resized.items()} for i in range(bs)]
    return _Repeat(samples, bs)


class Run:
    """One (config, batch size, variant): fresh model and data for every measurement."""

    def __init__(self, cfg_path: Path, bs: int, variant: dict, a, cfg: dict | None = None):
        self.path, self.bs, self.variant, self.a = cfg_path, bs, variant, a
        self.cfg = cfg if cfg is not None else yaml.safe_load(cfg_path.read_text())
        self.size = a.synthetic
        self.steps = a.steps

    def fresh(self):
        from lit_i2i.cli import instantiate
        from lit_i2i.core.fast import apply_fast_paths

        pl.seed_everything(0, verbose=False)
        model = instantiate(self.cfg["model"])
        if self.size is None and self.a.accelerator_type == "cuda":
            self.size = int(getattr(model, "hparams", {}).get("img_size", 256) or 256)
        if self.size:
            dm = synthetic_data(self.cfg, self.size, self.bs)
        else:
            data_args = {**(self.cfg["data"].get("init_args") or {}), "batch_size": self.bs}
            dm = instantiate({"class_path": self.cfg["data"]["class_path"], "init_args": data_args})
        v = self.variant
        return model, dm, lambda m: apply_fast_paths(m, v["channels_last"], v["compile"], self.a.compile_backend,
                                                     None, v["fused"])

    def trainer_rate(self) -> tuple[float, float]:
        from lit_i2i.core.fast import FastPaths

        memory = _PeakMemory()
        model, dm, _ = self.fresh()
        v, a = self.variant, self.a
        timer = _Timer(a.warmup, self.steps, memory)
        fast = FastPaths(v["channels_last"], v["compile"], a.compile_backend, None, v["fused"])
        quiet = contextlib.ExitStack()
        quiet.enter_context(contextlib.redirect_stderr(io.StringIO()))  # the progress bar's output: discarded
        quiet.enter_context(contextlib.redirect_stdout(io.StringIO()))
        with tempfile.TemporaryDirectory() as tmp, quiet:
            logger = False if a.lean else pl.loggers.CSVLogger(tmp, name="bench")
            every = int((self.cfg.get("trainer") or {}).get("log_every_n_steps", 50))
            trainer = pl.Trainer(accelerator=a.accelerator, devices=1, precision=v["precision"], max_epochs=-1,
                                 max_steps=-1, limit_val_batches=0, num_sanity_val_steps=0, logger=logger,
                                 log_every_n_steps=every, enable_checkpointing=False,
                                 enable_progress_bar=not a.lean, enable_model_summary=False,
                                 callbacks=[timer, fast], default_root_dir=tmp,
                                 benchmark=True if a.accelerator_type == "cuda" else None)
            trainer.fit(model, dm)
        self.device = model.device
        return timer.rate(), memory.peak_mib

    def bare_rate(self) -> tuple[float, float]:
        from lit_i2i.bench.bare import BareLoop

        memory = _PeakMemory()
        model, dm, fast = self.fresh()
        fast(model)
        loop = BareLoop(model, dm, self.a.device, self.variant["precision"], self.variant["channels_last"])
        loop.run(self.a.warmup)
        sync(loop.device)
        memory.start(loop.device)
        t0 = time.perf_counter()
        n = loop.run(self.steps)
        sync(loop.device)
        dt = time.perf_counter() - t0
        memory.stop()
        return (n / dt if n else float("nan")), memory.peak_mib

    def step_seconds(self) -> float:
        """Seconds per batch of the bare loop after the warm-up (3 batches timed): the calibration of
        ``--min_seconds``."""
        from lit_i2i.bench.bare import BareLoop

        model, dm, fast = self.fresh()
        fast(model)
        loop = BareLoop(model, dm, self.a.device, self.variant["precision"], self.variant["channels_last"])
        return 1.0 / loop.timed(self.a.warmup, 3)

    def probe(self) -> tuple[float, float]:
        """(FLOPs of one training step, the peak resident memory of that step less the process's
        size before the model was built, MiB) from one eager fp32 step of the bare loop after one
        untimed step. On a CPU this runs in a fresh process (``python -m lit_i2i.bench.train
        --probe``), so that the memory is this config's alone: a process that trained other configs
        keeps their freed memory and shows no growth."""
        if self.a.accelerator_type == "cuda":
            return self._probe_here()[0], float("nan")
        import subprocess
        import sys

        spec = {"config": str(self.path), "cfg": self.cfg, "batch": self.bs, "size": self.size}
        out = subprocess.run([sys.executable, "-m", "lit_i2i.bench.train", "--probe", json.dumps(spec)],
                             capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(
                                 torch.get_num_threads())})
        line = next((x for x in out.stdout.splitlines() if x.startswith("probe ")), None)
        if out.returncode or line is None:
            tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"the probe process failed: {tail}")
        flops, peak = json.loads(line[len("probe "):])
        return float(flops), float(peak)

    def _probe_here(self) -> tuple[float, float]:
        from lit_i2i.bench.bare import BareLoop

        baseline = _proc_status("VmRSS")
        model, dm, _ = self.fresh()
        loop = BareLoop(model, dm, self.a.device, "32-true")
        loop.run(1)
        memory = _PeakMemory(baseline)
        memory.start(loop.device)
        with FlopCount() as counter:
            loop.run(1)
        memory.stop()
        return float(counter.total), memory.peak_mib


def _probe_main(spec_json: str) -> int:
    """The child of :meth:`Run.probe`: prints ``probe [flops, peak_mib]``."""
    from types import SimpleNamespace

    quiet()
    spec = json.loads(spec_json)
    a = SimpleNamespace(accelerator="cpu", accelerator_type="cpu", device="cpu", synthetic=spec["size"],
                        steps=1, warmup=1, compile_backend="inductor", lean=True)
    run = Run(Path(spec["config"]), int(spec["batch"]), parse_variant("fp32"), a, cfg=spec["cfg"])
    print("probe " + json.dumps(list(run._probe_here())), flush=True)
    return 0


class FlopCount(TorchDispatchMode):
    """Counts the FLOPs of every op with a formula in ``torch.utils.flop_counter`` (convolutions,
    matrix products, attention), as ``FlopCounterMode`` does, but without its module tracking, which
    refuses ``autograd.grad`` (R1 and WGAN-GP penalties)."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        from torch.utils.flop_counter import flop_registry

        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def bench_train_main(argv: list[str]) -> int:
    from lit_i2i.cli import CommandParser

    ap = CommandParser(prog="lit-i2i bench train", description=__doc__.split("\n\n")[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS)
    ap.add_argument("--steps", type=int, default=30, help="timed batches")
    ap.add_argument("--warmup", type=int, default=5, help="untimed batches first")
    ap.add_argument("--min_seconds", type=float, default=0.0,
                    help="time at least this long: --steps is raised for the config (the same count for every "
                         "measurement of it) from a calibration of the bare loop's step time")
    ap.add_argument("--accelerator", default="auto", help="cpu, gpu or auto")
    ap.add_argument("--variants", default=None, help=f"comma list (default fp32; on a GPU {GPU_VARIANTS})")
    ap.add_argument("--batch_sizes", default=None, help="comma list (default: each config's batch size; on a GPU 1,8)")
    ap.add_argument("--synthetic", type=int, default=None, metavar="SIZE",
                    help="the config's first batch resized to SIZExSIZE, repeated (default on a GPU: 256, or the "
                         "model's img_size)")
    ap.add_argument("--compare", choices=["bare"], default=None, help="also time the plain PyTorch loop")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved bare/Trainer pairs (with --compare)")
    ap.add_argument("--lean", action="store_true", help="Trainer side without logger and progress bar")
    ap.add_argument("--compile_backend", default="inductor")
    ap.add_argument("--peak_tflops", type=float, default=None, help="the device's peak TFLOP/s, for MFU")
    ap.add_argument("--no_flops", action="store_true", help="skip counting FLOPs")
    ap.add_argument("--json", default=None, metavar="FILE", help="also write the rows as JSON")
    a = ap.parse_args(argv)
    quiet()
    if a.steps < 1 or a.warmup < 1 or a.repeats < 1:
        raise UserError("--steps, --warmup and --repeats must be at least 1")
    use_cuda = a.accelerator in ("gpu", "cuda") or (a.accelerator == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise UserError("--accelerator gpu: no CUDA device is visible")
    a.accelerator_type = "cuda" if use_cuda else "cpu"
    if use_cuda:  # fixed-size inputs: cuDNN's autotuner for every variant (fit: --trainer.benchmark true)
        torch.backends.cudnn.benchmark = True
    a.device = "cuda" if use_cuda else "cpu"
    variants = [parse_variant(v) for v in (a.variants or (GPU_VARIANTS if use_cuda else "fp32")).split(",") if v]
    if a.compare and any(v["precision"] == "16-mixed" for v in variants):
        raise UserError("--compare bare: fp16 (a gradient scaler) is not offered by the bare loop; use fp32 or bf16")
    for c in a.configs:
        if not Path(c).is_file():
            raise UserError(f"--configs: file not found: {c}")
    rows, failed = [], 0
    for cfg_path in map(Path, a.configs):
        cfg = yaml.safe_load(cfg_path.read_text())
        sizes = ([int(b) for b in a.batch_sizes.split(",")] if a.batch_sizes else [1, 8] if use_cuda else
                 [int((cfg["data"].get("init_args") or {}).get("batch_size", 1))])
        for bs in sizes:
            flops, probe_mib = None, float("nan")
            for v in variants:
                run = Run(cfg_path, bs, v, a)
                trainer_rates, bare_rates, mems = [], [], []
                try:
                    if a.min_seconds > 0:
                        run.steps = max(a.steps, math.ceil(a.min_seconds / run.step_seconds()))
                    if flops is None and not a.no_flops:
                        try:
                            flops, probe_mib = run.probe()
                        except Exception as e:  # noqa: BLE001 - an op the counter cannot trace: say so, go on
                            print(f"bench: FLOPs of {cfg_path} not counted ({type(e).__name__}: {e})")
                            flops, probe_mib = float("nan"), float("nan")
                    for r in range(a.repeats if a.compare else 1):
                        # pairs in alternating order (bare first, then Trainer first, ...): no side always goes first
                        for side in (("bare", "trainer") if r % 2 == 0 else ("trainer", "bare")) if a.compare \
                                else ("trainer",):
                            rate, mem = run.bare_rate() if side == "bare" else run.trainer_rate()
                            (bare_rates if side == "bare" else trainer_rates).append(rate)
                            if side == "trainer":
                                mems.append(mem)
                except (UserError, ValueError, RuntimeError) as e:  # a size the net refuses, out of memory, ...
                    # one line, and the other rows still run (a GPU's time is short)
                    failed += 1
                    print(f"bench: {cfg_path.as_posix()} {v['name']} batch {bs}: failed "
                          f"({type(e).__name__}: {' '.join(str(e).split())[:300]})", flush=True)
                    if torch.cuda.is_available():
                        torch.cuda.empty_cache()
                    continue
                tr = statistics.median(trainer_rates)
                row = {"config": cfg_path.as_posix(), "method": _method(run.cfg), "variant": v["name"], "batch": bs,
                       "steps": run.steps,
                       "size": run.size, "trainer_img_s": tr * bs, "trainer_img_s_all": [r * bs for r in trainer_rates],
                       "peak_mib": max(mems) if use_cuda else probe_mib, "gflop_step": (flops or float("nan")) / 1e9,
                       "device": str(run.device), "threads": torch.get_num_threads()}
                if a.compare:
                    ratios = [t / b for t, b in zip(trainer_rates, bare_rates)]
                    row.update(bare_img_s=statistics.median(bare_rates) * bs, ratio=statistics.median(ratios),
                               ratio_min=min(ratios), ratio_max=max(ratios))
                if a.peak_tflops and flops:
                    row["mfu"] = flops * tr / (a.peak_tflops * 1e12)
                rows.append(row)
                print(_line(row, a), flush=True)
                if a.json:  # after every row: a run cut off by a time limit keeps what it measured
                    Path(a.json).write_text(json.dumps(rows, indent=2) + "\n")
    print("\n" + _table(rows, a))
    if failed:
        print(f"bench: {failed} of the runs failed (their lines above)")
    return 1 if failed else 0


def quiet() -> None:
    """No Lightning banners (GPU available, the litlogger tip) between the bench's lines."""
    import logging

    from lit_i2i.cli import quiet_console

    quiet_console()
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _method(cfg: dict) -> str:
    return cfg["model"]["class_path"].rpartition(".")[2]


def _line(row: dict, a) -> str:
    s = f"bench: {row['config']} {row['variant']} batch {row['batch']}: {row['trainer_img_s']:.1f} img/s"
    if "ratio" in row:
        s += f", bare {row['bare_img_s']:.1f} img/s, Trainer/bare {row['ratio']:.3f}"
    s += f", peak {row['peak_mib']:.0f} MiB, {row['gflop_step']:.1f} GFLOP/step"
    if "mfu" in row:
        s += f", MFU {100 * row['mfu']:.1f}%"
    return s


def _table(rows: list[dict], a) -> str:
    head = f"{'config':<44} {'method':<14} {'variant':<16} {'batch':>5} {'size':>5} {'img/s':>8}"
    if a.compare:
        head += f" {'bare':>8} {'Trainer/bare':>18}"
    head += f" {'peak MiB':>9} {'GFLOP/step':>10}"
    if a.peak_tflops:
        head += f" {'MFU':>6}"
    lines = [head]
    for r in rows:
        s = (f"{r['config']:<44} {r['method']:<14} {r['variant']:<16} {r['batch']:>5} {r['size'] or '-'!s:>5} "
             f"{r['trainer_img_s']:>8.1f}")
        if a.compare:
            s += f" {r['bare_img_s']:>8.1f} {r['ratio']:>6.3f} ({r['ratio_min']:.2f}-{r['ratio_max']:.2f})"
        s += f" {r['peak_mib']:>9.0f} {r['gflop_step']:>10.2f}"
        if a.peak_tflops:
            s += f" {100 * r.get('mfu', float('nan')):>5.1f}%"
        lines.append(s)
    dev = rows[0]["device"] if rows else "-"
    steps = f"{a.steps} timed batches" + (f" (or more, to {a.min_seconds:g} s)" if a.min_seconds else "")
    lines.append(f"device {dev}, {torch.get_num_threads()} torch threads, {steps} after {a.warmup}"
                 + (f", median of {a.repeats} interleaved bare/Trainer pairs" if a.compare else "")
                 + ("; Trainer without logger/progress bar (--lean)" if a.lean else
                    "; Trainer with a CSV logger and the progress bar, as fit"))
    return "\n".join(lines)


if __name__ == "__main__":  # the probe child (Run.probe)
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "--probe":
        sys.exit(_probe_main(sys.argv[2]))
    sys.exit(bench_train_main(sys.argv[1:]))
