#!/usr/bin/env bash
# Run a study (default studies/gpu.yaml) on one GPU from the bundle of scripts/gpu_bundle.sh,
# with the bundle's encoder, several workers at once (each takes every N-th cell), then write
# results.csv / results.md in RESULTS_DIR. Cells already finished in RESULTS_DIR are skipped, so
# RESULTS_DIR may be the study's own output_dir to finish a study begun on a CPU.
#   bash scripts/gpu_study.sh [--precision P] [--time-limit S] [--checkpoint-minutes M] [--pack ARCHIVE] [--mps] RESULTS_DIR [WORKERS=6] [STUDY=studies/gpu.yaml] [-- SELECT...]
# SELECT: `lcl study`'s --only / --variant / --seed, to run a part of the grid; the workers share
# the selected cells (--shard splits those), so name as many workers as selected cells for one
# cell each (a lease too short for a worker's second cell).
# --precision {auto,fp32,bf16,fp16} becomes the study's base precision (a variant that names its
# own keeps it). Without it a study that names no precision runs in fp32, as the GPU cells of
# docs/RESULTS.md and the CPU cells before bf16 became `auto` on CPUs with native bf16 ran;
# `auto` there would be bf16 autocast (on a GPU that supports it: H100, H200), whose accuracy
# studies/gpu-precision.yaml checks. The contrastive losses compute in float32 either way.
# The bundle is .gpu/ (carried in the same call), or a bundle sent in parts and joined first
# with scripts/gpu_parts.sh join (see scripts/gpu_bundle.sh).
# --time-limit S stops the workers after S seconds (a lease ends; a stopped cell stays partial
# there), then results are collected as usual. With a time limit the cells save a resume checkpoint
# every 2 minutes of training (--checkpoint-minutes M to change it; without a limit, the study's
# own value, 30 by default): a cell stopped at the limit then loses at most that much, and the
# same command run again on the same machine resumes it (a lent machine keeps git-ignored
# outputs such as checkpoints/ between calls while it is warm: call again at once). --pack ARCHIVE.tgz then packs what a lent machine
# that sends back only a few files should return: the small files (metrics.json, config.yaml,
# history.json, confusability.json) of every run finished in RESULTS_DIR since this launch began
# (by it, or by a launch beside it), the results and the
# workers' logs; unpack it here with `tar -xzf ARCHIVE.tgz` in the repository's root. Models and
# predictions stay there. Workers log to RESULTS_DIR/gpu-logs/LAUNCH/ (ignored by git), beside
# state.tgz: the small files of the runs this launch finished and the config.yaml of every run
# left unfinished with a checkpoint. A later launch in RESULTS_DIR restores from it the files
# that are missing: the device tool's next call copies the working tree afresh but keeps ignored
# outputs, so a cell finished by the first call keeps its model/ but loses its metrics.json, and
# a stopped one keeps its checkpoints but loses the config.yaml that lets it resume.
# The exit status is 1 when a worker failed or was stopped at the time limit.
# --mps runs the workers under NVIDIA's Multi-Process Service, so that their kernels share the
# GPU at once instead of taking turns (a small encoder's steps leave most of an H100 idle). One
# MPS server (pipe /tmp/lcl-mps/pipe) serves every launch that asks for it, and lives until the
# machine goes back; where it cannot start, or a CUDA check under it fails, the launch says so
# and runs without it. Not yet measured on a lent GPU: compare `seconds_per_step` with and
# without it before relying on it.
set -euo pipefail
cd "$(dirname "$0")/.."
die() {
  echo "gpu_study: $*" >&2
  exit 2
}
usage="usage: gpu_study.sh [--precision P] [--time-limit S] [--checkpoint-minutes M] [--pack ARCHIVE] [--mps] RESULTS_DIR [WORKERS] [STUDY] [-- SELECT...]"
precision=""
limit=""
minutes=""
pack=""
mps=""
args=()
select=()
while [ $# -gt 0 ]; do
  case "$1" in
  --)
    shift
    select=("$@")
    break
    ;;
  --mps)
    mps=1
    shift
    ;;
  --precision | --time-limit | --checkpoint-minutes | --pack)
    [ $# -ge 2 ] || die "$1 needs a value ($usage)"
    case "$1" in
    --precision) precision="$2" ;;
    --time-limit) limit="$2" ;;
    --checkpoint-minutes) minutes="$2" ;;
    --pack) pack="$2" ;;
    esac
    shift 2
    ;;
  -*) die "unknown option $1 ($usage)" ;;
  *) args+=("$1") && shift ;;
  esac
