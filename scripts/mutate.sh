#!/usr/bin/env bash
# Mutation pass (mutmut) over the core modules listed below, each against its own narrow
# test selection. Runs from a throwaway copy under /tmp (mutmut writes ./mutants next to the
# sources), so the working tree is never touched. Prints, per module, mutants generated,
# killed and surviving, then the survivors (see bench/MUTATION.md for the known-equivalent
# ones) and the total survivor count.
#   make mutate                      # every module
#   scripts/mutate.sh signing        # modules whose path contains "signing"
#   MUTATE_JOBS=2 make mutate        # mutmut --max-children (default 1)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MUTMUT="$ROOT/.venv/bin/mutmut"
JOBS="${MUTATE_JOBS:-1}"
# module -> the tests that pin it
MODULES=(
  "src/rindle/signing.py|tests/delivery/test_signing.py"
  "src/rindle/delivery/ranges.py|tests/delivery/test_ranges.py"
  "src/rindle/delivery/disposition.py|tests/delivery/test_disposition.py"
  "src/rindle/upload/validation.py|tests/upload/test_validation.py"
  "src/rindle/web/auth.py|tests/web/test_auth.py"
)
WORK="$(mktemp -d /tmp/rindle-mutate.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cd "$ROOT"
tar --exclude=__pycache__ --exclude=mutants -cf - src tests conftest.py pyproject.toml \
  | tar -xf - -C "$WORK"
cp "$WORK/pyproject.toml" "$WORK/pyproject.base.toml"
cd "$WORK"
total=0
report=""
for entry in "${MODULES[@]}"; do
  module="${entry%%|*}"
  tests="${entry#*|}"
  if [ "$#" -gt 0 ]; then
    hit=0; for want in "$@"; do [[ "$module" == *"$want"* ]] && hit=1; done
    [ "$hit" = 1 ] || continue
  fi
  {
    cat pyproject.base.toml
    printf '\n[tool.mutmut]\nsource_paths = ["src/rindle"]\nonly_mutate = ["%s"]\n' "$module"
    printf 'also_copy = ["conftest.py"]\npytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]\n'
    printf 'pytest_add_cli_args_test_selection = ["%s"]\n' "$tests"
  } > pyproject.toml
  rm -rf mutants
  echo "== $module ($tests)" >&2
  "$MUTMUT" run --max-children "$JOBS" > "mutmut-run.log" 2>&1 \
    || { tail -n 30 mutmut-run.log >&2; exit 1; }
  "$MUTMUT" export-cicd-stats > /dev/null
  read -r generated killed survived < <(
    "$ROOT/.venv/bin/python" -c 'import json,sys; s=json.load(open(sys.argv[1]))
print(s["total"], s["killed"], s["survived"] + s["no_tests"] + s["timeout"] + s["suspicious"])' \
      mutants/mutmut-cicd-stats.json)
  total=$((total + survived))
  report+="$(printf '%-36s generated %4d  killed %4d  survived %3d' "$module" "$generated" \
    "$killed" "$survived")"$'\n'
  "$MUTMUT" results 2>/dev/null | grep -v ': killed$' > survivors.txt || true
  while IFS= read -r line; do
    name="${line%%:*}"; name="${name#"${name%%[![:space:]]*}"}"
    echo "    $name (${line##*: })"
    "$MUTMUT" show "$name" 2>/dev/null | grep '^[-+][^-+]' | sed 's/^/        /' || true
  done < survivors.txt
done
printf '\n%s' "$report"
echo "survivors: $total (the equivalent ones are listed in bench/MUTATION.md)"
