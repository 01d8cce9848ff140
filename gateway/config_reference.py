"""docs/config-reference.md, generated from the config models so it cannot drift from them.

Each key's text is its pydantic `description`, else the `#` comments on and above its line in
the model's source. Regenerate after changing a model: `python -m gateway.config_reference >
docs/config-reference.md` (a test fails until then).
"""

from __future__ import annotations

import inspect
import re
import types
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from gateway.config import GatewayConfig
from gateway.firelane import FirelaneWorkerConfig

_FIELD_LINE = re.compile(r"^\s+(\w+)\s*:")


def _comments(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> the comment block above its line plus the comment at its end."""
    try:
        lines = inspect.getsource(model).splitlines()
    except (OSError, TypeError):
        return {}
    found: dict[str, str] = {}
    above: list[str] = []
    for line in lines[1:]:
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# "))
            continue
        match = _FIELD_LINE.match(line)
        if match and line.startswith("    ") and not line.startswith("     "):
            inline = line.split("  # ", 1)[1].strip() if "  # " in line else ""
            found[match[1]] = " ".join([*above, inline]).strip()
        above = []
    return found


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(f"`{value}`" for value in get_args(annotation))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in get_args(annotation))
    if origin is not None and get_args(annotation):
        name = getattr(origin, "__name__", str(origin))
        if name == "Annotated":
            return _type_name(get_args(annotation)[0])
        return f"{name}[{', '.join(_type_name(arg) for arg in get_args(annotation))}]"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "one of " + ", ".join(f"`{member.value}`" for member in annotation)
    if annotation is type(None):
        return "null"
    if annotation is Path:
        return "path"
    return getattr(annotation, "__name__", str(annotation))


_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))


def _constraints(info: FieldInfo) -> str:
    parts = []
    for item in info.metadata:
        for attribute, sign in _BOUNDS:
            if isinstance(item, annotated_types.BaseMetadata) and hasattr(item, attribute):
                parts.append(f"{sign} {getattr(item, attribute)}")
        if isinstance(item, annotated_types.MinLen):
            parts.append(f"at least {item.min_length} long")
        if isinstance(item, annotated_types.MaxLen):
            parts.append(f"at most {item.max_length} long")
        if (pattern := getattr(item, "pattern", None)) is not None:
            parts.append(f"matches `{pattern}`")
    return ", ".join(parts)


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, list) and value and isinstance(value[0], Enum):
        value = [item.value for item in value]
    if value in ({}, [], ""):
        return "empty"
    return f"`{value}`"


def _section(
    model: type[BaseModel], path: str, out: list[str], seen: set[tuple[str, type[BaseModel]]]
) -> None:
    if (path, model) in seen:
        return
    seen.add((path, model))
    comments = _comments(model)
    doc = (
        inspect.cleandoc(model.__doc__ or "") if model.__doc__ and model.__module__ != "pydantic.main" else ""
    )
    key, _, variant = path.partition(" ")
    out += [f"## `{key}` {variant}".rstrip() if path else "## top level", ""]
    if doc and not doc.startswith("!!!"):
        out += [doc.replace("\n", " "), ""]
    out += ["| key | type | default | meaning |", "|---|---|---|---|"]
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        text = info.description or comments.get(name, "")
        bounds = _constraints(info)
        meaning = "; ".join(part for part in (text, bounds) if part)
        out.append(
            f"| `{name}` | {_type_name(annotation)} | {_default(info)} | {meaning.replace('|', '/')} |"
        )
        origin = get_origin(annotation)
        if origin in (Union, types.UnionType):  # `X | None`: the container is inside
            origin = next((get_origin(arg) for arg in get_args(annotation) if arg is not type(None)), None)
        suffix = "[]" if origin is list else ".<name>" if origin is dict else ""
        subs = _models_in(annotation)
        for sub in subs:
            sub_path = f"{path}.{name}{suffix}".lstrip(".")
            nested.append((f"{sub_path} ({sub.__name__})" if len(subs) > 1 else sub_path, sub))
    out.append("")
    for sub_path, sub in nested:
        _section(sub, sub_path, out, seen)


def render() -> str:
    out = [
        "# Configuration reference",
        "",
        "Every key of the gateway's YAML config, generated from its models by "
        "`python -m gateway.config_reference > docs/config-reference.md`; do not edit by hand.",
        "An annotated example with every section: `config/example/gateway.yaml`. Any key can be set",
        "from the environment: `CAMPUS_GATEWAY__BROKER__PORT=1884` sets `broker.port`.",
        "",
    ]
    _section(GatewayConfig, "", out, set())
    out += ["# The fire-lane worker's file (`firelane_worker:`)", ""]
    _section(FirelaneWorkerConfig, "", out, set())
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
