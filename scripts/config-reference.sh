#!/usr/bin/env bash
# Prints the configuration reference of every binary as Markdown, from each
# binary's own --help (the single source of truth): first the variables the
# three stages share, then each binary's own. With --update FILE it replaces
# the part of FILE between the config-reference markers (make docs).
set -euo pipefail
if [ "${1:-}" = "--update" ]; then
  file=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
  ref=$(mktemp); "$0" >"$ref"
  awk -v ref="$ref" '/<!-- config-reference:start -->/ { print; while ((getline l < ref) > 0) print l; skip=1; next }
    /<!-- config-reference:end -->/ { skip=0 } !skip' "$file" >"$file.tmp" && mv "$file.tmp" "$file"
  rm -f "$ref"; exit 0
fi
cd "$(dirname "$0")/../services"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for b in fetcher classifier writer freshdesk-sim autotriage; do go build -o "$tmp/$b" "./$b"; done
rows() { "$@" --help 2>&1 | awk 'f && NF { name=$1; def=$2; $1=""; $2=""; sub(/^ +/, ""); gsub(/\|/, "\\|"); printf "| `%s` | `%s` | %s |\n", name, def, $0 } /^VARIABLE/ { f=1 }'; }
rows "$tmp/fetcher" >"$tmp/fetcher.md"; rows "$tmp/classifier" >"$tmp/classifier.md"; rows "$tmp/writer" >"$tmp/writer.md"
rows "$tmp/autotriage" up >"$tmp/up.md"; rows "$tmp/freshdesk-sim" >"$tmp/sim.md"
# up against an external server (--nats) reads a few variables of its own.
{ rows "$tmp/autotriage" up --nats nats://127.0.0.1:4222 | grep -vFxf "$tmp/up.md" || true; } >>"$tmp/up.md"
grep -Fxf "$tmp/fetcher.md" "$tmp/classifier.md" | grep -Fxf "$tmp/writer.md" >"$tmp/shared.md" || true
table() { echo "### $1"; echo; echo '| variable | default | meaning |'; echo '|---|---|---|'; cat; echo; }
table "Shared by every stage (process, NATS, streams)" <"$tmp/shared.md"
for s in fetcher classifier writer; do grep -vFxf "$tmp/shared.md" "$tmp/$s.md" | table "$s"; done
cat "$tmp/fetcher.md" "$tmp/classifier.md" "$tmp/writer.md" >"$tmp/stages.md"
grep -vFxf "$tmp/stages.md" "$tmp/up.md" | table "autotriage up (every stage in one process, plus)"
table "freshdesk-sim" <"$tmp/sim.md"
