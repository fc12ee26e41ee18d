"""``reprompt ui``: the browser UI (Gradio) — prompt in, reasoning and enhanced prompt out, editable,
with same-seed images of the original and the rewrite side by side."""

from __future__ import annotations

import argparse

from reprompt.cli.common import add_backbone_args, add_policy_args, model_spec
from reprompt.ui import UI_PORT
from reprompt.utils.endpoints import LOCALHOST


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ui", help="browser UI: rewrite, edit, compare same-seed images (Gradio)")
    p.add_argument(
        "--host",
        default=LOCALHOST,
        help=f"bind address (default {LOCALHOST}: this machine only; any other needs a password)",
    )
    p.add_argument(
        "--password-env",
        default="REPROMPT_UI_PASSWORD",
        help="variable holding the sign-in password (user 'reprompt'); unset off localhost: one is generated "
        "and printed once",
    )
    p.add_argument("--port", type=int, default=UI_PORT, help=f"port (default {UI_PORT}; 0 = a free one)")
    p.add_argument(
        "--out", default=None, help="folder for each turn's record and images (default: a temp folder)"
    )
    p.add_argument("--images", type=int, default=1, help="images per prompt shown at start")
    p.add_argument("--seed", type=int, default=0, help="seed shown at start")
    add_backbone_args(p, default="sketch")
    add_policy_args(p, default="smollm2-sketch")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import tempfile

    from reprompt.errors import RepromptError, check_range
    from reprompt.utils.endpoints import check_port

    check_port("--port", args.port, free=True)
    check_range("--images", args.images, 1, 8)
    spec = model_spec(args)  # every flag checked before Gradio starts or a model loads
    try:
        from reprompt.ui.app import launch
    except ModuleNotFoundError as e:
        if e.name == "gradio":
            raise RepromptError("the UI needs Gradio: pip install 'reprompt[ui]'") from None
        raise
    out = args.out or tempfile.mkdtemp(prefix="reprompt-ui-")
    launch(
        spec,
        out_dir=out,
        host=args.host,
        port=args.port,
        images=args.images,
        seed=args.seed,
        block=True,
        password_env=args.password_env,
    )
    return 0
