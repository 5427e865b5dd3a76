"""The checker's TensorFlow message classes, in a private descriptor pool, and how it parses them.

The schema is :mod:`sandbox.artifacts.tf_schema`. Nothing here imports TensorFlow, and the private pool never
clashes with TensorFlow's own classes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.internal import api_implementation
from google.protobuf.message import Message

from sandbox.artifacts.tf_schema import DESCRIPTOR_FILE, DT_STRING, DTYPES, FLOAT_DTYPES

__all__ = ["DTYPES", "DT_STRING", "FLOAT_DTYPES", "message_class", "parse_binary", "parse_text", "to_text"]


def _load_pool() -> tuple[Any, Callable[[Any], Any]]:
    """A private descriptor pool holding :data:`DESCRIPTOR_FILE`, and how to make a message class from it.

    With protobuf's C backend (upb, what CPython wheels run) the pool and classes come from it directly, as
    ``descriptor_pool`` and ``message_factory`` would make them, without loading their pure-Python modules
    (a third of the start-up of `gdc-sandbox check`); any other backend goes through those public modules.
    """
    serialized = DESCRIPTOR_FILE.read_bytes()
    if api_implementation.Type() == "upb":
        from google._upb import _message as upb

        pool = upb.DescriptorPool()
        pool.AddSerializedFile(serialized)
        return pool, lambda d: upb.MessageMeta(d.name, (Message,), {"DESCRIPTOR": d, "__module__": __name__})
    from google.protobuf import descriptor_pool, message_factory

    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(serialized)
    return pool, message_factory.GetMessageClass


POOL, _make_class = _load_pool()


def message_class(name: str) -> Any:
    """The generated class for ``tensorflow.<name>`` in the private pool."""
    return _make_class(POOL.FindMessageTypeByName(f"tensorflow.{name}"))


SavedModel = message_class("SavedModel")
GraphDef = message_class("GraphDef")
AssetFileDef = message_class("AssetFileDef")
BundleHeaderProto = message_class("BundleHeaderProto")
BundleEntryProto = message_class("BundleEntryProto")
PredictionLog = message_class("PredictionLog")


def parse_binary(cls: Any, data: bytes) -> Message:
    """Parse ``data`` as ``cls``; raises ``google.protobuf.message.DecodeError`` (or ValueError) on bad bytes."""
    msg = cls()
    msg.ParseFromString(data)
    return msg  # type: ignore[no-any-return]


def parse_text(cls: Any, text: str) -> Message:
    """Parse a text-format proto, skipping fields this subset leaves out (as TF would know them)."""
    from google.protobuf import text_format

    msg = cls()
    text_format.Parse(text, msg, allow_unknown_field=True, allow_unknown_extension=True, descriptor_pool=POOL)
    return msg  # type: ignore[no-any-return]


def to_text(msg: Message) -> str:
    """Text format (used by tests to write ``saved_model.pbtxt`` fixtures)."""
    from google.protobuf import text_format

    return text_format.MessageToString(msg)
