"""How `make test` splits the suite between its pytest-xdist workers (``-n 2 --dist loadscope``).

Each worker is a pytest session of its own, with its own private sandbox and its own session fixtures. A unit of
work goes to one worker and runs there in file order: a scenario file (its cases share one deploy), a test
module (its module fixtures are built once), or a whole folder whose tests share costly session fixtures (the
checker's TF models, built in a subprocess; the TF Serving tests' model zoo and its server).
"""

from __future__ import annotations

from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

#: Folders whose tests share costly session fixtures: one unit of work each.
SHARED_FOLDERS = ("tests/checker/", "tests/tfserving/")


def work_unit(nodeid: str) -> str:
    """``tests/checker/test_codes.py::test_x[a]`` -> ``tests/checker/``; otherwise the file of the test."""
    return next((folder for folder in SHARED_FOLDERS if nodeid.startswith(folder)), nodeid.split("::", 1)[0])


class SuiteScheduling(LoadScopeScheduling):
    """xdist's ``loadscope`` with :func:`work_unit` as the scope (largest units are handed out first)."""

    def _split_scope(self, nodeid: str) -> str:
        return work_unit(nodeid)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> SuiteScheduling | None:
    return SuiteScheduling(config, log) if config.getoption("dist") == "loadscope" else None
