"""``reprompt serve``: an HTTP endpoint that rewrites and renders (OpenAI Images API shape)."""

from __future__ import annotations

import argparse

from reprompt.cli.common import add_backbone_args, add_policy_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve rewrite + render over HTTP (/v1/images/generations, /v1/rewrite)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default localhost only)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--token-env", default=None, help="environment variable holding a bearer token to require")
    add_backbone_args(p)
    add_policy_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from reprompt.cli.common import backbone_from_args, generation_options, policy_from_args
    from reprompt.serving.image_service import create_app

    app = create_app(
        policy_from_args(args), backbone_from_args(args), args.token_env, generation_options(args)
    )
    print(f"reprompt serving on http://{args.host}:{args.port} (POST /v1/images/generations, /v1/rewrite)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
