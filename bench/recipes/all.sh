#!/usr/bin/env bash
# Runs the five recipes one after the other (flags are passed on: --quick, --fresh) and prints
# their result lines. Each recipe is resumable, so running this again continues where it stopped.
set -uo pipefail
here=$(dirname "$0")
for r in lm-scratch sentiment ner docs-continued support-chat; do
  "$here/$r.sh" "$@" || echo "{\"recipe\":\"$r\",\"failed\":true}"
done
