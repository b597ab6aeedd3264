#!/usr/bin/env bash
# The main job on the embedded defaults (SQLite + local storage), start to finish.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RINDLE="$ROOT/.venv/bin/rindle"
DEMO="$ROOT/demo"
rm -rf "$DEMO"; mkdir -p "$DEMO"; cd "$DEMO"
export RINDLE_CONFIG="$DEMO/rindle.toml"

step() { printf '\n== %s\n' "$*"; }

step "rindle init: write rindle.toml and a sample profile module"
"$RINDLE" init
step "rindle migrate: create the tables in SQLite"
"$RINDLE" migrate
step "rindle plugins: what is installed"
"$RINDLE" plugins
if [ -f "$ROOT/scripts/demo_lifecycle.py" ]; then
  step "the image lifecycle, end to end"
  "$ROOT/.venv/bin/python" "$ROOT/scripts/demo_lifecycle.py"
fi
for verb in doctor runtime-status; do
  if "$RINDLE" "$verb" --help >/dev/null 2>&1; then
    step "rindle $verb"
    "$RINDLE" "$verb"
  fi
done
printf '\nDemo finished. Everything it made is in %s\n' "$DEMO"
