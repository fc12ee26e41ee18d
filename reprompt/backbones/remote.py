"""``remote:URL[,URL...]``: a render farm, i.e. rendering through OpenAI-compatible image servers.

Each image is one ``POST /v1/images/generations`` with ``n: 1``, its exact ``seed``, and the call's
``size``, ``num_inference_steps``, ``guidance_scale`` and ``negative_prompt`` where set, answered as
``b64_json`` PNG: what reprompt's own ``reprompt serve``, vLLM-Omni and SGLang-Diffusion speak. The images of
one call are spread over the servers (each request starts at the next live server, ``concurrency`` requests
in flight per server); a server that dies is skipped and its requests are retried on another one with the
retry policy of :class:`~reprompt.utils.failover.FailoverClient`. Image k is still a function of (prompt k,
seed k, settings) only, so which server rendered it does not matter. A reply for another size than the one
asked for (a server that rounds or ignores ``size``) is refused rather than scored and recorded as asked.

Seeds must be exact, so the farm refuses servers that cannot honour one: a ``reprompt serve`` server echoes
the seeds it used (``reprompt.seeds``, checked on every reply); any other server is probed once before its
first image (``seed_check``): one prompt rendered with seed 1 twice and with seed 2 once must give the same
image twice and a different one the third time, and a server that refuses the ``seed`` field is named.

The servers must serve the same model with the same settings: ``reprompt serve`` servers say what they serve
on ``GET /health`` (backbone, size, steps, guidance), checked to agree before the first image. Scenes (what
the oracle detector reads) come with ``reprompt serve --backbone sketch`` replies; other servers send pixels
only, so a reward that reads scenes (``geneval`` with the ``oracle`` detector) needs a simulator farm or
in-process rendering, and says so rather than scoring without them. The server applies its own step cache
and compilation (``reprompt serve --cache ... --compile ...``): a per-call cache or compile is refused here.
"""

from __future__ import annotations

import base64
import concurrent.futures
import io
import threading
import time
from dataclasses import fields
from typing import Any

from reprompt.backbones.base import (
    SIZE_SETTINGS,
    BackboneOptions,
    RenderOutput,
    RenderSettings,
    TokenCount,
    unsupported_settings,
)
from reprompt.errors import RemoteServiceError, RepromptError, check_choice, check_range

PREFIX = "remote:"
IMAGES_PATH = "/v1/images/generations"
PROBE_PROMPT = "a red apple on a wooden table"
SEED_CHECKS = ("auto", "always", "never")


def is_remote(name: str) -> bool:
    """True for ``remote:URL[,URL...]`` (a render farm of image servers)."""
    return isinstance(name, str) and name.strip().startswith(PREFIX)


def parse_remote(name: str) -> list[str]:
    """The server URLs of ``remote:URL[,URL...]``."""
    urls = [u.strip().rstrip("/") for u in name.strip()[len(PREFIX) :].split(",") if u.strip()]
    if not urls:
        raise RepromptError(
            "name the render servers: --backbone remote:http://host:8000[,http://host2:8001,...]"
        )
    for u in urls:
        if not u.startswith(("http://", "https://")):
            raise RepromptError(f"render server URL {u!r} must start with http:// or https://")
    return urls


