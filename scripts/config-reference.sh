#!/usr/bin/env bash
# Prints the configuration reference of every binary as Markdown, from each
# binary's own --help (the single source of truth). README.md embeds it;
# `make docs` rewrites that section.
set -euo pipefail
cd "$(dirname "$0")/../services"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for b in fetcher classifier writer freshdesk-sim; do go build -o "$tmp/$b" "./$b"; done
go build -o "$tmp/autotriage" ./autotriage
table() { # $1 title, rest: command
  local title=$1; shift
  echo "### $title"; echo
  echo '| variable | default | meaning |'; echo '|---|---|---|'
  "$@" --help 2>&1 | awk 'f && NF { name=$1; def=$2; $1=""; $2=""; sub(/^ +/, ""); printf "| `%s` | `%s` | %s |\n", name, def, $0 } /^VARIABLE/ { f=1 }'
  echo
}
table "fetcher" "$tmp/fetcher"
table "classifier" "$tmp/classifier"
table "writer" "$tmp/writer"
table "autotriage up (all stages in one process)" "$tmp/autotriage" up
table "freshdesk-sim" "$tmp/freshdesk-sim"
