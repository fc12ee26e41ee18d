"""The CLI: fast help, one-line errors with non-zero exits, and the rewrite/generate paths."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from reprompt.cli.main import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from reprompt.cli.main import make_parser; make_parser().format_help(); "
        "heavy = [m for m in ('torch', 'transformers', 'diffusers', 'trl', 'numpy', 'fastapi') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rewrite", "   ", "--policy", "none"], "empty prompt"),
        (["rewrite", "x" * 5000, "--policy", "none"], "limit is 2000"),
        (["rewrite", "--policy", "none"], "give a prompt"),
        (["rewrite", "--file", "/nonexistent/prompts.txt", "--policy", "none"], "does not exist"),
        (["rewrite", "a cat", "--policy", "smolm2"], "Did you mean 'smollm2'"),
        (["rewrite", "a cat", "--policy", "/nonexistent/model"], "no model folder"),
        (["generate", "a cat", "--backbone", "flux-devv", "--policy", "none"], "Did you mean 'flux-dev'"),
        (
            [
                "generate",
                "a cat",
                "--backbone",
                "flux-dev",
                "--model",
                "/nonexistent/flux",
                "--policy",
                "none",
            ],
            "could not load",
        ),
        (["generate", "a cat", "--images", "0", "--policy", "none"], "--images"),
        (["generate", "", "--policy", "none"], "empty prompt"),
        (["rewrite", "a cat", "--policy", "none", "--candidates", "2"], "needs sampling"),
    ],
)
def test_user_errors_are_one_line_and_nonzero(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert err.startswith("reprompt: error:") and message in err
    assert "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("command", "what"),
    [
        (
            ["train", "grpo", "--config"],
            "recipe",
        ),  # TRL read it and raised a YAML ParserError: an internal error
        (["train", "sft", "--config"], "recipe"),
        (
            ["score", "--prompt", "a cat", "--completion", "<prompt>a cat</prompt>", "--config"],
            "reward config",
        ),
        (["serve-rewards", "--config"], "reward config"),
        (["rewrite", "a cat", "--policy"], "policy recipe"),
    ],
)
@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: [1, 2\n", "is not valid YAML (line 2, column 1): expected ',' or ']'"),
        ("- a\n- b\n", "must hold a mapping of settings, not a list"),
    ],
)
def test_a_broken_yaml_file_is_one_line_naming_the_file_and_where_it_breaks(
    capsys, tmp_path, command, what, text, problem
):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    code, _, err = run_cli(capsys, *command, str(path))
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"reprompt: error: {what}") and f"{path} {problem}" in err, err


@pytest.mark.parametrize("command", ["grpo", "sft"])
def test_a_misspelt_recipe_key_is_named_first(capsys, tmp_path, command):
    """TRL named an unknown key only after every other check had passed (a user with ``learning_rat: 1e-5``
    and no prompts was first told to set prompts), in its own words ("add them to the dataclass")."""
    path = tmp_path / "recipe.yaml"
    path.write_text("learning_rat: 1.0e-5\nmax_steps: 1\n")
    code, _, err = run_cli(capsys, "train", command, "--config", str(path))
    assert code == 2 and err.count("\n") == 1, err
    assert f"recipe {path}: unknown key(s) 'learning_rat'. Did you mean 'learning_rate'?" in err, err


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "a cat", "--policy", "none", "--backbone", "sketch", "--out"],
        ["data", "prompts", "--n-sft", "4", "--n-rl", "4", "--n-heldout", "0", "--out"],
    ],
)
def test_an_output_path_the_user_cannot_use_is_one_line_not_an_internal_error(capsys, tmp_path, argv):
    """A file where the output folder should go was ``reprompt: internal error: FileExistsError ...``, exit 1."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for out, problem in ((blocker, "File exists"), (blocker / "sub", "Not a directory")):
        code, _, err = run_cli(capsys, *argv, str(out))
        assert code == 2 and err.count("\n") == 1, err
        assert err.startswith(f"reprompt: error: {out}: {problem} (a file stands where a folder is needed"), (
            err
        )


