#!/usr/bin/env bash
# The README's linking example must be examples/train_mlp.c verbatim: the lines between
#   <!-- example:train_mlp.c -->
#   ```c
#   ...the file...
#   ```
#   <!-- /example -->
# Fails (with a diff) when the block differs, and fails when the README or its markers are missing.
# Usage: check_readme.sh README.md examples/train_mlp.c
set -u
readme=$1
source=$2
name=$(basename "$source")
begin="<!-- example:$name -->"
end="<!-- /example -->"
fail() { echo "check_readme: FAIL: $*" >&2; exit 1; }

[ -f "$readme" ] || fail "$readme does not exist; it must hold $source between '$begin' and '$end'"
[ -f "$source" ] || fail "$source does not exist"
count=$(grep -cxF "$begin" "$readme")
[ "$count" -eq 1 ] ||
    fail "$readme has $count lines '$begin' (wanted exactly 1, then \`\`\`c, $source, \`\`\`, '$end')"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fnet-readme.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# The lines strictly between the markers.
awk -v b="$begin" -v e="$end" '
    $0 == b { inside = 1; next }
    inside && $0 == e { found = 1; exit }
    inside { print }
    END { exit found ? 0 : 1 }' "$readme" >"$tmp/block" ||
    fail "$readme: no '$end' after '$begin'"
[ -s "$tmp/block" ] ||
    fail "$readme: the block between '$begin' and '$end' is empty; paste $source there in a \`\`\`c fence"
first=$(head -n 1 "$tmp/block")
last=$(tail -n 1 "$tmp/block")
[ "$first" = '```c' ] || fail "$readme: the line after '$begin' is '$first', not '\`\`\`c'"
[ "$last" = '```' ] || fail "$readme: the line before '$end' is '$last', not '\`\`\`'"
sed '1d;$d' "$tmp/block" >"$tmp/$name"

if ! diff -u --label "$source" --label "$readme (block '$name')" "$source" "$tmp/$name"; then
    fail "the README's example differs from $source (diff above: - the file, + the README)"
fi
echo "check_readme: $readme holds $source verbatim"
