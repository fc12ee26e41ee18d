"""Running the openai SDK's own API tests (Apache-2.0) against a loopback ``reprompt serve``.

``scripts/setup.sh`` fetches them from the sdist of the installed ``openai`` version on PyPI into
``.cache/openai-sdk-tests/<version>`` (or ``$REPROMPT_OPENAI_SDK_TESTS``); they are run, never copied into this
repository. Without them a test skips with a warning, and fails under CI (``$CI`` set): the conformance run
must happen there. The SDK's tests take their server from ``TEST_API_BASE_URL`` and run each case with a
``loose`` and a ``strict`` client (``_strict_response_validation``: every reply parsed strictly with the
SDK's types), sync and async.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

# Records every case's outcome, and for a failure the SDK's error: its class, HTTP status, the ``param``
# of the error body and the message.
PLUGIN = """
import json, os, pytest

RESULTS = []

@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" or (report.when == "setup" and report.failed):
        row = {"name": item.originalname, "id": item.nodeid, "outcome": report.outcome}
        exc = call.excinfo.value if call.excinfo is not None else None
        if exc is not None:
            row["error"] = type(exc).__name__
            row["status"] = getattr(exc, "status_code", None)
            body = getattr(exc, "body", None)
            row["param"] = body.get("param") if isinstance(body, dict) else None
            row["message"] = str(exc)[:1000]
        RESULTS.append(row)
    return report

def pytest_sessionfinish(session):
    with open(os.environ["SDK_RESULTS"], "w") as f:
        json.dump(RESULTS, f)
"""


def sdk_tests(*test_files: str) -> Path:
    """The folder holding the SDK's ``tests`` package with ``test_files``; skips (fails under CI) without it."""
    import openai

    root = Path(
        os.environ.get(
            "REPROMPT_OPENAI_SDK_TESTS", REPO_ROOT / ".cache" / "openai-sdk-tests" / openai.__version__
        )
    )
    missing = [f for f in test_files if not (root / f).is_file()]
    if missing:
        reason = (
            f"the openai SDK's tests are not fetched ({', '.join(missing)}; bash scripts/setup.sh does it)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"the SDK conformance run must happen in CI, but: {reason}")
        warnings.warn(reason, stacklevel=2)
        pytest.skip(reason)
    pytest.importorskip("pytest_asyncio")
    return root


def run_sdk_tests(
    root: Path, test_files: tuple[str, ...], base_url: str, tmp_path: Path, select: str
) -> list[dict[str, Any]]:
    """Run ``test_files`` of the SDK (``-k select``) against ``base_url``; one row per case (see PLUGIN)."""
    (tmp_path / "sdk_outcomes.py").write_text(PLUGIN)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = session\n"
    )
    results = tmp_path / "results.json"
    env = {
        **os.environ,
        "TEST_API_BASE_URL": base_url,
        "SDK_RESULTS": str(results),
        "PYTHONPATH": os.pathsep.join([str(root), str(tmp_path)]),  # their `tests` package, not ours
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-c", str(tmp_path / "pytest.ini"), "--rootdir", str(root)]
        + ["-p", "sdk_outcomes", "-p", "no:cacheprovider", "-k", select]
        + [str(root / f) for f in test_files],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert results.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    print(proc.stdout.splitlines()[-1] if proc.stdout else proc.stderr[-500:])
    rows: list[dict[str, Any]] = json.loads(results.read_text())
    return rows
