"""``reprompt serve``: rewrite and render over HTTP (OpenAI Images and Chat Completions shapes)."""

from __future__ import annotations

import argparse

from reprompt.cli.common import add_backbone_args, add_policy_args
from reprompt.cli.options import add_dataclass_args, config_from_args
from reprompt.utils.endpoints import LOCALHOST


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve rewrite + render over HTTP (/v1/images/generations, /v1/chat/completions, /v1/rewrite)",
        description="One model worker serves every endpoint; concurrent chat and rewrite requests are "
        "micro-batched into one generate call. Binds 127.0.0.1 unless --host says otherwise.",
    )
    p.add_argument("--host", default=LOCALHOST, help=f"bind address (default {LOCALHOST}: this machine only)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--token-env", default=None, help="environment variable holding a bearer token to require")
    from reprompt.serving.config import ServeConfig

    # the service's limits and batching, generated from ServeConfig (one default per setting)
    add_dataclass_args(p, ServeConfig, skip=("disconnect_poll_s",), title="limits and batching")
    add_backbone_args(p)
    add_policy_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    from reprompt.cli.common import model_spec
    from reprompt.errors import RepromptError
    from reprompt.serving.config import ServeConfig
    from reprompt.serving.http import warn_if_exposed
    from reprompt.serving.image_service import create_app
    from reprompt.utils.endpoints import check_port
    from reprompt.utils.names import public_name

    config = config_from_args(
        ServeConfig,
        args,
        # the name the user typed (qwen2.5-3b, smollm2-sketch, a folder's last part); openai: openai:MODEL
        served_model_name=args.served_model_name
        or (None if args.policy == "openai" else public_name(args.policy)),
    )
    check_port("--port", args.port)
    spec = model_spec(args)  # every flag checked before a model loads
    token = os.environ.get(args.token_env) if args.token_env else None
    if args.token_env and not token:  # before loading any model
        raise RepromptError(f"--token-env {args.token_env} is set but the variable is empty")
    warn_if_exposed(args.host, token, args.token_env, "images and rewrites")
    app = create_app(spec.policy.load(), spec.backbone.load(), args.token_env, spec.generation, config)
    print(
        f"reprompt serving {app.state.model_id!r} on http://{args.host}:{args.port} "
        "(POST /v1/images/generations, /v1/chat/completions, /v1/rewrite; GET /v1/models, /health)",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
