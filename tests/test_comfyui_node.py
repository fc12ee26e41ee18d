"""The ComfyUI node (V3 schema), without ComfyUI: the package is imported the way ComfyUI imports a custom-node
folder (its ``__init__.py`` as a package), ``comfy_entrypoint`` is awaited as ComfyUI's ``load_custom_node``
does, against a stand-in of ``comfy_api.latest`` (tests/comfy_stub), and the node is executed with the tiny
zoo policy and with an OpenAI-compatible URL. The registry's rules for ``pyproject.toml`` are checked, and
``comfy node validate`` (comfy-cli, GPL: run as a tool, never imported) runs when scripts/setup.sh installed it."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
import weakref
import zipfile
from pathlib import Path

import pytest

from reprompt.errors import RepromptError
from tests.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parents[1]
NODE_DIR = REPO / "comfyui"
STUB = Path(__file__).resolve().parent / "comfy_stub"


def load_like_comfyui(folder: Path, name: str):
    """What ComfyUI's ``load_custom_node`` does for a folder in ``custom_nodes``: import its ``__init__.py``
    as a package; with no ``NODE_CLASS_MAPPINGS``, await ``comfy_entrypoint()`` and ask for its nodes."""
    spec = importlib.util.spec_from_file_location(name, folder / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    assert not hasattr(module, "NODE_CLASS_MAPPINGS")  # V1 mappings would win over the V3 entrypoint
    from comfy_api.latest import ComfyExtension

    extension = asyncio.run(module.comfy_entrypoint())
    assert isinstance(extension, ComfyExtension)
    asyncio.run(extension.on_load())
    return module, asyncio.run(extension.get_node_list())


@pytest.fixture(scope="module")
def loaded():
    sys.path.insert(0, str(STUB))
    try:
        module, nodes = load_like_comfyui(NODE_DIR, "reprompt_custom_nodes_test")
        yield module, nodes
        sys.modules[module.__name__ + ".core"].unload_all()
    finally:
        sys.path.remove(str(STUB))
        for name in [m for m in sys.modules if m == "comfy_api" or m.startswith("comfy_api.")]:
            del sys.modules[name]


@pytest.fixture()
def core(loaded):
    module, _ = loaded
    core = sys.modules[module.__name__ + ".core"]
    core.unload_all()
    yield core
    core.unload_all()


@pytest.fixture()
def node(loaded, core):
    (cls,) = loaded[1]
    return cls


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
    return tuple(node.execute(**args).result)


def test_v3_node_contract(loaded):
    from comfy_api.latest import io

    (cls,) = loaded[1]
    assert issubclass(cls, io.ComfyNode)
    schema = cls.GET_SCHEMA()
    assert schema.node_id == "RePrompt" and schema.display_name.startswith("RePrompt")
    assert schema.category == "conditioning/reprompt" and schema.description
    outputs = [(o.io_type, o.id) for o in schema.outputs]
    assert outputs == [("STRING", "enhanced_prompt"), ("STRING", "reasoning")]
    inputs = {i.id: i for i in schema.inputs}
    assert inputs["prompt"].io_type == "STRING" and inputs["prompt"].multiline
    required = {k for k, i in inputs.items() if not i.optional}
    assert {"policy", "enable", "candidates", "seed", "keep_loaded"} <= required
    assert inputs["enable"].io_type == "BOOLEAN" and inputs["candidates"].io_type == "INT"
    # the key is a server-side setting: no input names an environment variable or a key
    assert not [k for k in inputs if "key" in k or "env" in k]
    if importlib.util.find_spec("reprompt.guard") is not None:
        assert inputs["guard"].options == ["off", "warn", "retry", "fallback"]
    code = cls.execute.__code__
    assert set(code.co_varnames[1 : code.co_argcount]) == set(inputs)  # ComfyUI passes each input by its id


def test_disabled_passes_through_without_loading(node, core):
    out = call(node, enable=False, policy="no-such-policy", keep_loaded=True)
    assert out == ("a photo of two red apples", "")
    assert core.loaded_policies() == []


def test_tiny_policy_is_unloaded_after_use_unless_kept(node, core, tiny_model):
    nodes = core
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


def test_openai_compatible_url_policy(node, monkeypatch):
    monkeypatch.delenv("REPROMPT_COMFYUI_API_BASE", raising=False)
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


def test_the_api_key_goes_only_to_the_url_the_server_configured(node, monkeypatch):
    """A shared workflow names the URL; it cannot choose the key or where the key goes."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-never-sent")
    monkeypatch.setenv("REPROMPT_COMFYUI_API_KEY", "sk-configured")
    with FakeOpenAI() as trusted, FakeOpenAI() as other:
        monkeypatch.setenv("REPROMPT_COMFYUI_API_BASE", trusted.base_url + "/")
        call(node, policy=trusted.base_url)
        call(node, policy=other.base_url)
        sent_trusted = [h.get("Authorization") for h in trusted.headers]
        sent_other = [h.get("Authorization") for h in other.headers]
    assert sent_trusted and set(sent_trusted) == {"Bearer sk-configured"}
    assert sent_other and set(sent_other) == {None}  # no key at all, not even $OPENAI_API_KEY


