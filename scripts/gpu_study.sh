#!/usr/bin/env bash
# Run studies/gpu.yaml on one GPU from the bundle of scripts/gpu_bundle.sh, several workers at
# once (each takes every N-th cell), then write results.csv / results.md in RESULTS_DIR.
#   bash scripts/gpu_study.sh RESULTS_DIR [WORKERS=6] [STUDY=studies/gpu.yaml]
# On the lent GPU machine (device tool): carry .gpu; runs are large and only 8 files come back
# from $OUT, so use RESULTS_DIR=/tmp/gpu-runs and copy results.csv, results.md and the logs
# to $OUT afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: gpu_study.sh RESULTS_DIR [WORKERS] [STUDY]}"
workers="${2:-6}"
study="${3:-studies/gpu.yaml}"
[ -d .gpu/encoder ] || { echo "gpu_study: no .gpu bundle; run scripts/gpu_bundle.sh first" >&2; exit 2; }
py=python3
if [ -x .venv/bin/python ]; then py=.venv/bin/python; fi
if ! $py -c "import datasets" 2>/dev/null; then
  $py -m pip install -q --no-index --no-deps --target /tmp/lcl-site .gpu/whl/*.whl
  export PYTHONPATH="/tmp/lcl-site${PYTHONPATH:+:$PYTHONPATH}"
fi
payload=/tmp/lcl-gpu-payload
rm -rf "$payload" && mkdir -p "$payload" && tar -C "$payload" -xJf .gpu/payload.tar.xz
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" LCL_DATA_DIR="$payload/data" LCL_CACHE_DIR="$payload/cache"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=2 TOKENIZERS_PARALLELISM=false
mkdir -p "$out"
pids=()
for ((i = 0; i < workers; i++)); do
  $py -m lcl study "$study" --output-dir "$out" --shard "$i/$workers" > "$out/worker$i.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
$py -m lcl study "$study" --output-dir "$out" --dry-run > "$out/collect.log" 2>&1 || status=1
cat "$out/results.md"
exit $status
