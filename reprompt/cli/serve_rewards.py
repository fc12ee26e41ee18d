"""``reprompt serve-rewards --config x.yaml``: run the reward service (render + score over HTTP)."""

from __future__ import annotations

import argparse

from reprompt.utils.endpoints import REWARD_TOKEN_ENV


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve-rewards",
        help="serve the reward (render + score) over HTTP for trainers on other GPUs or hosts",
        description="Serve the composite reward of a config. Binds 127.0.0.1 unless --host says otherwise; "
        f"set the env var named by service.token_env (default {REWARD_TOKEN_ENV}) to require a token.",
    )
    p.add_argument("--config", required=True, help="reward config YAML (configs/rewards/*.yaml)")
    p.add_argument("--host", default=None, help="bind address (default: the config's, 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default: the config's, 8765)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reprompt.rewards.config import RewardConfig
    from reprompt.serving.reward_service import serve

    serve(RewardConfig.from_yaml(args.config), host=args.host, port=args.port)
    return 0
