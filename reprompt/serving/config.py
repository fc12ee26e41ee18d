"""Settings of ``reprompt serve``, in a module of their own: the CLI builds its flags from them without
importing the web framework."""

from __future__ import annotations

from dataclasses import dataclass, field

from reprompt.errors import RepromptError, check_range


@dataclass
class ServeConfig:
    """Limits and batching of ``reprompt serve`` (CLI flags of the same names)."""

    max_request_bytes: int = field(
        default=1024 * 1024, metadata={"help": "largest request body in bytes (413 beyond)"}
    )
    max_queue: int = field(
        default=32, metadata={"help": "requests that may wait for the model (429 with Retry-After beyond)"}
    )
    max_batch: int | None = field(
        default=None, metadata={"help": "most prompts in one micro-batched generate (default: --batch-size)"}
    )
    batch_wait_ms: float = field(
        default=10.0, metadata={"help": "how long an idle worker waits for more requests to batch (ms)"}
    )
    micro_batching: bool = field(
        default=True, metadata={"help": "merge concurrent rewrites into one batched generate"}
    )
    served_model_name: str | None = field(
        default=None,
        metadata={"help": "model id of /v1/models and chat replies (default: the policy's name)"},
    )
    disconnect_poll_s: float = field(
        default=0.2, metadata={"help": "how often a waiting request checks that its client is still there"}
    )
    max_image_side: int = field(
        default=2048, metadata={"help": "largest width or height a request may ask for with size (pixels)"}
    )
    image_ttl_s: float = field(
        default=3600.0,
        metadata={
            "help": 'seconds an image of response_format "url" stays downloadable (OpenAI: 60 minutes)'
        },
    )
    max_image_files: int = field(
        default=1000, metadata={"help": 'most images of response_format "url" kept at once (oldest go first)'}
    )
    public_url: str | None = field(
        default=None,
        metadata={
            "help": 'base URL clients reach this server at, for response_format "url" behind a proxy '
            "(default: the address the request came to)"
        },
    )

    def __post_init__(self) -> None:
        if self.max_request_bytes < 1024:
            raise RepromptError("--max-request-bytes must be at least 1024")
        check_range("--max-queue", self.max_queue, 1)
        check_range("--max-batch", self.max_batch, 1)
        check_range("--batch-wait-ms", self.batch_wait_ms, 0)
        check_range("disconnect_poll_s", self.disconnect_poll_s, 0, low_open=True)
        check_range("--max-image-side", self.max_image_side, 64, 4096)
        check_range("--image-ttl-s", self.image_ttl_s, 0, low_open=True)
        check_range("--max-image-files", self.max_image_files, 1)
        if self.public_url is not None and not self.public_url.startswith(("http://", "https://")):
            raise RepromptError(f"--public-url {self.public_url!r} must start with http:// or https://")