def test_run_or_exit_says_a_file_problem_in_one_line(capsys, tmp_path):
    from reprompt.errors import run_or_exit

    def main() -> int:
        (tmp_path / "x").write_text("")
        (tmp_path / "x" / "y").mkdir()
        return 0

    assert run_or_exit(main, prog="reprompt-train") == 2
    assert capsys.readouterr().err.startswith(
        f"reprompt-train: error: {tmp_path / 'x' / 'y'}: Not a directory"
    )

    def bug() -> int:
        raise OSError("no path: a bug, not the user's")

    with pytest.raises(OSError, match="a bug"):
        run_or_exit(bug)


def test_models_lists_registries(capsys):
    code, out, _ = run_cli(capsys, "models")
    assert code == 0 and "flux-dev" in out and "black-forest-labs/FLUX.1-dev" in out and "smollm2" in out
    # every registered reward component is listed (it looked up a name that does not exist and said nothing)
    from reprompt.rewards import component_names

    assert "Reward components" in out and all(f"  {name} " in out for name in component_names())
    assert "GenEval detectors: oracle" in out


def test_rewrite_json_with_tiny_policy(capsys, tiny_model, tmp_path):
    f = tmp_path / "prompts.txt"
    f.write_text("a cat\n\n# a comment\ntwo dogs\n")
    code, out, _ = run_cli(
        capsys,
        "rewrite",
        "--file",
        str(f),
        "--json",
        "--policy",
        str(tiny_model("tiny-qwen2")),
        "--max-new-tokens",
        "6",
    )
    assert code == 0
    recs = [json.loads(line) for line in out.splitlines()]
    assert [r["original"] for r in recs] == ["a cat", "two dogs"]
    assert all(r["prompt"] and r["prompt_tokens"] and r["token_limit"] == 77 for r in recs)


def test_generate_writes_images_comparison_and_record(capsys, tiny_model, tmp_path):
    out_dir = tmp_path / "out"
    code, out, _ = run_cli(
        capsys,
        "generate",
        "a photo of a red cat",
        "--policy",
        str(tiny_model("tiny-qwen2")),
        "--backbone",
        "sketch",
        "--height",
        "64",
        "--images",
        "2",
        "--seed",
        "3",
        "--max-new-tokens",
        "6",
        "--out",
        str(out_dir),
    )
    assert code == 0 and "original : a photo of a red cat" in out
    rec = json.loads((out_dir / "record.json").read_text())
    assert rec["seeds"] == [3, 4] and rec["original"] == "a photo of a red cat"
    assert rec["files"]["comparison"] == "comparison.png"
    for name in rec["files"]["original"] + rec["files"]["rewritten"] + ["comparison.png"]:
        assert (out_dir / name).exists()


def test_generate_no_rewrite(capsys, tmp_path):
    code, out, _ = run_cli(
        capsys, "generate", "two dogs", "--no-rewrite", "--height", "64", "--out", str(tmp_path / "o")
    )
    rec = json.loads((tmp_path / "o" / "record.json").read_text())
    assert code == 0 and rec["rewritten"] == "two dogs" and "comparison" not in rec["files"]
    assert (tmp_path / "o" / "image_0.png").exists()


