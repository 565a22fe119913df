#!/usr/bin/env bash
# Set up, then train LCL with the embedded MiniLM encoder and the default (measured) recipe,
# beside the frozen-encoder baseline it must beat, and print both.
# On the paper's data when it is found ($LCL_DATA_DIR or ../shared/data): the confusable
# Empathetic Dialogues subset 4hard-a (anxious, apprehensive, afraid, terrified).
# Otherwise on the package's small demo dataset. Extra arguments go to `lcl train`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
data_dir="${LCL_DATA_DIR:-../shared/data}"
if [ -f "$data_dir/empathetic_dialogues/splits/train.csv" ]; then
  data=(--dataset empathetic_dialogues:4hard-a --data-dir "$data_dir")
else
  echo "main: no data directory found ($data_dir); training on the demo dataset" >&2
  data=(--dataset demo)
fi
.venv/bin/lcl probe "${data[@]}" --output-dir runs/main-probe --overwrite
.venv/bin/lcl train "${data[@]}" --loss lcl --model minilm --output-dir runs/main --overwrite "$@"
.venv/bin/python - <<'PY'
import json
probe = json.load(open("runs/main-probe/metrics.json"))["test"]
lcl = json.load(open("runs/main/metrics.json"))["test"]
print(f"test accuracy: LCL {100 * lcl['accuracy']:.1f}  frozen-encoder probe "
      f"{100 * probe['accuracy']:.1f}  (difference {100 * (lcl['accuracy'] - probe['accuracy']):+.1f})")
PY
