"""The four blind spots of issue 21, each applied to a copy of the project, must fail at least one test.

For each, the checkout is copied to a temporary folder (environment, data and caches left out), the mutation is
applied to the copy's source, and the tests that should notice run there in a child pytest. The test passes only
when that run fails (pytest exit status 1: tests ran and some failed). A mutation whose text is no longer found
in the source fails here too, so a refactoring cannot silently retire a check.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = {".venv", "node_modules", ".gridgov", ".git", "build", "mutants", "__pycache__", ".pytest_cache"}
BASE_BEFORE_THE_PRIVACY_FIX = "4ec3572"
"""The last commit before issue 12 and 21's work: its code locks in the wrong behaviour the old tests asserted
(exact public points in Open311, a 0.001° grid in ticket queries, phone numbers in planners' OGC reads)."""


def _copy_project(target: Path) -> Path:
    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = {name for name in names if name in SKIPPED}
        if Path(folder) == ROOT / "webmap" / "static":
            skipped.add("vendor")
        return skipped

    shutil.copytree(ROOT, target, ignore=ignore, symlinks=True)
    _link_assets(target)
    return target


def _link_assets(target: Path) -> None:
    """The npm packages and the vendored front-end files, shared with the checkout (read only)."""
    for relative in ("node_modules", "webmap/static/vendor"):
        if (ROOT / relative).exists() and not (target / relative).exists():
            (target / relative).symlink_to(ROOT / relative)


def _mutate(path: Path, pattern: str, replacement: str) -> None:
    source = path.read_text(encoding="utf-8")
    mutated, count = re.subn(pattern, replacement, source, count=1, flags=re.MULTILINE)
    assert count == 1, f"the mutation's text {pattern!r} is not in {path.name} any more; update this test"
    path.write_text(mutated, encoding="utf-8")


def _run_tests(project: Path, *selection: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("GRIDGOV_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *selection],
                          cwd=project, env=env, capture_output=True, text=True)


def _expect_failure(result: subprocess.CompletedProcess, *failing: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 1, f"the mutated code passed (or the run broke, status {result.returncode}):\n" \
                                   + output[-3000:]
    assert not re.search(r"^ERROR ", output, flags=re.MULTILINE), f"the run broke:\n{output[-3000:]}"
    for name in failing:
        assert re.search(rf"FAILED \S*{re.escape(name)}", output), f"{name} did not fail:\n{output[-3000:]}"


def test_verify_allowed_from_in_progress_fails_the_workflow_tests(tmp_path):
    project = _copy_project(tmp_path / "project")
    _mutate(project / "gis" / "tickets" / "workflow.py",
            r'Transition\("verify", \("handled",\)', 'Transition("verify", ("handled", "in_progress")')
    result = _run_tests(project, "tests/test_tickets_workflow.py::test_the_code_implements_the_defined_closed_loop",
                        "tests/test_tickets_workflow.py::test_every_transition_is_allowed_or_refused[in_progress-verify]")
    _expect_failure(result, "test_the_code_implements_the_defined_closed_loop",
                    "test_every_transition_is_allowed_or_refused[in_progress-verify]")


def test_a_one_centimetre_public_grid_fails_the_privacy_tests(tmp_path):
    project = _copy_project(tmp_path / "project")
    _mutate(project / "gis" / "access" / "visibility.py", r"^PUBLIC_PLACE_GRID_DEG = .*$",
            "PUBLIC_PLACE_GRID_DEG = 0.0000001")
    result = _run_tests(project, "tests/test_privacy_precision.py")
    _expect_failure(result, "test_map_geojson", "test_complaint_tiles", "test_open311_list_and_single_requests")


def test_reversing_the_open311_tie_break_fails_the_placement_oracle(tmp_path):
    project = _copy_project(tmp_path / "project")
    # the one-statement placement's hit: the lowest code of the micro-grids holding the point
    _mutate(project / "gis" / "intake" / "placement.py",
            r"(hit AS MATERIALIZED \(\n(?:.*\n){3}\s*ORDER BY m\.code)( LIMIT 1\),)", r"\1 DESC\2")
    result = _run_tests(project, "tests/test_placement_oracle.py::test_open311_post_agrees_with_the_oracle")
    _expect_failure(result, "test_open311_post_agrees_with_the_oracle")


def test_the_behaviour_the_old_tests_locked_in_fails_the_new_ones(tmp_path):
    """The code before the fix (exact public points in Open311 GET, 0.001° in ticket queries, planners reading
    phone numbers through OGC), with today's tests: each of the three fails."""
    have = subprocess.run(["git", "cat-file", "-e", f"{BASE_BEFORE_THE_PRIVACY_FIX}^{{commit}}"], cwd=ROOT,
                          capture_output=True)
    assert have.returncode == 0, "the history does not hold the commit before the fix"
    project = tmp_path / "project"
    project.mkdir()
    archive = subprocess.run(["git", "archive", BASE_BEFORE_THE_PRIVACY_FIX], cwd=ROOT, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(project)], input=archive, check=True)
    shutil.copy(ROOT / "tests" / "test_privacy_precision.py", project / "tests" / "test_privacy_precision.py")
    _link_assets(project)
    result = _run_tests(project, "tests/test_privacy_precision.py")
    _expect_failure(result, "test_open311_list_and_single_requests", "test_tickets_list",
                    "test_planners_read_no_phone_numbers_in_descriptions")
