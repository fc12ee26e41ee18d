"""``reprompt serve`` as users start it: the exposure warning, an early error for an empty token variable,
and the OpenAI-compatible endpoints answering the official SDK."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest

from reprompt.cli.main import main
from reprompt.serving.http import free_port

REPO = Path(__file__).resolve().parents[1]


def test_an_empty_token_variable_fails_before_loading_anything(capsys, monkeypatch):
    monkeypatch.setenv("EMPTY_TOKEN", "")
    assert main(["serve", "--policy", "none", "--token-env", "EMPTY_TOKEN"]) == 2
    assert "--token-env EMPTY_TOKEN is set but the variable is empty" in capsys.readouterr().err


@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_a_port_no_server_can_bind_fails_before_loading_anything(capsys, port):
    """It once loaded the models, then died in uvicorn's bind with an internal error (OverflowError)."""
    assert main(["serve", "--policy", "smollm2", "--backbone", "sketch", "--port", port]) == 2
    assert f"--port must be between 1 and 65535, got {port}" in capsys.readouterr().err
    config = str(REPO / "configs" / "rewards" / "cpu.yaml")
    assert main(["serve-rewards", "--config", config, "--port", port]) == 2
    assert f"--port must be between 1 and 65535, got {port}" in capsys.readouterr().err


def test_serve_warns_when_exposed_without_a_token_and_answers_the_sdk():
    port = free_port("0.0.0.0")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "reprompt.cli.main", "serve", "--policy", "none", "--backbone", "sketch"]
    proc = subprocess.Popen(
        [*cmd, "--host", "0.0.0.0", "--port", str(port), "--width", "32"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
        deadline = time.monotonic() + 60
        while True:  # wait for the server to come up
            try:
                models = [m.id for m in client.models.list()]
                break
            except openai.APIConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert models == ["none"]
        reply = client.chat.completions.create(
            model="none", messages=[{"role": "user", "content": "a red cat"}]
        )
        assert reply.choices[0].message.content == "a red cat"  # the no-rewrite policy returns the prompt
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert f"reprompt serving 'none' on http://0.0.0.0:{port}" in out
    assert "serving images and rewrites on 0.0.0.0 without a token" in err  # before: no warning at all