def test_generate_on_a_tiny_diffusers_backbone(capsys, tiny_model, tmp_path):
    code, _, _ = run_cli(
        capsys,
        "generate",
        "a cat",
        "--policy",
        "none",
        "--backbone",
        "flux-dev",
        "--model",
        str(tiny_model("tiny-flux")),
        "--height",
        "32",
        "--width",
        "32",
        "--steps",
        "2",
        "--out",
        str(tmp_path / "f"),
    )
    assert code == 0 and (tmp_path / "f" / "image_0.png").exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # flags written before the options were generated from the config dataclasses still parse, to the same values
        (
            [
                "eval",
                "geneval",
                "--metadata",
                "m",
                "--out",
                "o",
                "--no-progress",
                "--score-device",
                "cuda",
                "--detector-batch-size",
                "2",
                "--results-dir",
                "r",
                "--force",
                "--threshold",
                "0.5",
            ],
            {
                "progress": False,
                "score_device": "cuda",
                "detector_batch_size": 2,
                "results_dir": "r",
                "force": True,
                "threshold": 0.5,
            },
        ),
        (
            ["eval", "geneval-score", "run", "--no-progress", "--colors", "oracle", "--detector", "oracle"],
            {"progress": False, "colors": "oracle", "detector": "oracle"},
        ),
        (
            [
                "eval",
                "compbench",
                "generate",
                "--data-dir",
                "d",
                "--out",
                "o",
                "--images",
                "2",
                "--no-progress",
                "--shard",
                "1/2",
            ],
            {"out": "o", "images": 2, "progress": False, "shard": "1/2", "data_dir": "d"},
        ),
        (["serve", "--no-micro-batching", "--max-queue", "5"], {"micro_batching": False, "max_queue": 5}),
        (
            [
                "rewrite",
                "x",
                "--candidates",
                "3",
                "--temperature",
                "0.7",
                "--policy-seed",
                "1",
                "--prompt-lookup",
                "4",
            ],
            {"candidates": 3, "temperature": 0.7, "policy_seed": 1, "prompt_lookup": 4},
        ),
    ],
)
def test_generated_flags_parse(argv, expected):
    from reprompt.cli.main import make_parser

    args = vars(make_parser().parse_args(argv))
    assert {k: args[k] for k in expected} == expected


def test_generated_flags_build_the_configs_with_their_defaults():
    """A command's config built from its flags equals the dataclass's own defaults: each default lives once."""
    from reprompt.cli.common import generation_options
    from reprompt.cli.eval import _score_config
    from reprompt.cli.main import make_parser
    from reprompt.eval.geneval.evaluate import ScoreConfig
    from reprompt.policy import GenerationOptions

    args = make_parser().parse_args(["eval", "geneval-score", "run"])
    assert _score_config(args) == ScoreConfig()
    args = make_parser().parse_args(["rewrite", "x"])
    assert generation_options(args) == GenerationOptions()


def test_data_prompts_flags_carry_the_prompt_config_defaults():
    """`reprompt data prompts` takes its counts, seed and allow-short defaults from PromptGenConfig."""
    from reprompt.cli.data import PROMPT_FLAGS_BY_HAND
    from reprompt.cli.main import make_parser
    from reprompt.cli.options import config_values
    from reprompt.data.prompts import PromptGenConfig

    args = make_parser().parse_args(["data", "prompts", "--out", "x"])
    plain = config_values(PromptGenConfig, args, skip=PROMPT_FLAGS_BY_HAND)
    assert plain == {"n_sft": 8000, "n_heldout": 0, "seed": 0, "allow_short": False}
    assert args.n_rl is None and args.counts == "2,3,4"  # None: 1000 unless --rl-from
    args = make_parser().parse_args(["data", "prompts", "--out", "x", "--no-allow-short", "--n-sft", "5"])
    assert (args.allow_short, args.n_sft) == (False, 5)


