"""The subset of ComfyUI's V3 ``io`` module the RePrompt node uses, with ComfyUI's signatures; ``Schema.validate``
and ``ComfyNode.GET_SCHEMA`` check what ComfyUI checks when it registers a node (unique ids, both classmethods)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Input:
    io_type = ""

    def __init__(
        self,
        id: str,
        display_name: str | None = None,
        optional: bool = False,
        tooltip: str | None = None,
        lazy: bool | None = None,
        extra_dict: dict | None = None,
        raw_link: bool | None = None,
    ) -> None:
        self.id, self.display_name, self.optional, self.tooltip = id, display_name, optional, tooltip

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None and k not in ("id", "optional")}


class WidgetInput(Input):
    def __init__(
        self,
        id: str,
        display_name: str | None = None,
        optional: bool = False,
        tooltip: str | None = None,
        lazy: bool | None = None,
        default: Any = None,
        socketless: bool | None = None,
        widget_type: str | None = None,
        force_input: bool | None = None,
        extra_dict: dict | None = None,
        raw_link: bool | None = None,
    ) -> None:
        super().__init__(id, display_name, optional, tooltip, lazy, extra_dict, raw_link)
        self.default = default


class Output:
    io_type = ""

    def __init__(
        self,
        id: str | None = None,
        display_name: str | None = None,
        tooltip: str | None = None,
        is_output_list: bool = False,
    ) -> None:
        self.id, self.display_name, self.tooltip, self.is_output_list = (
            id,
            display_name,
            tooltip,
            is_output_list,
        )


class String:
    class Input(WidgetInput):
        io_type = "STRING"

        def __init__(
            self,
            id: str,
            display_name: str | None = None,
            optional: bool = False,
            tooltip: str | None = None,
            lazy: bool | None = None,
            multiline: bool = False,
            placeholder: str | None = None,
            default: str | None = None,
            dynamic_prompts: bool | None = None,
            socketless: bool | None = None,
            force_input: bool | None = None,
            extra_dict: dict | None = None,
            raw_link: bool | None = None,
        ) -> None:
            super().__init__(
                id, display_name, optional, tooltip, lazy, default, socketless, None, force_input
            )
            self.multiline, self.placeholder = multiline, placeholder

    class Output(Output):
        io_type = "STRING"


class Int:
    class Input(WidgetInput):
        io_type = "INT"

        def __init__(
            self,
            id: str,
            display_name: str | None = None,
            optional: bool = False,
            tooltip: str | None = None,
            lazy: bool | None = None,
            default: int | None = None,
            min: int | None = None,
            max: int | None = None,
            step: int | None = None,
            control_after_generate: bool | None = None,
            display_mode: Any = None,
            socketless: bool | None = None,
            force_input: bool | None = None,
            extra_dict: dict | None = None,
            raw_link: bool | None = None,
        ) -> None:
            super().__init__(
                id, display_name, optional, tooltip, lazy, default, socketless, None, force_input
            )
            self.min, self.max, self.step = min, max, step


class Float:
    class Input(WidgetInput):
        io_type = "FLOAT"

        def __init__(
            self,
            id: str,
            display_name: str | None = None,
            optional: bool = False,
            tooltip: str | None = None,
            lazy: bool | None = None,
            default: float | None = None,
            min: float | None = None,
            max: float | None = None,
            step: float | None = None,
            round: float | None = None,
            display_mode: Any = None,
            socketless: bool | None = None,
            force_input: bool | None = None,
            extra_dict: dict | None = None,
            raw_link: bool | None = None,
        ) -> None:
            super().__init__(
                id, display_name, optional, tooltip, lazy, default, socketless, None, force_input
            )
            self.min, self.max, self.step = min, max, step


class Boolean:
    class Input(WidgetInput):
        io_type = "BOOLEAN"

        def __init__(
            self,
            id: str,
            display_name: str | None = None,
            optional: bool = False,
            tooltip: str | None = None,
            lazy: bool | None = None,
            default: bool | None = None,
            label_on: str | None = None,
            label_off: str | None = None,
            socketless: bool | None = None,
            force_input: bool | None = None,
            extra_dict: dict | None = None,
            raw_link: bool | None = None,
        ) -> None:
            super().__init__(
                id, display_name, optional, tooltip, lazy, default, socketless, None, force_input
            )
            self.label_on, self.label_off = label_on, label_off


class Combo:
    class Input(WidgetInput):
        io_type = "COMBO"

        def __init__(
            self,
            id: str,
            options: list[str] | list[int] | type[Enum] | None = None,
            display_name: str | None = None,
            optional: bool = False,
            tooltip: str | None = None,
            lazy: bool | None = None,
            default: str | int | Enum | None = None,
            control_after_generate: bool | None = None,
            upload: Any = None,
            image_folder: Any = None,
            remote: Any = None,
            socketless: bool | None = None,
            extra_dict: dict | None = None,
            raw_link: bool | None = None,
        ) -> None:
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless)
            self.options = options


@dataclass
class Schema:
    node_id: str
    display_name: str | None = None
    category: str = "sd"
    inputs: list[Input] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    hidden: list[Any] = field(default_factory=list)
    description: str = ""
    is_input_list: bool = False
    is_output_node: bool = False
    is_deprecated: bool = False
    is_experimental: bool = False
    is_api_node: bool = False
    not_idempotent: bool = False
    enable_expand: bool = False

    def validate(self) -> None:
        inputs, outputs = [i.id for i in self.inputs], [o.id for o in self.outputs]
        issues = [
            f"ids must be unique, but {[k for k, n in Counter(ids).items() if n > 1]} are not"
            for ids in (inputs, outputs)
            if len(set(ids)) != len(ids)
        ]
        if set(inputs) & set(outputs):
            issues.append(f"ids must be unique between inputs and outputs: {set(inputs) & set(outputs)}")
        if issues:
            raise ValueError("\n".join(issues))


class NodeOutput:
    def __init__(
        self, *args: Any, ui: Any = None, expand: dict | None = None, block_execution: str | None = None
    ) -> None:
        self.args, self.ui, self.expand, self.block_execution = args, ui, expand, block_execution

    @property
    def result(self) -> tuple | None:
        return self.args if len(self.args) > 0 else None


class ComfyNode(ABC):
    @classmethod
    @abstractmethod
    def define_schema(cls) -> Schema: ...

    @classmethod
    @abstractmethod
    def execute(cls, **kwargs: Any) -> NodeOutput: ...

    @classmethod
    def GET_SCHEMA(cls) -> Schema:  # noqa: N802 (ComfyUI's name)
        schema = cls.define_schema()
        schema.validate()
        return schema