def test_a_workflow_cannot_name_a_key_variable(node, monkeypatch):
    monkeypatch.setenv("SECRET_OF_THE_HOST", "s3cret")
    with FakeOpenAI() as server, pytest.raises(TypeError):
        call(node, policy=server.base_url, api_key_env="SECRET_OF_THE_HOST")


def test_the_unrelated_pypi_reprompt_is_refused_with_a_clear_message(tmp_path):
    """If ComfyUI's Python has the unrelated PyPI project "reprompt" instead of ours, loading says so."""
    fake = tmp_path / "site" / "reprompt"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("NAME = 'another project that happens to be called reprompt'\n")
    code = (
        "import importlib.util, sys; sys.path[:0] = [sys.argv[1], sys.argv[2]];"
        "spec = importlib.util.spec_from_file_location('n', sys.argv[3] + '/__init__.py');"
        "m = importlib.util.module_from_spec(spec); sys.modules['n'] = m; spec.loader.exec_module(m)"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        # -I -S: no site-packages, so only the other "reprompt" is importable (as in a Python that has it)
        [sys.executable, "-I", "-S", "-c", code, str(tmp_path / "site"), str(STUB), str(NODE_DIR)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode != 0, out.stdout
    assert "different package" in out.stderr and "pip uninstall reprompt" in out.stderr


def test_registry_metadata_and_no_dependency_named_reprompt():
    meta = tomllib.loads((NODE_DIR / "pyproject.toml").read_text())
    project, comfy = meta["project"], meta["tool"]["comfy"]
    name = project["name"]
    # the Comfy registry's rules for a node id, and its advice (no "ComfyUI" in the name)
    assert len(name) < 100 and re.fullmatch(r"[A-Za-z][A-Za-z0-9]*([-_.][A-Za-z0-9]+)*", name)
    assert "comfyui" not in name.lower()
    assert name.lower() != "reprompt"  # the unrelated PyPI project's name
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])
    assert comfy["PublisherId"] and comfy["DisplayName"] == "RePrompt"
    assert project["urls"]["Repository"].startswith("https://")
    lines = (NODE_DIR / "requirements.txt").read_text().splitlines()
    requirements = [ln.split("#")[0].strip() for ln in lines]
    for dep in project.get("dependencies", []) + [r for r in requirements if r]:
        assert re.split(r"[<>=!~ \[;@]", dep)[0].lower().replace("_", "-") != "reprompt", dep


def comfy_cli() -> str | None:
    found = shutil.which("comfy", path=str(REPO / ".venv-tools" / "comfy-cli" / "bin"))
    return found or os.environ.get("REPROMPT_COMFY_CLI")


def test_comfy_node_validate(tmp_path):
    """The registry's own check (comfy-cli: pyproject parse, version, license form, ruff S102/S307/E702)."""
    exe = comfy_cli()
    if exe is None:
        reason = "comfy-cli is not installed (bash scripts/setup.sh installs it in .venv-tools/comfy-cli)"
        if os.environ.get("CI"):
            pytest.fail(f"comfy node validate must run in CI, but: {reason}")
        pytest.skip(reason)
    src = _copy_tree(NODE_DIR, tmp_path / "node")
    env = {**os.environ, "COMFY_CLI_TRACKING": "false", "DO_NOT_TRACK": "1"}
    out = subprocess.run(
        [exe, "--skip-prompt", "--no-json", "node", "validate"],
        cwd=src,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    print(out.stdout, out.stderr)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "All validation checks passed successfully" in out.stdout
    assert "Warning" not in out.stdout + out.stderr and "Security warnings" not in out.stdout


def test_pip_installable(tmp_path):
    """``pip install ./comfyui`` gives an importable ``reprompt_comfyui`` with the V3 entrypoint."""
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
    (wheel,) = wheels.glob("reprompt_node-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert {
            "reprompt_comfyui/__init__.py",
            "reprompt_comfyui/nodes.py",
            "reprompt_comfyui/core.py",
        } <= names
        metadata = z.read(next(n for n in names if n.endswith("METADATA"))).decode()
        assert "Requires-Dist" not in metadata  # nothing pip could resolve to the unrelated "reprompt"
        z.extractall(tmp_path / "site")
    code = (
        "import sys, asyncio; sys.path[:0] = sys.argv[1:3]; "
        "from reprompt_comfyui import comfy_entrypoint; "
        "ext = asyncio.run(comfy_entrypoint()); print([n.__name__ for n in asyncio.run(ext.get_node_list())])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "site"), str(STUB)], capture_output=True, text=True
    )
    assert out.stdout.strip() == "['RePrompt']", out.stderr[-2000:]


def _copy_tree(src: Path, dst: Path) -> Path:
    """Build from a copy, so the checkout gets no build/ or egg-info folders."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    return dst
