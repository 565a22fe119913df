#!/usr/bin/env bash
# Make the bundle that the given studies need on a GPU machine with no network: a float16 copy
# of the encoder in encoder-NAME/ (loaded back in float32 there), the dataset files and the
# synonym views of every training split of every seed (so no WordNet is needed there) in one xz
# archive (about 5 MiB), and the wheels of the few packages that machine lacks (datasets and
# its needs).
#   bash scripts/gpu_bundle.sh [--model NAME] [--part-mib N] [STUDY.yaml ...]
#     --model: the encoder, as `lcl export-encoder` takes it (default minilm; mpnet: the
#              base-size encoder of `scripts/setup.sh --mpnet`)
#     STUDY.yaml: default studies/gpu.yaml; data from $LCL_DATA_DIR or ../shared/data
# A call of the device tool moves the working tree and what it carries, 64 MiB in all:
# - A bundle that fits beside the working tree (MiniLM: about 50 MiB) is written as .gpu/; one
#   call carries it (carry: [".gpu"]) and runs scripts/gpu_study.sh.
# - A larger one (mpnet: about 215 MiB) is written as .gpu.parts/part-001 ... part-N (with
#   scripts/gpu_parts.sh: pieces of one tar of the bundle, each part folder with the sha256
#   manifest of all), each small enough to travel with the working tree (--part-mib N sets the
#   size). Send them one call after another, back to back (a machine stays warm only about 30 s
#   after a call, and a fresh one has none of the parts), each call carrying one part folder and
#   checking what has arrived:
#     carry [".gpu.parts/part-001"], command "bash scripts/gpu_parts.sh check"
#     ... the same for part-002 up to part-N ...
#   then join them into .gpu/ and launch the study, in the call of the last part or the next:
#     command "bash scripts/gpu_parts.sh join && bash scripts/gpu_study.sh RESULTS_DIR ..."
#   check and join name any part that is missing (a machine given back in between keeps none:
#   send those again) or corrupt.
# Either way the other form of an older bundle is removed: there is one bundle at a time. Make
# it in the checkout whose session calls the device tool: that checkout is the one that travels.
set -euo pipefail
cd "$(dirname "$0")/.."
die() {
  echo "gpu_bundle: $*" >&2
  exit 2
}
model=minilm
part_mib=""
studies=()
usage="usage: gpu_bundle.sh [--model NAME] [--part-mib N] [STUDY.yaml ...]"
while [ $# -gt 0 ]; do
  case "$1" in
  --model | --part-mib)
    [ $# -ge 2 ] || die "$1 needs a value ($usage)"
    if [ "$1" = --model ]; then model="$2"; else part_mib="$2"; fi
    shift 2
    ;;
  -*) die "unknown option $1 ($usage)" ;;
  *) studies+=("$1") && shift ;;
  esac
done
[ -z "$part_mib" ] || [[ "$part_mib" =~ ^[1-9][0-9]*$ ]] ||
  die "--part-mib takes a whole number of MiB, not '$part_mib'"
[ ${#studies[@]} -gt 0 ] || studies=(studies/gpu.yaml)
for study in "${studies[@]}"; do [ -f "$study" ] || die "no study file $study"; done
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || die "not in a git checkout: cannot size the working tree that travels"
data="${LCL_DATA_DIR:-../shared/data}"
py=.venv/bin/python
# the encoder's folder is named after it, so the runs' config.yaml says which encoder they used
# (lcl.training_args.encoder_name reads it back)
encoder="encoder-$(echo "$model" | sed 's/[^A-Za-z0-9_.-]/-/g')"
rm -rf .gpu.tmp && mkdir -p .gpu.tmp/data .gpu.tmp/whl
$py -m lcl export-encoder "$model" ".gpu.tmp/$encoder" --dtype float16
for path in empathetic_dialogues/splits goemotions isear emoint sst/trees; do
  mkdir -p ".gpu.tmp/data/$(dirname "$path")"
  cp -r "$data/$path" ".gpu.tmp/data/$path"
done
# the views of each training split, for every seed of every study, into the bundle's cache
LCL_CACHE_DIR=.gpu.tmp/cache $py - "${studies[@]}" <<'PY'
import sys
from lcl.study import load_study
from lcl.trainer import prepare_data
seen = set()
for cell in (c for path in sys.argv[1:] for c in load_study(path).cells):
    key = (cell.dataset, cell.seed)
    if key not in seen:
        seen.add(key)
        cell.config.data_dir = ".gpu.tmp/data"
        prepare_data(cell.config)
        print("views cached:", *key)
PY
# the GPU image has Python 3.12 and no `datasets`; these are pure-Python wheels
$py -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux2014_x86_64 -d .gpu.tmp/whl \
  "datasets==$($py -c 'import datasets; print(datasets.__version__)')" \
  "dill==$($py -c 'import dill; print(dill.__version__)')" \
  "multiprocess==$($py -c 'import multiprocess; print(multiprocess.__version__)')"
# text compresses about fourfold: data and views travel as one archive (no views cached when
# every cell uses dropout views)
mkdir -p .gpu.tmp/cache
tar -C .gpu.tmp -cJf .gpu.tmp/payload.tar.xz data cache
rm -rf .gpu.tmp/data .gpu.tmp/cache

# what one call moves besides the bundle: the working tree (tracked and untracked, not ignored)
mib=1048576
limit=$((64 * mib))
margin=$((2 * mib)) # room for the tree to grow a little before the bundle is sent
tree="$(git ls-files -z -co --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)"
size="$(du -sb .gpu.tmp | cut -f1)"
if [ -z "$part_mib" ] && [ $((tree + size + margin)) -le $limit ]; then
  rm -rf .gpu .gpu.parts && mv .gpu.tmp .gpu
  du -sh .gpu/* .gpu
  echo "gpu_bundle: .gpu/ ($((size / mib)) MiB) travels in one call beside the $((tree / mib)) MiB working tree"
  exit 0
fi
if [ -z "$part_mib" ]; then
  part_mib=$(((limit - tree - margin) / mib))
  [ "$part_mib" -ge 8 ] || die "the working tree ($((tree / mib)) MiB) leaves no room for parts"
fi
bash scripts/gpu_parts.sh split .gpu.tmp .gpu.parts "$part_mib"
rm -rf .gpu .gpu.tmp
du -sh .gpu.parts/*
echo "gpu_bundle: .gpu.parts/ ($((size / mib)) MiB) travels in $(find .gpu.parts -mindepth 1 -maxdepth 1 -name 'part-*' | wc -l) calls, one part folder each, beside the $((tree / mib)) MiB working tree"
