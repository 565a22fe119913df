#!/usr/bin/env bash
# The prepared GPU call for issue 15 (base scale, studies/mpnet.yaml): the cells no CPU session
# finishes, in the issue's order (GoEmotions and ED-32 two-encoder LCL seed 0), then two-encoder
# LCL on SST-5 and SST-2, seeds 0-2, where the targets are missed and "best LCL" could move (every
# CE and LCL-self cell of the full datasets finished on the CPU, GoEmotions' LCL self last, in
# stop 67; ISEAR's two-encoder seed 0 in stop 66). Eight cells, one worker each, in four
# scripts/gpu_study.sh
# launches side by side under MPS (one launch per cross-product selection), in bf16 autocast as
# the CPU cells ran; a cell already finished here is skipped there. Written for a lease that could
# not start (stop 51): not yet run. Run it there, in the call that carries the last part of the bundle:
#   here:  bash scripts/gpu_bundle.sh --model mpnet studies/mpnet.yaml   (6 parts of <= 40 MiB)
#   there: bash scripts/gpu_mpnet_lease.sh TIME_LIMIT_S   (e.g. 40 s under the call's timeout_s)
# It joins the parts (when .gpu/ is not there yet), logs nvidia-smi every 30 s, and leaves in $OUT
# one archive per launch (goe.tgz, ed.tgz, sst.tgz, lcl.tgz: `tar -xzf` each in the repository's
# root here), the launches' logs and smi.log. A cell the time limit stops is lost with the machine.
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 1 ] && [[ "$1" =~ ^[1-9][0-9]*$ ]] || { echo "usage: gpu_mpnet_lease.sh TIME_LIMIT_S" >&2; exit 2; }
[ -n "${OUT:-}" ] && [ -d "$OUT" ] || { echo "gpu_mpnet_lease: \$OUT (the device tool's return folder) is not set" >&2; exit 2; }
limit="$1"
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
[ -d .gpu ] || bash scripts/gpu_parts.sh join || exit 2
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
runs=studies/runs/mpnet
study=studies/mpnet.yaml
common=(--precision bf16 --time-limit "$limit" --checkpoint-minutes 60 --mps)
(while sleep 30; do
  echo "$(date -u +%T) $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader)"
done) > "$OUT/smi.log" 2>&1 &
smi=$!
launch() { # NAME WORKERS SELECT...
  local name="$1" workers="$2"
  shift 2
  bash scripts/gpu_study.sh "${common[@]}" --pack "$OUT/$name.tgz" "$runs" "$workers" "$study" -- "$@" \
    > "$OUT/$name.log" 2>&1 &
}
launch goe 1 --only goemotions --variant lcl --seed 0
launch ed 1 --only empathetic_dialogues --variant lcl --seed 0
launch sst 4 --only sst5 --only sst2 --variant lcl --seed 1 --seed 2
launch lcl 2 --only sst5 --only sst2 --variant lcl --seed 0
sleep 120 && echo "--- 120 s in" && tail -qc 300 "$runs"/gpu-logs/*/worker*.log | tr '\r' '\n' | grep -a 'it\]' | tail -12 &
wait $(jobs -p | grep -v "^$smi\$")
kill "$smi" 2>/dev/null
cat "$OUT/smi.log"
for name in goe ed sst lcl; do echo "=== $name" && tail -4 "$OUT/$name.log"; done
