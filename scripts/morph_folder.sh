#!/usr/bin/env bash
# Morph every image in a folder, in name order, into one video.
#
#   scripts/morph_folder.sh DIR OUT.mp4 [diffmorph sequence options...]
#
# Images: files directly in DIR ending in .jpg .jpeg .png .webp .bmp (any case),
# hidden files excluded, names with spaces fine. Order: by name in byte order
# (LC_ALL=C), so zero-pad numbers (01.jpg, 02.jpg, ..., 10.jpg). Runs
#   $PYTHON -m diffmorph sequence IMG1 IMG2 ... -o OUT.mp4 [options...]
# with PYTHON defaulting to python3 (or python); when this script sits in a
# diffmorph checkout, that checkout is put first on PYTHONPATH. Example:
#   scripts/morph_folder.sh photos/ photos.mp4 --loop -e 500 --size 512
# Exit status: diffmorph's; 2 for a usage error here.
set -euo pipefail

prog=$(basename "$0")

usage() {
    cat <<USAGE
usage: $prog DIR OUT.mp4 [diffmorph sequence options...]

Morph the images in DIR (.jpg .jpeg .png .webp .bmp, sorted by name) into one
video OUT.mp4 (and OUT.gif). Options go to 'diffmorph sequence', e.g. --loop,
-e EPOCHS, --size S, --steps N, --fps F, --boomerang, -q; see
'python -m diffmorph sequence --help'. Set PYTHON to choose the interpreter.
USAGE
}

fail() {
    echo "$prog: error: $*" >&2
    echo "usage: $prog DIR OUT.mp4 [diffmorph sequence options...] (--help for more)" >&2
    exit 2
}

if [[ $# -ge 1 && ( "$1" == "-h" || "$1" == "--help" ) ]]; then
    usage
    exit 0
fi
[[ $# -ge 2 ]] || fail "expected a folder and an output video, got $# argument(s)"

dir=$1
out=$2
shift 2
[[ -d "$dir" ]] || fail "$dir: not a folder"
[[ -n "$out" && "$out" != -* ]] || fail "the second argument must be the output video (OUT.mp4), got '$out'"

images=()
while IFS= read -r -d '' file; do
    images+=("$file")
done < <(find "$dir" -mindepth 1 -maxdepth 1 \( -type f -o -type l \) ! -name '.*' \
    \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' -o -iname '*.webp' -o -iname '*.bmp' \) \
    -print0 | LC_ALL=C sort -z)

if [[ ${#images[@]} -lt 2 ]]; then
    fail "$dir holds ${#images[@]} image(s) (.jpg .jpeg .png .webp .bmp); a sequence needs at least 2"
fi

python=${PYTHON:-}
if [[ -z "$python" ]]; then
    if command -v python3 >/dev/null 2>&1; then
        python=python3
    elif command -v python >/dev/null 2>&1; then
        python=python
    else
        fail "no python3 or python on PATH; set PYTHON=/path/to/python"
    fi
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -f "$repo/diffmorph/__init__.py" ]]; then
    export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
fi

echo "$prog: ${#images[@]} images from $dir -> $out" >&2
exec "$python" -m diffmorph sequence "${images[@]}" -o "$out" "$@"
