"""``reprompt ui`` as others reach it, through gradio_client (the browser itself: tests/test_ui_browser.py):

- off localhost it needs a password (``$REPROMPT_UI_PASSWORD``, or one generated and printed once), warns, and
  prints the address to open, not ``localhost``;
- sessions are isolated: each tab's turns are numbered from 1 in a folder with a random name, no client can
  fetch a turn folder by path, and the history shows a session's own turns only;
- no absolute model path reaches the page's progress text or ``record.json``;
- a bad field (a seed of 1e30) is a message on the page, the last result stays, and the next request works;
- the first request says that the models load; the status says which candidate was kept and why.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

pytest.importorskip("gradio")
from gradio_client import Client  # noqa: E402

from reprompt.cli.common import model_spec  # noqa: E402
from reprompt.cli.main import make_parser  # noqa: E402
from tests.fake_openai import FakeOpenAI  # noqa: E402


def spec(*argv: str):
    return model_spec(make_parser().parse_args(["ui", *argv]))


def enhance(client: Client, prompt: str, seed=0, images: int = 1, candidates: int = 1, temperature=0.0):
    """One click on *Enhance & render*: the page's own API, with the page's inputs in order."""
    return client.predict(
        prompt, True, candidates, seed, images, "off", None, temperature, 1.0, 8, None, None, 32, 32, None, None,
        api_name="/on_enhance",
    )  # fmt: skip


OUT = {
    "reasoning": 0,
    "original": 1,
    "enhanced": 2,
    "status": 3,
    "downloads": 6,
    "history": 7,
    "message": 9,
}  # State outputs are not returned


@pytest.fixture()
def local_ui(tmp_path, tiny_model):
    from reprompt.ui.app import launch

    folder = str(tiny_model("tiny-qwen2"))
    demo, url = launch(spec("--policy", folder), out_dir=tmp_path / "turns", port=0, block=False)
    try:
        yield url, tmp_path / "turns", folder
    finally:
        demo.close()


def test_off_localhost_a_password_is_required_printed_once_and_the_real_address_shown(
    tmp_path, capfd, monkeypatch
):
    from reprompt.ui.app import launch

    monkeypatch.delenv("REPROMPT_UI_PASSWORD", raising=False)
    demo, url = launch(spec("--policy", "none"), out_dir=tmp_path / "t", host="0.0.0.0", port=0, block=False)
    try:
        out, err = capfd.readouterr()
        assert "localhost" not in url and "0.0.0.0" not in url and url in out
        assert "warning" in err and "reachable from other machines" in err
        (line,) = [ln for ln in out.splitlines() if ln.startswith("password (shown once")]
        password = line.rsplit(" ", 1)[1]
        assert len(password) >= 16 and out.count(password) == 1 and password not in err
        with pytest.raises(Exception):  # noqa: B017 (gradio_client's own error: no access)
            Client(url, verbose=False)
        assert httpx.get(url + "gradio_api/info").status_code in (401, 403)
        client = Client(url, auth=("reprompt", password), verbose=False)
        result = enhance(client, "a red cat")
        assert result[OUT["original"]] == "a red cat"
    finally:
        demo.close()
    monkeypatch.setenv("REPROMPT_UI_PASSWORD", "chosen-by-the-owner")
    demo, url = launch(spec("--policy", "none"), out_dir=tmp_path / "u", host="0.0.0.0", port=0, block=False)
    try:
        out, _ = capfd.readouterr()
        assert "chosen-by-the-owner" not in out and "password (shown once" not in out
        assert (
            enhance(Client(url, auth=("reprompt", "chosen-by-the-owner"), verbose=False), "a dog")[1]
            == "a dog"
        )
    finally:
        demo.close()


def test_sessions_see_only_their_own_turns_and_nobody_fetches_a_turn_folder(local_ui):
    url, turns, _ = local_ui
    a, b = Client(url, verbose=False), Client(url, verbose=False)
    first = enhance(a, "a red cat")
    enhance(a, "a green bus")
    mine = enhance(b, "a blue dog")
    history = mine[OUT["history"]]["data"]
    assert [row[:3] for row in history] == [[1, "rewrite", "a blue dog"]]  # numbered from 1, b's own only
    records = sorted(turns.glob("session-*/turn-*/record.json"))
    assert len(records) == 3 and len({p.parent.parent for p in records}) == 2
    for session in {p.parent.parent.name for p in records}:
        assert len(session.removeprefix("session-")) >= 16  # random, not a counter or a time
    for path in records + [turns / "turn-0001" / "record.json"]:
        for route in ("gradio_api/file=", "file="):
            r = httpx.get(f"{url}{route}{path}")
            assert r.status_code in (403, 404), f"{route}{path} was served"
    for served in first[OUT["downloads"]]:  # the page's own copies are served, under unguessable names
        assert str(turns) not in served


def test_no_absolute_model_path_in_progress_or_records(tmp_path, tiny_model):
    from reprompt.ui.studio import Studio

    folder = str(tiny_model("tiny-qwen2"))
    studio = Studio(spec("--policy", folder, "--max-new-tokens", "4"), tmp_path)
    said: list[str] = []
    turn = studio.enhance("a cat", progress=lambda f, d: said.append(d))
    assert said and not [d for d in said if folder in d]
    assert any("first request" in d for d in said)  # the model load is announced
    for path in turn.folder.iterdir():
        assert folder not in path.read_bytes().decode("latin-1"), path.name
    record = json.loads(turn.record_path.read_text())
    assert record["settings"]["policy"] == "tiny-qwen2" and record["settings"]["policy_model"] == "tiny-qwen2"
    edit = studio.render_edit(turn, "a cat on a sofa")  # the edit still finds the model it needs
    assert json.loads(edit.record_path.read_text())["rewritten"] == "a cat on a sofa"


def test_a_bad_seed_is_a_message_and_the_tab_keeps_working(local_ui):
    url, _, _ = local_ui
    client = Client(url, verbose=False)
    ok = enhance(client, "a red cat", seed=5)
    assert ok[OUT["message"]] == ""
    for seed in (1e30, 2**63, -1):
        bad = enhance(client, "a blue dog", seed=seed)
        assert "seed must be a whole number between 0 and" in bad[OUT["message"]], seed
        assert bad[OUT["original"]] == {"__type__": "update"}  # no new value: the last result stays
    again = enhance(client, "a green bus", seed=6)
    assert again[OUT["message"]] == "" and again[OUT["original"]] == "a green bus"
    assert [row[2] for row in again[OUT["history"]]["data"]] == ["a green bus", "a red cat"]


def test_the_page_says_the_first_request_loads_the_models_and_shows_its_limits(tmp_path):
    from reprompt.ui.app import build_app
    from reprompt.ui.studio import Studio

    config = build_app(Studio(spec("--policy", "none"), tmp_path)).get_config_file()
    by_id = {c["props"].get("elem_id"): c["props"] for c in config["components"] if c["props"].get("elem_id")}
    assert "first request loads the models" in by_id["status"]["value"]
    assert by_id["prompt"]["max_length"] == 2000 and "2000 characters" in by_id["prompt"]["info"]
    assert "9007199254740991" in by_id["seed"]["info"]
    infos = [c["props"].get("info") or "" for c in config["components"]]
    assert any("16–4096 px" in i for i in infos)


def test_the_status_says_which_candidate_was_kept_and_why(tmp_path):
    from reprompt.ui.studio import Studio, describe

    dropped = "<reason>one apple</reason><prompt>A red apple on a table.</prompt>"  # drops the "two"
    kept = "<reason>two apples</reason><prompt>Two red apples on a table, side by side.</prompt>"
    with FakeOpenAI(lambda body: ([dropped] + [kept] * 7)[: body.get("n", 1)]) as server:
        studio = Studio(
            spec("--policy", "openai", "--api-base", server.base_url, "--api-model", "fake-model"), tmp_path
        )
        turn = studio.enhance("two red apples", candidates=2, temperature=0.9, guard="retry")
    text = describe(turn)
    assert turn.rewrite.prompt.startswith("Two red apples")
    assert "Kept candidate 2 of 2" in text and "candidate 1: the intent guard found" in text
    assert "passed it" in text


def test_cli_flag_for_the_password_variable():
    args = make_parser().parse_args(["ui", "--host", "0.0.0.0", "--password-env", "MY_UI_PASSWORD"])
    assert args.password_env == "MY_UI_PASSWORD" and os.environ.get("MY_UI_PASSWORD") is None


def test_the_password_is_never_logged(tmp_path, caplog, capfd, monkeypatch):
    import logging

    from reprompt.ui.app import launch

    monkeypatch.delenv("REPROMPT_UI_PASSWORD", raising=False)
    caplog.set_level(logging.DEBUG)
    demo, _ = launch(spec("--policy", "none"), out_dir=tmp_path / "t", host="0.0.0.0", port=0, block=False)
    demo.close()
    out, _ = capfd.readouterr()
    password = next(ln for ln in out.splitlines() if ln.startswith("password")).rsplit(" ", 1)[1]
    assert password not in caplog.text
    assert not list(Path(tmp_path / "t").rglob("*")) or password not in "".join(
        p.read_text(errors="ignore") for p in Path(tmp_path / "t").rglob("*") if p.is_file()
    )
