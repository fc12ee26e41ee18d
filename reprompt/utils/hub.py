"""Loading weights from a local folder or the Hugging Face cache, with one error for "not found".

reprompt never downloads at run time unless the user's environment allows it; a model that is neither a
local folder nor cached raises :class:`~reprompt.errors.ModelNotFoundError` with the same shape of message
everywhere (what could not be loaded, why, and what to do), instead of a library traceback.
"""

from __future__ import annotations

import os
from typing import Any

from reprompt.errors import ModelNotFoundError


def not_found(
    kind: str, id_or_path: str, err: BaseException, hint: str = "pass a local folder"
) -> ModelNotFoundError:
    """The error for a model that could not be loaded: a missing local folder, or a hub id not in the cache."""
    reason = type(err).__name__
    first = str(err).splitlines()[0][:200] if str(err) else ""
    if first:
        reason += f": {first}"
    path = str(id_or_path)
    if written_as_path(path):  # a local path: the library's text adds nothing
        return ModelNotFoundError(
            f"could not load the {kind}: no model folder at {path!r} (pass a local folder holding it; "
            f"{type(err).__name__})"
        )
    return ModelNotFoundError(
        f"could not load the {kind} {path!r}: not a local folder and not in the Hugging Face cache "
        f"(download it with network access, or {hint}). {reason}"
    )


def written_as_path(id_or_path: str) -> bool:
    """Written as a path (absolute, ``./``, ``../`` or ``~``): never a hub id, so it can be checked offline."""
    return id_or_path.startswith(("/", "./", "../", "~")) or os.path.isabs(id_or_path)


def check_local_model(kind: str, id_or_path: str | None, *, file: bool = False) -> None:
    """Refuse a model given as a local path that is not there, when the command starts: an evaluation loads
    its scorer after generating every image (hours on a GPU), so a typo must not wait that long. Hub ids and
    folder names without a path are left to the loader."""
    if not id_or_path or not written_as_path(id_or_path):
        return
    path = os.path.expanduser(id_or_path)
    if not (os.path.isfile(path) if file else os.path.isdir(path)):
        what = "file" if file else "folder"
        raise ModelNotFoundError(
            f"could not load the {kind}: no model {what} at {id_or_path!r} (pass a local {what} holding it)"
        )


def embeddings(output: Any) -> Any:
    """The projected embeddings of ``get_text_features``/``get_image_features``: transformers 5 returns an
    output object (``pooler_output``), 4.x the tensor itself."""
    return output if hasattr(output, "dim") else output.pooler_output


def from_pretrained(
    loader: Any,
    id_or_path: str,
    *,
    kind: str,
    hint: str = "pass a local folder",
    errors: tuple[type[BaseException], ...] = (OSError,),
    **kwargs: Any,
) -> Any:
    """``loader.from_pretrained(id_or_path, **kwargs)``, turning ``errors`` into :func:`not_found`."""
    try:
        return loader.from_pretrained(id_or_path, **kwargs)
    except errors as err:
        raise not_found(kind, id_or_path, err, hint) from err