def test_loading_flags_and_loaders_share_one_default():
    """The policy and backbone loading flags, and the loaders' keyword defaults, come from
    PolicyLoadOptions / BackboneOptions: a default changed there changes everywhere."""
    import dataclasses
    import inspect

    from reprompt.backbones.base import BackboneOptions
    from reprompt.backbones.diffusers_backbone import DiffusersBackbone
    from reprompt.cli.common import backbone_choice, policy_choice
    from reprompt.cli.main import make_parser
    from reprompt.policy.base import PolicyLoadOptions
    from reprompt.policy.hf import RePrompter
    from reprompt.policy.openai_compat import OpenAIRewriter

    args = make_parser().parse_args(["generate", "a cat", "--backbone", "flux-dev"])
    kw = policy_choice(args).load_kwargs()
    assert kw.pop("prompt_spec") is None
    assert kw == dataclasses.asdict(PolicyLoadOptions())
    expected = {k: v for k, v in dataclasses.asdict(BackboneOptions()).items() if v is not None}
    assert backbone_choice(args).load_kwargs() == expected
    loaders = [
        (
            inspect.signature(DiffusersBackbone.from_pretrained),
            BackboneOptions(),
            ("device", "dtype", "batch_size"),
        ),
        (
            inspect.signature(RePrompter.from_pretrained),
            PolicyLoadOptions(),
            ("device", "dtype", "trust_remote_code"),
        ),
    ]
    for sig, options, names in loaders:
        for name in names:
            assert sig.parameters[name].default == getattr(options, name), name
    sig = inspect.signature(OpenAIRewriter.__init__)
    assert sig.parameters["base_url"].default == PolicyLoadOptions().api_base
    assert sig.parameters["api_key_env"].default == PolicyLoadOptions().api_key_env
    args = make_parser().parse_args(
        ["generate", "a cat", "--policy-device", "cuda:1", "--render-batch-size", "2"]
    )
    assert policy_choice(args).load_kwargs()["device"] == "cuda:1" and args.device == "cpu"
    args = make_parser().parse_args(["generate", "x", "--backbone", "sd3", "--render-batch-size", "2"])
    assert backbone_choice(args).load_kwargs()["batch_size"] == 2


def test_compare_and_bind_flags_use_the_library_defaults():
    import inspect

    from reprompt.cli.main import make_parser
    from reprompt.eval.compare import compare_runs
    from reprompt.eval.report import build_report
    from reprompt.rewards.config import ServiceConfig
    from reprompt.serving.http import free_port

    args = make_parser().parse_args(["eval", "compare", "a", "b"])
    sig = inspect.signature(compare_runs).parameters
    assert (args.resamples, args.confidence) == (sig["resamples"].default, sig["confidence"].default)
    assert inspect.signature(build_report).parameters["resamples"].default == args.resamples
    hosts = {
        make_parser().parse_args(["serve"]).host,
        make_parser().parse_args(["ui"]).host,
        ServiceConfig().host,
        inspect.signature(free_port).parameters["host"].default,
    }
    assert hosts == {"127.0.0.1"}  # servers bind to this machine unless told otherwise


MODEL_COMMANDS = {
    "generate": ["generate", "a cat"],
    "rewrite": ["rewrite", "a cat"],
    "serve": ["serve"],
    "ui": ["ui"],
    "eval geneval": ["eval", "geneval", "--metadata", "{meta}", "--out", "{out}"],
    "eval compbench generate": ["eval", "compbench", "generate", "--data-dir", "{out}", "--out", "{out}"],
    "bench latency": ["bench", "latency"],
}


@pytest.mark.parametrize("command", list(MODEL_COMMANDS))
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (["--candidates", "2"], "num_candidates > 1 needs sampling"),  # greedy decoding, two candidates
        (["--top-p", "1.5"], "top_p must be in"),
    ],
)
def test_every_command_checks_its_options_before_loading_a_model(capsys, tmp_path, command, bad, message):
    """A bad decoding flag is refused before the policy loads: the policy and the backbone (a hub id, which
    only loading can look for) named here do not exist, so a command that loaded first would fail on them (and,
    with real models, only after a long load)."""
    meta = tmp_path / "meta.jsonl"
    meta.write_text(
        '{"tag": "single_object", "prompt": "a photo of a cat", "include": [{"class": "cat", "count": 1}], "exclude": []}\n'
    )
    argv = [a.format(meta=meta, out=tmp_path / "run") for a in MODEL_COMMANDS[command]]
    missing = str(tmp_path / "no-such-policy")
    code, _, err = run_cli(
        capsys, *argv, "--policy", missing, "--backbone", "no-such-org/no-such-backbone", *bad
    )
    assert code == 2 and message in err and "no-such" not in err, err


