#!/usr/bin/env bash
# One background study lane on a CPU: parts of a study, one after another, on one thread.
#
#   bash scripts/lane.sh STUDY.yaml SELECT... [:: SELECT... ...]
#
# Each SELECT group is `lcl study`'s --only / --variant / --seed flags; groups are separated by
# `::` and run in order (a finished cell is skipped, a killed one resumes from its checkpoint, so
# the same command starts a lane again after a kill). The lane runs `nice`, with one OpenMP/MKL
# thread (a second busy process makes a multi-threaded torch process several times slower on
# a small machine: run at most one lane per core) and a resume checkpoint every
# LANE_CHECKPOINT_MINUTES (default 10) minutes of training. Example, two lanes:
#
#   nohup bash scripts/lane.sh studies/convergence.yaml --only sst5 --seed 1 > lane-a.log 2>&1 &
#   nohup bash scripts/lane.sh studies/convergence.yaml --only goemotions --variant ce \
#       :: --only goemotions --variant lcl-self > lane-b.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] && [ -f "$1" ] || { echo "usage: lane.sh STUDY.yaml SELECT... [:: SELECT...]" >&2; exit 2; }
study="$1"; shift
lcl=lcl
[ -x .venv/bin/lcl ] && lcl=.venv/bin/lcl
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
args=()
for a in "$@" "::"; do
  if [ "$a" = "::" ]; then
    echo "=== $(date -u '+%F %T') lcl study $study ${args[*]}"
    nice -n 5 "$lcl" study "$study" --checkpoint-minutes "${LANE_CHECKPOINT_MINUTES:-10}" "${args[@]}"
    args=()
  else
    args+=("$a")
  fi
done
