"""The parts of a request that depend on the processor-type table or on nothing at all: which row a type
name is, the body keys naming what runs a batch, ids made safe for a path, our User-Agent."""

from __future__ import annotations

from importlib import metadata as package_metadata
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .errors import ExtendInputError
from .processors import ProcessorTypeInfo
from .processors import processor_type as row_of

if TYPE_CHECKING:
    from .models import ProcessorRef


def user_agent() -> str:
    try:
        version = package_metadata.version("batchdrop")
    except package_metadata.PackageNotFoundError:  # the Lambda bundle ships sources without metadata
        version = "unknown"
    return f"batchdrop/{version}"


def type_info(processor_type: str) -> ProcessorTypeInfo:
    """The table's row, or the client's input error for a name it has none for."""
    try:
        return row_of(processor_type)
    except ValueError as exc:
        raise ExtendInputError(str(exc)) from None


def batch_reference(info: ProcessorTypeInfo, processor: ProcessorRef | None) -> dict[str, Any]:
    """The body keys that name what runs a batch's inputs, as the type's ``reference`` says."""
    if info.reference == "config":
        config = processor.override_config if processor is not None else None
        return {info.reference_key: config} if config else {}
    if processor is None:
        raise ExtendInputError(f"a {info.name} batch needs a processor reference")
    if info.id_prefix and not (processor.id or "").startswith(info.id_prefix):
        raise ExtendInputError(f"{info.name} ids start with {info.id_prefix!r}, got {processor.id!r}")
    if info.reference == "workflow":
        return {
            info.reference_key: {k: v for k, v in (("id", processor.id), ("version", processor.version)) if v}
        }
    return {info.reference_key: processor.to_wire()}


def path_id(value: str) -> str:
    # Ids can come from webhook payloads: quote them so an odd id cannot point the request elsewhere.
    return quote(value, safe="")
