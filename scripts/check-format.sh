#!/usr/bin/env bash
# Checks C++ formatting against .clang-format (clang-format --dry-run -Werror) and lists failing files.
# Usage: scripts/check-format.sh [--fix]     (--fix rewrites the files in place instead)
# Files: *.hpp *.cpp *.h under include src tools examples bench tests, taken from git (tracked plus
# untracked-but-not-ignored), so build directories are never scanned. Env: CLANG_FORMAT (default clang-format).
set -euo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
CF=${CLANG_FORMAT:-clang-format}
DIRS=(include src tools examples bench tests)
fix=0
case ${1:-} in
    --fix) fix=1 ;;
    "") ;;
    *)
        echo "usage: $0 [--fix]" >&2
        exit 2
        ;;
esac

command -v "$CF" >/dev/null 2>&1 || {
    echo "check-format: $CF not found (run scripts/deps.sh)" >&2
    exit 1
}

files=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    while IFS= read -r -d '' f; do
        if [[ -f $f ]]; then files+=("$f"); fi # skip deleted-but-tracked files
    done < <(git ls-files -z --cached --others --exclude-standard -- \
        "${DIRS[@]/%//*.hpp}" "${DIRS[@]/%//*.cpp}" "${DIRS[@]/%//*.h}" | sort -zu)
else # not a git checkout (e.g. a source tarball): plain find, build dirs excluded by construction
    existing=()
    for d in "${DIRS[@]}"; do
        if [[ -d $d ]]; then existing+=("$d"); fi
    done
    if ((${#existing[@]})); then
        while IFS= read -r -d '' f; do files+=("$f"); done < <(find "${existing[@]}" -type f \
            \( -name '*.hpp' -o -name '*.cpp' -o -name '*.h' \) -print0 | sort -z)
    fi
fi

if ((${#files[@]} == 0)); then
    echo "check-format: no C++ files found under ${DIRS[*]}"
    exit 0
fi

if ((fix)); then
    "$CF" -i --style=file "${files[@]}"
    echo "check-format: formatted ${#files[@]} files"
    exit 0
fi

bad=()
for f in "${files[@]}"; do
    "$CF" --dry-run -Werror --style=file "$f" >/dev/null 2>&1 || bad+=("$f")
done

if ((${#bad[@]})); then
    echo "check-format: ${#bad[@]} of ${#files[@]} files are not clang-formatted:"
    printf '  %s\n' "${bad[@]}"
    echo "diagnostics for the first one:"
    "$CF" --dry-run -Werror --style=file "${bad[0]}" 2>&1 | head -n 20 || true
    echo "fix with: scripts/check-format.sh --fix"
    exit 1
fi
echo "check-format: ${#files[@]} files OK ($($CF --version | head -n1))"
