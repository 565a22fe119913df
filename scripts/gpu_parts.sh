#!/usr/bin/env bash
# A GPU bundle too large for one call of the device tool (the working tree and what a call
# carries: 64 MiB in all), sent in parts. This script owns the parts' format:
#   bash scripts/gpu_parts.sh split SRC PARTS_DIR PART_MIB   (here; scripts/gpu_bundle.sh runs it)
#   bash scripts/gpu_parts.sh check [PARTS_DIR=.gpu.parts]   (there, after each part arrives)
#   bash scripts/gpu_parts.sh join  [PARTS_DIR=.gpu.parts] [DEST=.gpu]   (there, once all are in)
# split packs the folder SRC into one tar and cuts it into pieces of PART_MIB MiB:
# PARTS_DIR/part-001/bundle.tar.001, part-002/bundle.tar.002, ... Each part folder also holds the
# same MANIFEST.sha256: the sha256 of every piece, in order, and of the whole tar.
# check verifies the parts that have arrived and names those still to send (exit 0).
# join verifies every piece, then the whole, and unpacks it into a temporary sibling of DEST
# that replaces DEST only when complete; a DEST already joined from this manifest (its marker
# .bundle-sha256) is left as it is. A part that is missing, corrupt or of another bundle is one
# line on stderr naming it, with exit status 2, and DEST is not touched. check fails so too on
# a corrupt or foreign part. A session sends the parts one call after another, each call
# carrying one part folder (see scripts/gpu_bundle.sh), while the machine stays warm: the parts
# of a machine given back in between are gone, and check or join names them.
set -euo pipefail
cd "$(dirname "$0")/.."
die() {
  echo "gpu_parts: $*" >&2
  exit 2
}
join_list() {
  local out="" item
  for item in "$@"; do out+="${out:+, }$item"; done
  echo "$out"
}
# $1 as a hidden name (.gpu stays .gpu, gpu becomes .gpu), the stem of temporary siblings
hidden() {
  case "$(basename "$1")" in .*) echo "$1" ;; *) echo "$(dirname "$1")/.$(basename "$1")" ;; esac
}
# a temporary sibling of $1 (same file system: the final mv is a rename), removed on any
# failure or signal; the ones a killed run left behind are removed first
temp_beside() {
  local base
  base="$(hidden "$1")"
  for stale in "$base".tmp.*/ "$base".old.*/; do rm -rf "$stale"; done
  tmp="$(mktemp -d "$base.tmp.XXXXXX")"
  chmod 755 "$tmp" # mktemp makes 0700
  trap 'rm -rf "$tmp"' EXIT
  trap 'exit 130' INT TERM
}
# replace $2 with the folder $1 (a rename; $2 is moved aside first if it exists)
replace() {
  local old
  if [ -e "$2" ]; then
    old="$(mktemp -d "$(hidden "$2").old.XXXXXX")"
    mv "$2" "$old/"
    mv "$1" "$2"
    rm -rf "$old"
  else
    mv "$1" "$2"
  fi
}

split_parts() {
  local src="$1" out="$2" mib="$3" n count bytes
  [[ "$mib" =~ ^[1-9][0-9]*$ ]] || die "the part size must be a whole number of MiB, not '$mib'"
  [ -d "$src" ] || die "no folder $src to split"
  temp_beside "$out"
  tar -C "$src" --sort=name -cf - . | split -b "${mib}M" -d -a 3 --numeric-suffixes=1 - "$tmp/bundle.tar."
  count="$(find "$tmp" -maxdepth 1 -name 'bundle.tar.*' | wc -l)"
  bytes="$(cat "$tmp"/bundle.tar.* | wc -c)"
  {
    echo "# lcl GPU bundle: $count pieces of bundle.tar ($bytes bytes); join: scripts/gpu_parts.sh"
    for piece in "$tmp"/bundle.tar.*; do
      n="${piece##*.}"
      echo "$(sha256sum <"$piece" | cut -d' ' -f1)  part-$n/bundle.tar.$n"
    done
    echo "$(cat "$tmp"/bundle.tar.* | sha256sum | cut -d' ' -f1)  bundle.tar"
  } >"$tmp/manifest"
  for piece in "$tmp"/bundle.tar.*; do
    n="${piece##*.}"
    mkdir "$tmp/part-$n"
    mv "$piece" "$tmp/part-$n/"
    cp "$tmp/manifest" "$tmp/part-$n/MANIFEST.sha256"
  done
  rm "$tmp/manifest"
  replace "$tmp" "$out"
  echo "gpu_parts: $src ($((bytes / 1048576)) MiB) in $count parts of at most $mib MiB in $out/"
}

