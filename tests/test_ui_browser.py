"""``reprompt ui`` in a real browser: Debian's Chromium driven by Playwright for Python (no browser
download). The app runs in-process on a free port with a tiny zoo policy and the sketch backbone; the
test types a prompt, clicks, waits for both images, checks the enhanced prompt, edits it, renders again
and saves screenshots. Without Chromium or Playwright it skips and says why (in CI, where
scripts/setup.sh installs Chromium, it fails instead)."""

from __future__ import annotations

import json
import os
import warnings

import pytest

from reprompt.cli.common import model_spec
from reprompt.cli.main import make_parser

PROMPT = "a photo of a red apple and a blue car"
EDITED = "A red apple on the left side of the image. A blue car on the right side of the image."


def test_ui_in_a_real_browser(tmp_path, tiny_model):
    from reprompt.testing.browser import browser_skip_reason, drive

    reason = browser_skip_reason()
    if reason and os.environ.get("CI"):  # scripts/setup.sh installs Chromium in CI: it must run there
        pytest.fail(f"the browser test must run in CI, but: {reason}")
    if reason:
        warnings.warn(f"browser test skipped: {reason}", stacklevel=1)  # shown in pytest's summary
        print(f"browser test skipped: {reason}")
        pytest.skip(reason)
    from reprompt.ui.app import launch

    args = make_parser().parse_args(
        ["ui", "--policy", str(tiny_model("tiny-qwen2")), "--max-new-tokens", "8", "--height", "192"]
    )
    turns = tmp_path / "turns"
    demo, url = launch(model_spec(args), out_dir=turns, port=0, block=False)
    try:
        obs = drive(url, PROMPT, EDITED, screenshot=tmp_path / "ui.png", timeout_s=120)
    finally:
        demo.close()

    records = [json.loads(p.read_text()) for p in sorted(turns.glob("session-*/turn-*/record.json"))]
    assert len(records) == 2
    first, edit = records
    # the page shows what the engine produced: a random-weight policy falls back to the original
    assert obs.original == PROMPT and obs.enhanced == first["rewritten"] == PROMPT
    assert "Fallback" in obs.status and first["rewrite"]["fallback"]
    assert obs.left_srcs and obs.right_srcs
    # editing the enhanced prompt re-renders the right side with the same seed; the left stays
    assert obs.enhanced_after_edit == EDITED == edit["rewritten"]
    assert edit["seeds"] == first["seeds"] and edit["settings"]["ui_kind"] == "edit"
    assert obs.right_srcs_after_edit != obs.right_srcs
    assert [s.rsplit("/", 1)[-1] for s in obs.left_srcs_after_edit] == ["original_0.png"]
    assert obs.history_rows == 2 and obs.enhanced_from_history == PROMPT
    assert any("record.json" in n for n in obs.download_names) and any(
        ".zip" in n for n in obs.download_names
    )
    assert obs.blocked == []  # the page loaded nothing from outside the app
    for shot in obs.screenshots:
        assert shot.exists() and shot.stat().st_size > 10_000


def test_a_huge_seed_in_a_real_browser_is_a_message_and_the_tab_keeps_working(tmp_path, tiny_model):
    """Typing 1e30 (a seed over 2**63) used to leave red "Error" badges with no message, and every later
    request of the tab failed until a reload."""
    from reprompt.testing.browser import browser_skip_reason, drive_bad_seed

    reason = browser_skip_reason()
    if reason and os.environ.get("CI"):
        pytest.fail(f"the browser test must run in CI, but: {reason}")
    if reason:
        pytest.skip(reason)
    from reprompt.ui.app import launch

    args = make_parser().parse_args(["ui", "--policy", "none", "--height", "96", "--width", "96"])
    demo, url = launch(model_spec(args), out_dir=tmp_path / "turns", port=0, block=False)
    try:
        obs = drive_bad_seed(url, seed="1e30")
    finally:
        demo.close()
    assert "seed must be a whole number between 0 and 9007199254740991" in obs.message
    assert obs.error_toasts == [] and obs.kept_srcs  # a message, no error badges, the last images stay
    assert obs.recovered and obs.message_after == ""  # the next request of the same tab works
