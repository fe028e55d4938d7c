#!/bin/bash
# The GPU checks, as one command for a lent GPU machine (about 8 minutes on an H200):
#   bash experiments/gpu_check.sh            # results under $OUT (default runs/gpu_check)
# 1. the README's goals for the fast paths: CycleGAN 256x256, batch 8, fp32 / bf16 / bf16+cl / bf16+cl+compile
#    (lit-i2i bench train; MFU against 989 TFLOP/s, dense bf16 of an H100/H200);
# 2. the quickstart end to end on the GPU in bf16 (its metrics at the end, against the CPU numbers);
# 3. fp16 (the gradient scaler) under the README's DDP strategy on one GPU, 60 steps;
# 4. batch 1 and other networks (pix2pix U-Net 256, MUNIT), fp32 against bf16+cl.
# Each part has its own limit (T1..T4 seconds) and is killed with SIGKILL at it, its output going to a file, not a
# pipe: on 2026-12-04 a `timeout` SIGTERM did not end a run inside torch.compile, and `| tee` then waited on the
# compile workers' copy of the pipe for the rest of the call. bench writes its JSON after every row.
# Without lit_i2i installed (a bare machine with torch, Lightning and torchmetrics), put the missing wheels in
# .whl/ (jsonargparse, docstring_parser, typeshed_client, torch_fidelity, submitit): they are installed to /tmp/site.
export PYTHONUNBUFFERED=1 WANDB_MODE=disabled
OUT=${OUT:-runs/gpu_check}; mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
  export PYTHONPATH=/tmp/site:$PWD
fi
LI="python3 -m lit_i2i.cli"
part() {  # part NAME LIMIT_S COMMAND...: runs it to $OUT/NAME.log, killed at the limit
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s)
  timeout -s KILL "$limit" "$@" > "$OUT/$name.log" 2>&1
  echo "[$name rc=$? $(( $(date +%s) - t0 )) s]" >> "$OUT/$name.log"
  tail -n 30 "$OUT/$name.log"
}
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import torch, pytorch_lightning as pl; print('torch', torch.__version__, 'pl', pl.__version__, torch.cuda.get_device_name())"
} > "$OUT/env.txt" 2>&1; cat "$OUT/env.txt"
part bench_cyclegan_b8 ${T1:-240} $LI bench train --accelerator gpu --configs experiments/cyclegan/horse2zebra.yaml \
  --variants fp32,bf16,bf16+cl,bf16+cl+compile --batch_sizes 8 --peak_tflops 989 --json "$OUT/bench_cyclegan_b8.json"
part fit_quickstart_bf16 ${T2:-100} $LI fit --config experiments/quickstart.yaml --trainer.accelerator gpu \
  --trainer.precision bf16-mixed --trainer.logger false --trainer.default_root_dir "$OUT/quickstart_bf16"
cp "$OUT/quickstart_bf16/metrics.json" "$OUT/quickstart_bf16_metrics.json" 2>/dev/null
part fit_ddp_fp16 ${T3:-60} $LI fit --config experiments/quickstart.yaml --trainer.accelerator gpu \
  --trainer.precision 16-mixed --trainer.strategy ddp_find_unused_parameters_true --trainer.devices 1 \
  --trainer.max_steps 60 --trainer.logger false --trainer.default_root_dir "$OUT/quickstart_ddp_fp16"
part bench_others ${T4:-120} $LI bench train --accelerator gpu --configs experiments/cyclegan/horse2zebra.yaml \
  experiments/pix2pix/facades.yaml experiments/munit/edges2shoes.yaml --variants fp32,bf16+cl --batch_sizes 1,8 \
  --peak_tflops 989 --no_flops --json "$OUT/bench_others.json"
