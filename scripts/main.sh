#!/usr/bin/env bash
# Set up, then train LCL with the embedded MiniLM encoder and print the metrics.
# On the paper's data when it is found ($LCL_DATA_DIR or ../shared/data): the confusable
# Empathetic Dialogues subset 4hard-a (anxious, apprehensive, afraid, terrified), 3 epochs.
# Otherwise on the package's small demo dataset. Extra arguments go to `lcl train`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
data_dir="${LCL_DATA_DIR:-../shared/data}"
if [ -f "$data_dir/empathetic_dialogues/splits/train.csv" ]; then
  set -- --dataset empathetic_dialogues:4hard-a --data-dir "$data_dir" --epochs 3 "$@"
else
  echo "main: no data directory found ($data_dir); training on the demo dataset" >&2
  set -- --dataset demo "$@"
fi
exec .venv/bin/lcl train --loss lcl --model minilm --output-dir runs/main --overwrite "$@"