class RemoteBackbone:
    """Renders through one or more OpenAI-compatible image servers (see the module doc).

    ``width``/``height``/``steps``/``guidance``: what every request asks for unless a call's
    :class:`RenderSettings` says otherwise (None: the server's own); ``token_env``: the variable holding the
    servers' bearer token; ``model``: the ``model`` field to send (vLLM-Omni and SGLang-Diffusion accept
    their served model's name); ``timeout``/``retries``: per request (None: :class:`FailoverClient`'s own
    defaults, their one home); ``concurrency``: requests in flight per server; ``seed_check``: ``auto``
    probes the servers that do not echo seeds, ``always`` every server, ``never`` none (at your own risk).
    """

    def __init__(
        self,
        urls: list[str],
        *,
        width: int | None = None,
        height: int | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        token_env: str | None = None,
        model: str | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        concurrency: int = 2,
        seed_check: str = "auto",
        **load_options: Any,
    ) -> None:
        from reprompt.utils.failover import FailoverClient

        defaults = {f.name: f.default for f in fields(BackboneOptions)}
        pinned = {k: v for k, v in load_options.items() if k not in defaults or v != defaults[k]}
        if pinned:
            raise RepromptError(
                f"a render farm loads no model here: {', '.join(sorted(pinned))} belong to the servers "
                "(start them with e.g. reprompt serve --backbone flux-dev --device cuda --cache first-block:0.12)"
            )
        check_choice("seed_check", seed_check, SEED_CHECKS)
        check_range("concurrency", concurrency, 1)
        self.defaults = RenderSettings(width, height, steps, guidance)  # checks their ranges
        self.urls = list(urls)
        given: dict[str, Any] = {
            k: v for k, v in (("timeout", timeout), ("retries", retries)) if v is not None
        }
        self.client = FailoverClient(self.urls, service="render server", token_env=token_env, **given)
        self.model, self.concurrency, self.seed_check = model, concurrency, seed_check
        self.render_calls = 0
        self._lock = threading.Lock()
        self._served: dict[str, Any] | None = None  # what the servers said they serve (GET /health)
        self._checked: set[str] = set()  # servers whose seeds were probed
        self.name = PREFIX + "server"

    def __getstate__(self) -> dict[str, Any]:  # a copy asks the servers again (trainers pickle rewards)
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @classmethod
    def from_name(cls, name: str, **kw: Any) -> RemoteBackbone:
        return cls(parse_remote(name), **kw)

    # ---------------------------------------------------------------------------------- the servers
    def served(self) -> dict[str, Any]:
        """What the farm serves: ``{"backbone", "render", "reprompt"}`` from the servers' ``GET /health``
        (``reprompt`` False for servers that do not say: vLLM-Omni, SGLang-Diffusion). Asked once."""
        with self._lock:
            if self._served is None:
                self._served = self._ask_servers()
                if self._served["backbone"]:
                    self.name = PREFIX + str(self._served["backbone"])
            return self._served

    def _ask_servers(self) -> dict[str, Any]:
        seen: dict[str, tuple[str | None, dict[str, Any] | None]] = {}
        for index, url in enumerate(self.urls):
            try:
                data = self.client.get_json(index, "/health")
            except RemoteServiceError:  # a dead server is skipped (and retried later) when images are asked
                continue
            if isinstance(data, dict) and "backbone" in data and "render" in data:
                seen[url] = (str(data["backbone"]), dict(data["render"]))
            else:
                seen[url] = (None, None)
        if not seen:
            raise RemoteServiceError(f"no render server answered GET /health: {', '.join(self.urls)}")
        kinds = {repr(v) for v in seen.values()}
        if len(kinds) > 1:
            said = "; ".join(
                f"{u}: {b or 'an image server that does not say'}" + (f" {r}" if r else "")
                for u, (b, r) in seen.items()
            )
            raise RepromptError(
                "the servers of one render farm must serve the same model with the same settings "
                f"(their images must not depend on which server renders them): {said}"
            )
        backbone, render = next(iter(seen.values()))
        return {"backbone": backbone, "render": render or {}, "reprompt": backbone is not None}

    # --------------------------------------------------------------------------- the Backbone contract
    @property
    def width(self) -> int:
        return self._side("width")

    @property
    def height(self) -> int:
        return self._side("height")

    def _side(self, name: str) -> int:
        own = getattr(self.defaults, name)
        if own is not None:
            return int(own)
        served = self.served()["render"].get(name)
        if served is None:
            raise RepromptError(
                f"the render servers do not say what size they render: give the {name} "
                "(backbone_options width/height, or --width/--height)"
            )
        return int(served)

    @property
    def supported_settings(self) -> frozenset[str]:
        """What a request can carry (the server refuses, naming the field, what its model does not apply)."""
        return SIZE_SETTINGS | {"steps", "guidance", "negative_prompt"}

    def settings(self) -> dict[str, Any]:
        """What decides the images: the served model's settings (as its servers report them) under this
        farm's request defaults; never the URLs (which server renders an image does not change it)."""
        served = self.served()
        return {
            "remote": served["backbone"],
            **served["render"],
            **self.defaults.given(),
        }

    def source(self) -> tuple[str, str | None]:
        served = self.served()
        return f"{PREFIX}{served['backbone'] or 'image server'}", None

    def count_tokens(self, text: str) -> TokenCount:
        """The simulator's own count when the farm serves one, else CLIP's 77-token budget, approximated."""
        from reprompt.backbones import is_simulator, load_backbone
        from reprompt.backbones.sketch_text import count_clip_tokens

        backbone = self.served()["backbone"]
        if backbone and is_simulator(backbone):
            return load_backbone(backbone).count_tokens(text)
        return TokenCount(count_clip_tokens(text), 77, "clip-approx (remote)")

    # ---------------------------------------------------------------------------------------- render
    def _payload(self, prompt: str, seed: int, s: RenderSettings) -> dict[str, Any]:
        width, height = s.width or self.defaults.width, s.height or self.defaults.height
        body: dict[str, Any] = {"prompt": prompt, "n": 1, "seed": int(seed), "response_format": "b64_json"}
        if width or height:
            body["size"] = f"{width or self.width}x{height or self.height}"
        steps = s.steps if s.steps is not None else self.defaults.steps
        guidance = s.guidance if s.guidance is not None else self.defaults.guidance
        if steps is not None:
            body["num_inference_steps"] = steps
        if guidance is not None:
            body["guidance_scale"] = guidance
        if s.negative_prompt is not None:
            body["negative_prompt"] = s.negative_prompt
        if self.model:
            body["model"] = self.model
        if self.served()["reprompt"]:
            body["rewrite"] = False  # render the prompt as given (a reprompt server would rewrite it)
        return body

    def _decode(
        self, reply: dict[str, Any], prompt: str, seed: int, where: str, size: str | None = None
    ) -> tuple[Any, Any]:
        """The reply's image and scene; refuses a reply for another prompt, seed or ``size`` than asked."""
        from PIL import Image

        from reprompt.geneval.scene import objects_from_json

        data = reply.get("data")
        if not isinstance(data, list) or len(data) != 1 or not isinstance(data[0], dict):
            raise RemoteServiceError(f"{where} sent no image (expected one b64_json entry in data)")
        b64 = data[0].get("b64_json")
        if not isinstance(b64, str):
            raise RemoteServiceError(f"{where} answered without b64_json (response_format is ignored?)")
        # SGLang-Diffusion echoes the prompt as sent, reprompt serve the prompt it rendered (stripped)
        revised = data[0].get("revised_prompt")
        if isinstance(revised, str) and revised.strip() != prompt.strip():
            raise RemoteServiceError(
                f"{where} rendered {revised!r} for {prompt!r}: it rewrote the prompt (start it with "
                "--policy none, or a server that renders the prompt as given)"
            )
        with Image.open(io.BytesIO(base64.b64decode(b64))) as png:
            image = png.copy()  # a plain image, decoded now: no file handle, no PNG text chunks
        if size is not None and f"{image.width}x{image.height}" != size:
            raise RemoteServiceError(
                f"{where} rendered {image.width}x{image.height} for size {size} (a server that rounds or "
                "ignores the size): rewards and records need the size asked for; ask for one it renders as is"
            )
        extra = reply.get("reprompt")
        scene = None
        if isinstance(extra, dict):
            if extra.get("seeds") != [int(seed)]:
                raise RemoteServiceError(
                    f"{where} rendered seed(s) {extra.get('seeds')} for seed {seed}: it cannot honour a seed"
                )
            if extra.get("scenes") is not None:
                scene = objects_from_json(extra["scenes"][0])
        return image, scene

    def _check_seeds(self, s: RenderSettings) -> None:
        """Probe each server not yet checked (see ``seed_check``): seed 1 twice, seed 2 once."""
        if self.seed_check == "never" or (self.seed_check == "auto" and self.served()["reprompt"]):
            return
        for index, url in enumerate(self.urls):
            if url in self._checked:
                continue
            images = []
            for seed in (1, 1, 2):
                body = self._payload(PROBE_PROMPT, seed, s)
                try:
                    reply = self.client.request_one(index, "POST", IMAGES_PATH, body)
                except RemoteServiceError as e:
                    if "seed" in str(e).lower():
                        raise RepromptError(
                            f"render server {url} refused the seed ({e}): rewards need exact seeds; use a "
                            "server that takes seed (reprompt serve, vLLM-Omni, SGLang-Diffusion)"
                        ) from e
                    raise
                images.append(self._decode(reply, PROBE_PROMPT, seed, url, body.get("size"))[0].tobytes())
            if images[0] != images[1]:
                raise RepromptError(
                    f"render server {url} does not render a seed reproducibly: two renders of one prompt with "
                    "seed 1 differ (nondeterministic kernels, or a server that ignores seed); rewards need "
                    "exact seeds (seed_check: never skips this check, at your own risk)"
                )
            if images[0] == images[2]:
                raise RepromptError(
                    f"render server {url} ignores seed: seeds 1 and 2 gave the same image; rewards need "
                    "exact seeds"
                )
            self._checked.add(url)

    def render(
        self, prompts: list[str], seeds: list[int], settings: RenderSettings | None = None
    ) -> RenderOutput:
        """Image k from (prompts[k], seeds[k]) on whichever server is free, retried elsewhere if it dies."""
        if isinstance(prompts, str) or len(prompts) != len(seeds):
            raise RepromptError("render needs a list of prompts and a list of seeds of the same length")
        s = settings or RenderSettings()
        asked = unsupported_settings(self, s)  # the step cache and compilation: the servers' own
        if asked:
            raise RepromptError(
                f"a render farm's servers apply their own {' and '.join(asked)}: start them with it "
                f"(reprompt serve --{asked[0]} {getattr(s, asked[0])}) instead of asking per call"
            )
        t0 = time.perf_counter()
        self.served()
        self._check_seeds(s)

        def one(k: int) -> tuple[Any, Any]:
            body = self._payload(prompts[k], seeds[k], s)
            reply = self.client.request("POST", IMAGES_PATH, body)
            return self._decode(reply, prompts[k], seeds[k], "a render server", body.get("size"))

        workers = max(1, min(len(prompts), len(self.urls) * self.concurrency))
        with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="render-farm") as pool:
            results = list(pool.map(one, range(len(prompts))))
        self.render_calls += len(prompts)
        scenes = [scene for _, scene in results]
        return RenderOutput(
            images=[image for image, _ in results],
            seeds=list(seeds),
            prompts=list(prompts),
            scenes=scenes if prompts and all(sc is not None for sc in scenes) else None,
            seconds=time.perf_counter() - t0,
            info={"servers": len(self.urls)},
        )


__all__ = ["PREFIX", "RemoteBackbone", "is_remote", "parse_remote"]
