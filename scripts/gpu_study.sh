#!/usr/bin/env bash
# Run a study (default studies/gpu.yaml) on one GPU from the bundle of scripts/gpu_bundle.sh,
# with the bundle's encoder, several workers at once (each takes every N-th cell), then write
# results.csv / results.md in RESULTS_DIR. Cells already finished in RESULTS_DIR are skipped, so
# RESULTS_DIR may be the study's own output_dir to finish a study begun on a CPU.
#   bash scripts/gpu_study.sh RESULTS_DIR [WORKERS=6] [STUDY=studies/gpu.yaml]
# On a lent GPU machine that sends back only a few files: carry .gpu, and afterwards pack each
# finished run's small files (metrics.json, config.yaml, history.json, confusability.json) into
# one archive to unpack here; models and predictions stay there.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: gpu_study.sh RESULTS_DIR [WORKERS] [STUDY]}"
workers="${2:-6}"
study="${3:-studies/gpu.yaml}"
[ -d .gpu/encoder ] || { echo "gpu_study: no .gpu bundle; run scripts/gpu_bundle.sh first" >&2; exit 2; }
py=python3
if [ -x .venv/bin/python ]; then py=.venv/bin/python; fi
# a scratch folder of this launch's own, so two launches (two studies) can run side by side
scratch="$(mktemp -d /tmp/lcl-gpu.XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
if ! $py -c "import datasets" 2>/dev/null; then
  $py -m pip install -q --no-index --no-deps --target "$scratch/site" .gpu/whl/*.whl
  export PYTHONPATH="$scratch/site${PYTHONPATH:+:$PYTHONPATH}"
fi
mkdir -p "$scratch/payload" && tar -C "$scratch/payload" -xJf .gpu/payload.tar.xz
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" LCL_DATA_DIR="$scratch/payload/data"
export LCL_CACHE_DIR="$scratch/payload/cache" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" TOKENIZERS_PARALLELISM=false
mkdir -p "$out"
# the study as written, but with the bundle's encoder (cells keep their names and places)
gpu_study="$scratch/$(basename "$study")"
$py - "$study" "$gpu_study" <<'PY'
import sys, yaml
spec = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
spec["base"] = {**(spec.get("base") or {}), "model": ".gpu/encoder"}
spec["base"].setdefault("eval_batch_size", 256)
yaml.safe_dump(spec, open(sys.argv[2], "w", encoding="utf-8"), sort_keys=False)
PY
study="$gpu_study"
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
