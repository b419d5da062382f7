"""Mutation runs: credit the tests that drive the app server with the mutated functions the server called.

mutmut learns which tests reach a function by recording calls in its own process, but `LiveServer` runs the app
in a child process, so every function reached only over HTTP would look untested and its mutants would never
run. During mutmut's stats pass (MUTANT_UNDER_TEST=stats) the server appends each call to a file in
GRIDGOV_MUTMUT_HITS_DIR, and the test process adds them to mutmut's record before each test's teardown. Outside a
mutation run nothing here does anything.
"""

from __future__ import annotations

import os
from pathlib import Path

HITS_DIR_ENV = "GRIDGOV_MUTMUT_HITS_DIR"


def stats_pass() -> bool:
    """Whether this process runs under mutmut's stats pass."""
    return os.environ.get("MUTANT_UNDER_TEST") == "stats"


def install_in_server() -> None:
    """In the app's process: write every recorded call to this process's hits file as it happens."""
    hits_dir = os.environ.get(HITS_DIR_ENV)
    if not (hits_dir and stats_pass()):
        return
    from mutmut.state import state

    fd = os.open(Path(hits_dir) / f"{os.getpid()}.hits", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    class Relayed(set):
        def add(self, name: str) -> None:
            os.write(fd, (name + "\n").encode())

    state()._stats = Relayed()


def collect_into_tests(hits_dir: Path) -> None:
    """In the test process: add the servers' recorded calls to mutmut's record, then empty the files."""
    from mutmut.state import state

    for path in hits_dir.glob("*.hits"):
        names = path.read_text(encoding="utf-8").split()
        path.write_text("", encoding="utf-8")
        state()._stats.update(names)
