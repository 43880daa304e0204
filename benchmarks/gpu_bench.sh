#!/usr/bin/env bash
# Issue 8's GPU figures in one go: install from the working tree, build a real store (the demo's stdlib corpus),
# then for each model size train from make_dataloader and from batches already on the GPU, and measure the loader
# alone on the CPUs (1 process, 8 processes). Results: $OUT/*.json and a table at the end.
#
#   bash benchmarks/gpu_bench.sh OUT_DIR [MODELS...]        # MODELS default: 124m 20m 10m
#
# Knobs (environment): STEPS (timed steps + warm-up), WARMUP, WORKERS (DataLoader workers per process),
# DEVICE (cuda|cpu: cpu for a dry run), MAX_MB (corpus cap), LOADER_SECONDS, SEQ.
set -uo pipefail
OUT=${1:?usage: gpu_bench.sh OUT_DIR [MODELS...]}
shift
MODELS=${*:-124m 20m 10m}
STEPS=${STEPS:-300}
WARMUP=${WARMUP:-50}
WORKERS=${WORKERS:-4}
DEVICE=${DEVICE:-cuda}
MAX_MB=${MAX_MB:-32}
SEQ=${SEQ:-1024}
LOADER_SECONDS=${LOADER_SECONDS:-10}
DATA=${DATA:-/tmp/shardstore-gpu-data}
mkdir -p "$OUT" "$DATA"
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1

if [ "$DEVICE" = cuda ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
  python3 -c "import torch, os; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cpus', os.cpu_count())" \
    | tee -a "$OUT/gpu.txt"
fi

# A real store: the demo's pipeline on the stdlib, then a seq_len $SEQ mixture over the same two stores.
if [ ! -f "$DATA/report.json" ]; then
  python3 -m shardstore demo --out "$DATA" --max-mb "$MAX_MB" --steps 20 --no-progress > "$OUT/demo.txt" 2>&1 \
    || { tail -30 "$OUT/demo.txt"; exit 1; }
fi
tail -12 "$OUT/demo.txt" 2>/dev/null
sed "s/^seq_len = .*/seq_len = $SEQ/" "$DATA/mix.toml" > "$DATA/mix_gpu.toml"

batch_for() {  # global batch per model: enough work per step to keep an H200 busy
  case $1 in 124m) echo 32 ;; 20m) echo 64 ;; 10m) echo 64 ;; *) echo 8 ;; esac
}

for m in $MODELS; do
  b=$(batch_for "$m")
  for data in gpu-synthetic loader; do
    echo "== $m $data batch $b"
    python3 benchmarks/train_gpt.py --mix "$DATA/mix_gpu.toml" --model "$m" --data "$data" --batch-size "$b" \
      --steps "$STEPS" --warmup-steps "$WARMUP" --num-workers "$WORKERS" --device "$DEVICE" --log-every 50 \
      --metrics-log "$OUT/metrics-$m-$data.jsonl" --summary-json "$OUT/$m-$data.json" 2>&1 | tail -4
  done
done

echo "== loader alone on the CPUs"
python3 benchmarks/bench_loader_cpu.py --mix "$DATA/mix_gpu.toml" --batch-size 32 --procs 1 8 \
  --num-workers 0 1 --seconds "$LOADER_SECONDS" --work-dir "$DATA" --json "$OUT/loader_cpu.json"

python3 - "$OUT" $MODELS <<'EOF'
import json, sys
from pathlib import Path
out, models = Path(sys.argv[1]), sys.argv[2:]
print(f"{'model':>6} {'params':>8} {'batch':>5} {'synthetic tok/s':>16} {'loader tok/s':>13} {'ratio':>7} "
      f"{'host wait':>10} {'GPU gap loader':>15} {'GPU gap synth':>14}")
pct = lambda v: f"{100 * v:.3f}%" if v is not None else "n/a"
for m in models:
    try:
        s = json.loads((out / f"{m}-gpu-synthetic.json").read_text())
        l = json.loads((out / f"{m}-loader.json").read_text())
    except FileNotFoundError as exc:
        print(f"{m:>6} missing: {exc}")
        continue
    print(f"{m:>6} {s['params']/1e6:7.1f}M {l['global_batch']:>5} {s['tokens_per_s']/1e6:15.3f}M "
          f"{l['tokens_per_s']/1e6:12.3f}M {l['tokens_per_s']/s['tokens_per_s']:7.4f} {pct(l['data_wait_frac']):>10} "
          f"{pct(l.get('gpu_data_gap_frac')):>15} {pct(s.get('gpu_data_gap_frac')):>14}")
EOF
