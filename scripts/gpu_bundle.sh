#!/usr/bin/env bash
# Make .gpu/: everything the given studies need on a GPU machine with no network and a 64 MiB
# upload limit: a float16 copy of the encoder (44 MiB), the dataset files and the synonym views
# of every training split of every seed (so no WordNet is needed there) in one xz archive
# (about 5 MiB), and the wheels of the few packages that machine lacks (datasets and its needs).
#   bash scripts/gpu_bundle.sh [STUDY.yaml ...]   (default: studies/gpu.yaml; data from
#                                                  $LCL_DATA_DIR or ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
data="${LCL_DATA_DIR:-../shared/data}"
studies=("$@")
[ ${#studies[@]} -gt 0 ] || studies=(studies/gpu.yaml)
py=.venv/bin/python
rm -rf .gpu.tmp && mkdir -p .gpu.tmp/data .gpu.tmp/whl
.venv/bin/lcl export-encoder minilm .gpu.tmp/encoder --dtype float16
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
# text compresses about fourfold: data and views travel as one archive
tar -C .gpu.tmp -cJf .gpu.tmp/payload.tar.xz data cache && rm -rf .gpu.tmp/data .gpu.tmp/cache
rm -rf .gpu && mv .gpu.tmp .gpu
du -sh .gpu .gpu/*