done
[ ${#args[@]} -ge 1 ] && [ ${#args[@]} -le 3 ] || die "$usage"
case "$precision" in "" | auto | fp32 | bf16 | fp16) ;; *) die "--precision must be auto, fp32, bf16 or fp16, not '$precision'" ;; esac
[ -z "$limit" ] || [[ "$limit" =~ ^[1-9][0-9]*$ ]] || die "--time-limit takes whole seconds, not '$limit'"
[ -z "$minutes" ] || [[ "$minutes" =~ ^[0-9]*\.?[0-9]+$ && ! "$minutes" =~ ^[0.]+$ ]] ||
  die "--checkpoint-minutes takes a positive number of minutes, not '$minutes'"
[ -n "$minutes" ] || [ -z "$limit" ] || minutes=2
[ -z "$pack" ] || [[ "$pack" == *.tgz ]] || die "--pack names a .tgz archive, not '$pack'"
out="${args[0]}"
workers="${args[1]:-6}"
[[ "$workers" =~ ^[1-9][0-9]*$ ]] || die "WORKERS must be a whole number of at least 1, not '$workers'"
study="${args[2]:-studies/gpu.yaml}"
[ -f "$study" ] || die "no study file $study"
# the bundle's one encoder folder: encoder-NAME (encoder: bundles before the name was in it)
shopt -s nullglob
encoders=(.gpu/encoder-*/)
shopt -u nullglob
[ ! -d .gpu/encoder ] || encoders+=(.gpu/encoder/)
if [ ${#encoders[@]} -eq 0 ]; then
  [ ! -d .gpu.parts ] || die "no .gpu bundle yet: join its parts first (bash scripts/gpu_parts.sh join)"
  die "no .gpu bundle: make it with scripts/gpu_bundle.sh and carry .gpu (or send .gpu.parts)"
fi
[ ${#encoders[@]} -eq 1 ] || die "the .gpu bundle holds ${#encoders[@]} encoders; make it again"
encoder="${encoders[0]%/}"
echo "gpu_study: encoder $encoder, precision ${precision:-as the study says, else fp32}"
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
$py - "$study" "$gpu_study" "$encoder" "$precision" "$minutes" <<'PY'
import sys, yaml
spec = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
spec["base"] = {**(spec.get("base") or {}), "model": sys.argv[3]}
spec["base"].setdefault("eval_batch_size", 256)
if sys.argv[4]:
    spec["base"]["precision"] = sys.argv[4]
if sys.argv[5]:  # changes no result (an ignored field: a partial cell resumes under any value)
    spec["base"]["checkpoint_minutes"] = float(sys.argv[5])
spec["base"].setdefault("precision", "fp32")
yaml.safe_dump(spec, open(sys.argv[2], "w", encoding="utf-8"), sort_keys=False)
PY
study="$gpu_study"
logs="$out/gpu-logs/$(date -u +%Y%m%dT%H%M%S)-$$"
mkdir -p "$logs"
if [ -n "$mps" ]; then
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/lcl-mps/pipe CUDA_MPS_LOG_DIRECTORY=/tmp/lcl-mps/log
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
  servers=""
  if command -v nvidia-cuda-mps-control >/dev/null 2>&1; then
    # the first launch starts the control daemon; for the others it is already there
    if command -v flock >/dev/null 2>&1; then
      flock /tmp/lcl-mps/lock sh -c 'nvidia-cuda-mps-control -d >/dev/null 2>&1 || true'
    else
      nvidia-cuda-mps-control -d >/dev/null 2>&1 || true
    fi
    # a client starts the server; the daemon then lists it
    if timeout 60 $py -c "import torch; torch.ones(1, device='cuda').sum().item()" >/dev/null 2>&1; then
      servers="$(echo get_server_list | timeout 10 nvidia-cuda-mps-control 2>/dev/null || true)"
    fi
  fi
  if [ -n "$servers" ]; then
    echo "gpu_study: MPS on (server $servers)"
  else
    if command -v nvidia-cuda-mps-control >/dev/null 2>&1; then # a daemon that serves nothing
      echo quit | timeout 10 nvidia-cuda-mps-control >/dev/null 2>&1 || true
    fi
    unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
    echo "gpu_study: MPS is not available here; the workers take turns on the GPU" >&2
  fi
fi
# a lent machine's next call copies the working tree afresh but keeps git-ignored outputs: what
# earlier launches here left that git does not ignore comes back from their state.tgz (above)
root=.
[[ "$out" != /* ]] || root=/
shopt -s nullglob
for earlier in "$out"/gpu-logs/*/state.tgz; do tar -C "$root" -xzf "$earlier" --skip-old-files; done
shopt -u nullglob
# the cells the workers share, listed (a SELECT value the study lacks stops here, before any worker)
$py -m lcl study "$study" --output-dir "$out" --dry-run ${select[@]+"${select[@]}"} 2>&1 | tee "$logs/cells.log" ||
  die "the study or its SELECT is wrong (see above)"
touch "$scratch/started"
pids=()
for ((i = 0; i < workers; i++)); do
  $py -m lcl study "$study" --output-dir "$out" --shard "$i/$workers" ${select[@]+"${select[@]}"} \
    > "$logs/worker$i.log" 2>&1 &
  pids+=($!)
done
if [ -n "$limit" ]; then # the watchdog: the workers still running at the limit are stopped
  (sleep "$limit" && echo "gpu_study: time limit of $limit s reached: stopping the workers" >&2 &&
    kill "${pids[@]}" 2>/dev/null) &
  watchdog=$!
fi
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
[ -z "$limit" ] || kill "$watchdog" 2>/dev/null || true
$py -m lcl study "$study" --output-dir "$out" --dry-run > "$logs/collect.log" 2>&1 || status=1
cat "$out/results.md" 2>/dev/null || true
# runs finished since this launch began: their small files
find "$out" -name metrics.json -newer "$scratch/started" | while read -r m; do
  for f in metrics.json config.yaml history.json confusability.json; do
    [ ! -f "$(dirname "$m")/$f" ] || echo "$(dirname "$m")/$f"
  done
done > "$scratch/finished.list"
# with them in state.tgz (above), the config.yaml of every unfinished run with a checkpoint
find "$out" -name config.yaml -not -path "*/gpu-logs/*" | while read -r c; do
  [ -f "$(dirname "$c")/metrics.json" ] || ! compgen -G "$(dirname "$c")/checkpoints/checkpoint-*" >/dev/null || echo "$c"
done | cat "$scratch/finished.list" - > "$scratch/state.list"
[ ! -s "$scratch/state.list" ] || tar -czf "$logs/state.tgz" -T "$scratch/state.list" ||
  echo "gpu_study: could not write $logs/state.tgz: a later launch here cannot restore from it" >&2
if [ -n "$pack" ]; then # the finished runs, the results and the logs
  cp "$scratch/finished.list" "$scratch/pack.list"
  for f in results.csv results.md; do [ ! -f "$out/$f" ] || echo "$out/$f"; done >> "$scratch/pack.list"
  echo "$logs" >> "$scratch/pack.list"
  mkdir -p "$(dirname "$pack")"
  tar -czf "$pack" --exclude=state.tgz -T "$scratch/pack.list"
  echo "gpu_study: packed $(grep -c /metrics.json "$scratch/pack.list" || true) runs finished since this launch began into $pack"
fi
exit $status