# the manifest of the part folders in $parts, read into: manifest, names, sums, whole, count
read_manifest() {
  local folder sum name
  shopt -s nullglob
  local folders=("$parts"/part-*/)
  shopt -u nullglob
  [ ${#folders[@]} -gt 0 ] || die "no parts in $parts/: send them first ($how)"
  manifest=""
  for folder in "${folders[@]}"; do
    folder="${folder%/}"
    [ -f "$folder/MANIFEST.sha256" ] || die "$folder has no MANIFEST.sha256: send it again ($how)"
    if [ -z "$manifest" ]; then
      manifest="$folder/MANIFEST.sha256"
    elif ! cmp -s "$folder/MANIFEST.sha256" "$manifest"; then
      die "$folder and $(dirname "$manifest") are parts of different bundles (their" \
        "manifests differ): delete $parts and send the parts of one bundle"
    fi
  done
  names=() sums=() whole=""
  while read -r sum name; do
    case "$sum" in '' | '#'*) continue ;; esac
    [[ "$sum" =~ ^[0-9a-f]{64}$ ]] || die "$manifest: not a sha256 line: $sum $name"
    if [ "$name" = bundle.tar ]; then whole="$sum"; else names+=("$name") sums+=("$sum"); fi
  done <"$manifest"
  count=${#names[@]}
  [ -n "$whole" ] && [ "$count" -gt 0 ] || die "$manifest: no pieces or no sha256 of the whole"
}

# the manifest's pieces sorted into present (files) and missing (part folders); a corrupt one
# fails, naming every corrupt and missing part
sort_parts() {
  local file part got
  present=() missing=() corrupt=()
  for i in "${!names[@]}"; do
    file="$parts/${names[$i]}"
    part="$(dirname "${names[$i]}")"
    if [ ! -f "$file" ]; then
      missing+=("$part")
      continue
    fi
    got="$(sha256sum <"$file" | cut -d' ' -f1)"
    if [ "$got" = "${sums[$i]}" ]; then
      present+=("$file")
    else
      corrupt+=("$part (sha256 ${got:0:12}... instead of ${sums[$i]:0:12}...)")
    fi
  done
  if [ ${#corrupt[@]} -gt 0 ]; then
    local also=""
    [ ${#missing[@]} -eq 0 ] || also="; missing: $(join_list "${missing[@]}")"
    die "corrupt: $(join_list "${corrupt[@]}")$also (of $count parts in $parts):" \
      "send them again ($how)"
  fi
}

check_parts() {
  read_manifest
  sort_parts
  if [ ${#missing[@]} -eq 0 ]; then
    echo "gpu_parts: all $count parts are here and intact; next: bash scripts/gpu_parts.sh join"
  else
    echo "gpu_parts: ${#present[@]} of $count parts here and intact; still to send:" \
      "$(join_list "${missing[@]}")"
  fi
}

join_parts() {
  local dest="$1" got
  read_manifest
  if [ "$(cat "$dest/.bundle-sha256" 2>/dev/null)" = "$whole" ]; then
    echo "gpu_parts: $dest is already joined from these $count parts"
    return
  fi
  sort_parts
  [ ${#missing[@]} -eq 0 ] ||
    die "missing: $(join_list "${missing[@]}") (of $count parts in $parts): send them ($how)"
  got="$(cat "${present[@]}" | sha256sum | cut -d' ' -f1)"
  [ "$got" = "$whole" ] || die "the $count parts join into sha256 ${got:0:12}..., but" \
    "$manifest expects ${whole:0:12}...: make the bundle again"
  temp_beside "$dest"
  if ! got="$(cat "${present[@]}" | tar -xf - -C "$tmp" 2>&1)"; then
    die "the joined parts are not a valid tar (${got%%$'\n'*}): make the bundle again"
  fi
  echo "$whole" >"$tmp/.bundle-sha256"
  replace "$tmp" "$dest"
  echo "gpu_parts: joined $count parts into $dest ($(du -sh "$dest" | cut -f1))"
}

command="${1:-}"
shift || true
case "$command" in
split)
  [ $# -eq 3 ] || die "usage: gpu_parts.sh split SRC PARTS_DIR PART_MIB"
  split_parts "$@"
  ;;
check | join)
  [ $# -le $([ "$command" = join ] && echo 2 || echo 1) ] ||
    die "usage: gpu_parts.sh check [PARTS_DIR] | join [PARTS_DIR] [DEST]"
  parts="${1:-.gpu.parts}"
  how="one call per part, each carrying its $parts/part-NNN folder"
  if [ "$command" = check ]; then check_parts; else join_parts "${2:-.gpu}"; fi
  ;;
*) die "usage: gpu_parts.sh split SRC PARTS_DIR PART_MIB | check [PARTS_DIR] | join [PARTS_DIR] [DEST]" ;;
esac