@pytest.mark.parametrize("command", ["generate", "serve", "ui", "bench latency"])
def test_every_command_checks_backbone_sizes_before_loading_a_model(capsys, tmp_path, command):
    argv = MODEL_COMMANDS[command]
    code, _, err = run_cli(capsys, *argv, "--policy", str(tmp_path / "none-here"), "--height", "3")
    assert code == 2 and "height must be between 16 and 4096" in err, err


def test_bench_latency_checks_its_judge_before_loading_a_model(capsys, tmp_path):
    """The iterative loop's judge was built after every timing (minutes with a real policy), so a misspelt
    ``--judge`` failed last; the policy named here does not exist, so loading it first would fail on that."""
    meta = tmp_path / "meta.jsonl"
    meta.write_text(
        '{"tag": "single_object", "prompt": "a photo of a cat", "include": [{"class": "cat", "count": 1}], "exclude": []}\n'
    )
    argv = ["bench", "latency", "--metadata", str(meta), "--policy", str(tmp_path / "no-such-policy")]
    code, _, err = run_cli(capsys, *argv, "--backbone", "sketch", "--judge", "clipscroe")
    assert code == 2 and "unknown reward component 'clipscroe'. Did you mean 'clipscore'?" in err, err


def test_an_evaluation_checks_its_scorer_paths_before_generating(capsys, tmp_path):
    """``eval geneval`` generated every image, then found ``--detector-model /typo`` missing (hours on a GPU)."""
    from reprompt.errors import ModelNotFoundError
    from reprompt.eval.geneval2.judges import JudgeConfig
    from reprompt.geneval.scorer import ScorerConfig

    meta = tmp_path / "meta.jsonl"
    meta.write_text(
        '{"tag": "single_object", "prompt": "a photo of a cat", "include": [{"class": "cat", "count": 1}], "exclude": []}\n'
    )
    out, missing = tmp_path / "run", str(tmp_path / "no-such-detector")
    argv = [
        "eval",
        "geneval",
        "--metadata",
        str(meta),
        "--out",
        str(out),
        "--policy",
        "none",
        "--backbone",
        "sketch",
    ]
    code, _, err = run_cli(capsys, *argv, "--detector", "mask2former", "--detector-model", missing)
    assert code == 2 and f"could not load the Mask2Former: no model folder at {missing!r}" in err, err
    assert not out.exists()  # nothing generated
    with pytest.raises(ModelNotFoundError, match="no model file at"):
        ScorerConfig(detector="mmdet", mmdet_config=str(tmp_path / "cfg.py"), mmdet_checkpoint=missing)
    with pytest.raises(ModelNotFoundError, match="could not load the VQA judge: no model folder"):
        JudgeConfig(judge="local", judge_model=missing)
    ScorerConfig(clip_model="openai/clip-vit-base-patch32")  # a hub id is the loader's to find
    JudgeConfig(judge="openai", judge_model="/models/served-name")  # an endpoint's model name is no path


def test_a_backbone_folder_that_is_not_there_is_refused_before_the_policy_loads(
    capsys, tmp_path, monkeypatch
):
    """A diffusers folder given as a path was looked for only when the backbone loaded, after the policy (a
    3B model on a GPU); the reward config of a training run likewise."""
    from reprompt.errors import ModelNotFoundError
    from reprompt.model_spec import PolicyChoice
    from reprompt.rewards.config import RewardConfig

    def loaded(self):
        raise AssertionError("the policy loaded before the backbone path was checked")

    monkeypatch.setattr(PolicyChoice, "load", loaded)
    missing = str(tmp_path / "no-such-pipeline")
    for flags in (["--backbone", missing], ["--backbone", "flux-dev", "--model", missing]):
        code, _, err = run_cli(capsys, "generate", "a cat", "--policy", "smollm2", *flags)
        assert code == 2 and f"diffusers pipeline: no model folder at {missing!r}" in err, err
    for fields in ({"backbone": missing}, {"backbone": "flux-dev", "backbone_model": missing}):
        with pytest.raises(ModelNotFoundError, match="no model folder"):
            RewardConfig(components=["format"], **fields)
