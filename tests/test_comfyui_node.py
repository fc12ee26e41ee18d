"""The ComfyUI node, without ComfyUI: the package is imported the way ComfyUI imports a custom-node folder
(its ``__init__.py`` as a package, reading ``NODE_CLASS_MAPPINGS``) and the node is called with the tiny
zoo policy and with an OpenAI-compatible URL."""

from __future__ import annotations

import gc
import importlib.util
import subprocess
import sys
import weakref
import zipfile
from pathlib import Path

import pytest

from reprompt.errors import RepromptError
from tests.fake_openai import FakeOpenAI

NODE_DIR = Path(__file__).resolve().parents[1] / "comfyui"


def load_like_comfyui(folder: Path, name: str):
    """What ComfyUI's ``load_custom_node`` does for a folder in ``custom_nodes``."""
    spec = importlib.util.spec_from_file_location(name, folder / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def package():
    mod = load_like_comfyui(NODE_DIR, "reprompt_custom_nodes_test")
    yield mod
    sys.modules[mod.__name__ + ".nodes"].unload_all()


@pytest.fixture()
def node(package):
    nodes = sys.modules[package.__name__ + ".nodes"]
    nodes.unload_all()
    yield package.NODE_CLASS_MAPPINGS["RePrompt"]()
    nodes.unload_all()


def call(node, **kw):
    args = dict(
        prompt="a photo of two red apples",
        policy="smollm2-sketch",
        enable=True,
        candidates=1,
        seed=0,
        temperature=0.0,
        keep_loaded=False,
    )
    args.update(kw)
    return node.enhance(**args)


def test_node_contract(package):
    cls = package.NODE_CLASS_MAPPINGS["RePrompt"]
    assert package.NODE_DISPLAY_NAME_MAPPINGS["RePrompt"].startswith("RePrompt")
    assert cls.RETURN_TYPES == ("STRING", "STRING")
    assert cls.RETURN_NAMES == ("enhanced_prompt", "reasoning")
    assert callable(getattr(cls(), cls.FUNCTION))
    types = cls.INPUT_TYPES()
    required = types["required"]
    assert required["prompt"][0] == "STRING" and required["prompt"][1]["multiline"]
    assert {"policy", "enable", "candidates", "seed", "keep_loaded"} <= set(required)
    assert required["enable"][0] == "BOOLEAN" and required["candidates"][0] == "INT"
    # every input has the (type, options) shape ComfyUI reads; combo inputs are lists of choices
    for group in types.values():
        for spec in group.values():
            assert isinstance(spec[0], str | list) and isinstance(spec[1], dict)
    if importlib.util.find_spec("reprompt.guard") is not None:
        assert types["optional"]["guard"][0] == ["off", "warn", "retry", "fallback"]


def test_disabled_passes_through_without_loading(node):
    nodes = sys.modules[type(node).__module__]
    out = call(node, enable=False, policy="no-such-policy", keep_loaded=True)
    assert out == ("a photo of two red apples", "")
    assert nodes.loaded_policies() == []


def test_tiny_policy_is_unloaded_after_use_unless_kept(node, tiny_model):
    nodes = sys.modules[type(node).__module__]
    folder = str(tiny_model("tiny-qwen2"))
    enhanced, reasoning = call(node, policy=folder, max_new_tokens=16)
    # a random-weight model never writes the format: the original passes through, and the node says so
    assert enhanced == "a photo of two red apples"
    assert reasoning.startswith("[fallback:")
    assert nodes.loaded_policies() == []

    call(node, policy=folder, max_new_tokens=16, keep_loaded=True)
    assert nodes.loaded_policies() == [folder]
    kept = next(iter(nodes._CACHE.values()))
    model_ref = weakref.ref(kept.model)
    call(node, policy=folder, max_new_tokens=16, keep_loaded=True)
    assert next(iter(nodes._CACHE.values())) is kept  # reused, not reloaded
    del kept
    call(node, policy=folder, max_new_tokens=16, keep_loaded=False)  # asked to let go
    gc.collect()
    assert nodes.loaded_policies() == []
    assert model_ref() is None  # the weights are gone, not only the cache entry


def test_candidates_and_seed_sample_reproducibly(node, tiny_model):
    folder = str(tiny_model("tiny-qwen2"))
    kw = dict(policy=folder, max_new_tokens=12, candidates=3, temperature=1.0)
    assert call(node, seed=7, **kw) == call(node, seed=7, **kw)
    with pytest.raises(RepromptError, match="temperature"):
        call(node, policy=folder, candidates=2, temperature=0.0)
    with pytest.raises(RepromptError, match="empty prompt"):
        call(node, policy=folder, prompt="   ")


def test_openai_compatible_url_policy(node):
    reply = (
        "<reason>Two apples, both red, side by side.</reason><prompt>Two red apples side by side.</prompt>"
    )
    with FakeOpenAI(reply) as server:
        server.models = ["served-rewriter"]
        enhanced, reasoning = call(node, policy=server.base_url, candidates=2, temperature=0.8, seed=3)
        assert (enhanced, reasoning) == (
            "Two red apples side by side.",
            "Two apples, both red, side by side.",
        )
        sent = server.requests[-1]
        assert sent["model"] == "served-rewriter"  # the first model the URL lists
        assert sent["n"] == 2 and sent["seed"] == 3 and sent["temperature"] == 0.8
        call(node, policy=server.base_url, api_model="named")
        assert server.requests[-1]["model"] == "named"


def test_unreachable_url_is_a_clear_error(node):
    with pytest.raises(RepromptError, match="could not list models"):
        call(node, policy="http://127.0.0.1:9/v1")


@pytest.mark.skipif(
    importlib.util.find_spec("reprompt.guard") is None, reason="no intent guard in this build"
)
def test_guard_fallback_keeps_what_was_asked(node):
    # the served rewrite drops the apples' count and color: the guard falls back to the original
    with FakeOpenAI("<reason>fruit</reason><prompt>A green pear on a table.</prompt>") as server:
        enhanced, reasoning = call(node, policy=server.base_url, guard="fallback")
        assert enhanced == "a photo of two red apples"
        assert "intent guard" in reasoning
        enhanced, _ = call(node, policy=server.base_url, guard="off")
        assert enhanced == "A green pear on a table."


def test_pip_installable(tmp_path):
    """``pip install ./comfyui`` gives an importable ``reprompt_comfyui`` with the node mappings."""
    wheels = tmp_path / "wheels"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            ".",
        ],
        cwd=_copy_tree(NODE_DIR, tmp_path / "src"),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = wheels.glob("comfyui_reprompt-*.whl")
    with zipfile.ZipFile(wheel) as z:
        assert {"reprompt_comfyui/__init__.py", "reprompt_comfyui/nodes.py"} <= set(z.namelist())
        z.extractall(tmp_path / "site")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from reprompt_comfyui import NODE_CLASS_MAPPINGS; print(sorted(NODE_CLASS_MAPPINGS))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "site")], capture_output=True, text=True)
    assert out.stdout.strip() == "['RePrompt']", out.stderr[-2000:]


def _copy_tree(src: Path, dst: Path) -> Path:
    """Build from a copy, so the checkout gets no build/ or egg-info folders."""
    import shutil

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    return dst
