# Shared by the recipes in bench/recipes/ (sourced, not run). A recipe is a list of stages; each
# stage is one `loom` command (or a prepare.mjs step) whose stdout goes to $WORK/<stage>.out, its
# progress to $WORK/<stage>.log, and its command line to $WORK/commands.log. A finished stage leaves
# $WORK/.done/<stage> and is skipped when the recipe runs again; a training stage whose run folder
# has checkpoints continues with --resume. Flags: --quick (the smoke version, < 5 min), --long
# (larger budgets, for recipes that define them), --fresh (delete the work dir first). Environment: LOOM_DATA (default ../shared/data from the repo root),
# LOOM_RECIPES_DIR (default /tmp/loom-recipes), LOOM_NUM_THREADS (default 2), OMP_WAIT_POLICY (default PASSIVE).

set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DATA=${LOOM_DATA:-$REPO/../shared/data}
QUICK=0
LONG=0
FRESH=0
for a in "$@"; do
  case $a in
    --quick) QUICK=1 ;;
    --long) LONG=1 ;;
    --fresh) FRESH=1 ;;
    *) echo "usage: $0 [--quick | --long] [--fresh]" >&2; exit 2 ;;
  esac
done
[ $QUICK = 1 ] && [ $LONG = 1 ] && { echo "$0: --quick or --long, not both" >&2; exit 2; }
WORK=${LOOM_RECIPES_DIR:-/tmp/loom-recipes}/$RECIPE$([ $QUICK = 1 ] && echo -quick || true)$([ $LONG = 1 ] && echo -long || true)
[ $FRESH = 1 ] && rm -rf "$WORK"
mkdir -p "$WORK/.done"
export LOOM_NUM_THREADS=${LOOM_NUM_THREADS:-2}
# Waiting OpenMP threads sleep instead of spinning: with other jobs on the 2 cores, spinning threads
# made a training step up to 7x slower (bench/RESULTS.md, Recipes on real data).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
[ -d "$DATA" ] || { echo "$RECIPE: no data folder $DATA (set LOOM_DATA)" >&2; exit 1; }
[ -f "$REPO/dist/src/cli/loom.js" ] || { echo "$RECIPE: build first (npm ci, or npx tsc -p .)" >&2; exit 1; }

# q QUICK FULL [LONG]: the value for this mode (--long falls back to FULL).
q() { if [ $QUICK = 1 ]; then echo "$1"; elif [ $LONG = 1 ] && [ $# -ge 3 ]; then echo "$3"; else echo "$2"; fi; }

# prep NAME ARGS...: a prepare.mjs step, once.
prep() {
  local name=$1; shift
  [ -e "$WORK/.done/$name" ] && return 0
  local cmd
  printf -v cmd ' %q' "$@"
  echo "$(date -u +%FT%TZ) $name: node bench/recipes/prepare.mjs$cmd" >> "$WORK/commands.log"
  node "$REPO/bench/recipes/prepare.mjs" "$@" > "$WORK/$name.out"
  touch "$WORK/.done/$name"
}

# stage NAME ARGS...: `loom ARGS...` once (stdin from $STAGE_INPUT when set); --resume is added to a
# pretrain/finetune whose --out folder has checkpoints.
stage() {
  local name=$1; shift
  if [ -e "$WORK/.done/$name" ]; then echo "[$RECIPE] $name: done, skipped" >&2; return 0; fi
  local args=("$@") out="" i
  for ((i = 0; i < ${#args[@]} - 1; i++)); do [ "${args[i]}" = --out ] && out=${args[i + 1]}; done
  if [[ ${args[0]} = pretrain || ${args[0]} = finetune ]] && compgen -G "$out/checkpoints/checkpoint-*" > /dev/null; then args+=(--resume); fi
  local cmd
  printf -v cmd ' %q' "${args[@]}" # quoted as a shell would need it, so a logged line can be pasted
  echo "$(date -u +%FT%TZ) $name: loom$cmd$([ -n "${STAGE_INPUT:-}" ] && echo " < $STAGE_INPUT" || true)" >> "$WORK/commands.log"
  echo "[$RECIPE] $name: loom$cmd" >&2
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  node "$REPO/dist/src/cli/loom.js" "${args[@]}" < "${STAGE_INPUT:-/dev/null}" > "$WORK/$name.out" 2> "$WORK/$name.log" || rc=$?
  t1=$(date +%s.%N)
  if [ $rc != 0 ]; then
    echo "[$RECIPE] $name failed (exit $rc); the end of $WORK/$name.log:" >&2
    tail -5 "$WORK/$name.log" >&2
    exit $rc
  fi
  echo "$name $(awk "BEGIN { print $t1 - $t0 }")" >> "$WORK/times.tsv"
  touch "$WORK/.done/$name"
}

# get FILE FIELD: one field of a stage's JSON output.
get() { node "$REPO/bench/recipes/prepare.mjs" get "$WORK/$1" "$2"; }

# wall: seconds spent in all stages so far (over every invocation of the recipe).
wall() { awk '{ s += $2 } END { printf "%.0f", s }' "$WORK/times.tsv" 2>/dev/null || echo 0; }

# finish JSON: prints the recipe's result line and keeps it in $WORK/result.json.
finish() {
  echo "$1" > "$WORK/result.json"
  echo "$(date -u +%FT%TZ) result: $1" >> "$WORK/commands.log"
  echo "$1"
}
