"""The subset of TensorFlow's protos the checker reads, as a table, and that table as a ``FileDescriptorProto``.

Field names and numbers match ``tensorflow/core/protobuf/*.proto`` and ``tensorflow/core/framework/*.proto``,
so binary and text SavedModels parse exactly as TensorFlow parses them; fields left out are skipped.
:mod:`sandbox.artifacts.tfproto` loads ``sandbox/data/tf_subset.desc``, which is :func:`build_file`'s output:
after editing the table run ``python -m sandbox.artifacts.tf_schema`` (tests/checker/test_engine.py fails while
the file and the table differ).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DESCRIPTOR_FILE = Path(__file__).resolve().parent.parent / "data" / "tf_subset.desc"
_SCALARS = ("string", "bytes", "int64", "int32", "bool", "float", "double", "uint32", "uint64", "fixed32")
DTYPES = [
    "DT_INVALID",
    "DT_FLOAT",
    "DT_DOUBLE",
    "DT_INT32",
    "DT_UINT8",
    "DT_INT16",
    "DT_INT8",
    "DT_STRING",
    "DT_COMPLEX64",
    "DT_INT64",
    "DT_BOOL",
    "DT_QINT8",
    "DT_QUINT8",
    "DT_QINT32",
    "DT_BFLOAT16",
    "DT_QINT16",
    "DT_QUINT16",
    "DT_UINT16",
    "DT_COMPLEX128",
    "DT_HALF",
    "DT_RESOURCE",
    "DT_VARIANT",
    "DT_UINT32",
    "DT_UINT64",
    "DT_FLOAT8_E5M2",
    "DT_FLOAT8_E4M3FN",
    "DT_FLOAT8_E4M3FNUZ",
    "DT_FLOAT8_E4M3B11FNUZ",
    "DT_FLOAT8_E5M2FNUZ",
    "DT_INT4",
    "DT_UINT4",
]
DT_STRING = 7
FLOAT_DTYPES = frozenset(DTYPES.index(n) for n in ("DT_FLOAT", "DT_DOUBLE", "DT_BFLOAT16", "DT_HALF"))

# message -> [(field name, number, type, label)]; label "r" repeated, "m" map<string, type>, "" optional.
_MESSAGES: dict[str, list[tuple[str, int, str, str]]] = {
    "Any": [("type_url", 1, "string", ""), ("value", 2, "bytes", "")],
    "TensorShapeProto.Dim": [("size", 1, "int64", ""), ("name", 2, "string", "")],
    "TensorShapeProto": [("dim", 2, "TensorShapeProto.Dim", "r"), ("unknown_rank", 3, "bool", "")],
    "TensorProto": [
        ("dtype", 1, "DataType", ""),
        ("tensor_shape", 2, "TensorShapeProto", ""),
        ("version_number", 3, "int32", ""),
        ("tensor_content", 4, "bytes", ""),
        ("string_val", 8, "bytes", "r"),
    ],
    "AttrValue.ListValue": [
        ("s", 2, "bytes", "r"),
        ("i", 3, "int64", "r"),
        ("f", 4, "float", "r"),
        ("b", 5, "bool", "r"),
        ("type", 6, "DataType", "r"),
        ("shape", 7, "TensorShapeProto", "r"),
        ("tensor", 8, "TensorProto", "r"),
        ("func", 9, "NameAttrList", "r"),
    ],
    "AttrValue": [
        ("list", 1, "AttrValue.ListValue", ""),
        ("s", 2, "bytes", ""),
        ("i", 3, "int64", ""),
        ("f", 4, "float", ""),
        ("b", 5, "bool", ""),
        ("type", 6, "DataType", ""),
        ("shape", 7, "TensorShapeProto", ""),
        ("tensor", 8, "TensorProto", ""),
        ("placeholder", 9, "string", ""),
        ("func", 10, "NameAttrList", ""),
    ],
    "NameAttrList": [("name", 1, "string", ""), ("attr", 2, "AttrValue", "m")],
    "NodeDef": [
        ("name", 1, "string", ""),
        ("op", 2, "string", ""),
        ("input", 3, "string", "r"),
        ("device", 4, "string", ""),
        ("attr", 5, "AttrValue", "m"),
    ],
    "OpDef.ArgDef": [("name", 1, "string", ""), ("type", 3, "DataType", "")],
    "OpDef.AttrDef": [("name", 1, "string", ""), ("type", 2, "string", ""), ("default_value", 3, "AttrValue", "")],
    "OpDef": [
        ("name", 1, "string", ""),
        ("input_arg", 2, "OpDef.ArgDef", "r"),
        ("output_arg", 3, "OpDef.ArgDef", "r"),
        ("attr", 4, "OpDef.AttrDef", "r"),
    ],
    "OpList": [("op", 1, "OpDef", "r")],
    "FunctionDef": [("signature", 1, "OpDef", ""), ("node_def", 3, "NodeDef", "r"), ("ret", 4, "string", "m")],
    "FunctionDefLibrary": [("function", 1, "FunctionDef", "r")],
    "VersionDef": [("producer", 1, "int32", ""), ("min_consumer", 2, "int32", "")],
    "GraphDef": [
        ("node", 1, "NodeDef", "r"),
        ("library", 2, "FunctionDefLibrary", ""),
        ("version", 3, "int32", ""),
        ("versions", 4, "VersionDef", ""),
    ],
    "MetaGraphDef.MetaInfoDef": [
        ("meta_graph_version", 1, "string", ""),
        ("stripped_op_list", 2, "OpList", ""),
        ("any_info", 3, "Any", ""),
        ("tags", 4, "string", "r"),
        ("tensorflow_version", 5, "string", ""),
        ("tensorflow_git_version", 6, "string", ""),
        ("stripped_default_attrs", 7, "bool", ""),
    ],
    "SaverDef": [
        ("filename_tensor_name", 1, "string", ""),
        ("save_tensor_name", 2, "string", ""),
        ("restore_op_name", 3, "string", ""),
    ],
    "CollectionDef.NodeList": [("value", 1, "string", "r")],
    "CollectionDef.BytesList": [("value", 1, "bytes", "r")],
    "CollectionDef.AnyList": [("value", 1, "Any", "r")],
    "CollectionDef": [
        ("node_list", 1, "CollectionDef.NodeList", ""),
        ("bytes_list", 2, "CollectionDef.BytesList", ""),
        ("any_list", 5, "CollectionDef.AnyList", ""),
    ],
    "TensorInfo": [
        ("name", 1, "string", ""),
        ("dtype", 2, "DataType", ""),
        ("tensor_shape", 3, "TensorShapeProto", ""),
    ],
    "SignatureDef": [
        ("inputs", 1, "TensorInfo", "m"),
        ("outputs", 2, "TensorInfo", "m"),
        ("method_name", 3, "string", ""),
    ],
    "AssetFileDef": [("tensor_info", 1, "TensorInfo", ""), ("filename", 2, "string", "")],
    "SavedAsset": [("asset_file_def_index", 1, "int32", "")],
    "SavedVariable": [("dtype", 1, "DataType", ""), ("name", 6, "string", "")],
    "SavedObject": [("asset", 5, "SavedAsset", ""), ("variable", 7, "SavedVariable", "")],
    "SavedObjectGraph": [("nodes", 1, "SavedObject", "r")],
    "MetaGraphDef": [
        ("meta_info_def", 1, "MetaGraphDef.MetaInfoDef", ""),
        ("graph_def", 2, "GraphDef", ""),
        ("saver_def", 3, "SaverDef", ""),
        ("collection_def", 4, "CollectionDef", "m"),
        ("signature_def", 5, "SignatureDef", "m"),
        ("asset_file_def", 6, "AssetFileDef", "r"),
        ("object_graph_def", 7, "SavedObjectGraph", ""),
    ],
    "SavedModel": [("saved_model_schema_version", 1, "int64", ""), ("meta_graphs", 2, "MetaGraphDef", "r")],
    # tensor_bundle.proto: the variables/variables.index records
    "BundleHeaderProto": [
        ("num_shards", 1, "int32", ""),
        ("endianness", 2, "int32", ""),
        ("version", 3, "VersionDef", ""),
    ],
    "BundleEntryProto": [
        ("dtype", 1, "DataType", ""),
        ("shape", 2, "TensorShapeProto", ""),
        ("shard_id", 3, "int32", ""),
        ("offset", 4, "int64", ""),
        ("size", 5, "int64", ""),
    ],
    # tensorflow_serving/apis/prediction_log.proto: only which log kind each warmup record holds
    "PredictionLog": [
        ("log_metadata", 1, "bytes", ""),
        ("classify_log", 2, "bytes", ""),
        ("regress_log", 3, "bytes", ""),
        ("multi_inference_log", 4, "bytes", ""),
        ("session_run_log", 5, "bytes", ""),
        ("predict_log", 6, "bytes", ""),
        ("predict_stream_log", 7, "bytes", ""),
    ],
}
_ONEOFS = {
    "AttrValue": ("value", {"list", "s", "i", "f", "b", "type", "shape", "tensor", "placeholder", "func"}),
    "SavedObject": ("kind", {"asset", "variable"}),
    "CollectionDef": ("kind", {"node_list", "bytes_list", "any_list"}),
    "PredictionLog": (
        "log_type",
        {"classify_log", "regress_log", "multi_inference_log", "session_run_log", "predict_log", "predict_stream_log"},
    ),
}


def build_file() -> bytes:
    """The table above as a serialized ``FileDescriptorProto``: what :data:`DESCRIPTOR_FILE` holds.

    ``descriptor_pb2`` is imported here only: importing it takes longer than a whole `gdc-sandbox check` run
    may, so the checker reads these bytes from the file (as protoc's ``_pb2`` modules embed theirs).
    """
    from google.protobuf import descriptor_pb2

    ftype = descriptor_pb2.FieldDescriptorProto
    scalars = {name: getattr(ftype, "TYPE_" + name.upper()) for name in _SCALARS}
    f = descriptor_pb2.FileDescriptorProto(name="gdc_sandbox/tf_subset.proto", package="tensorflow", syntax="proto3")
    enum = f.enum_type.add(name="DataType")
    for i, name in enumerate(DTYPES):
        enum.value.add(name=name, number=i)
    for i, name in enumerate(DTYPES[1:24], start=1):
        enum.value.add(name=f"{name}_REF", number=100 + i)
    protos: dict[str, Any] = {}
    for full in sorted(_MESSAGES, key=lambda n: n.count(".")):  # parents before their nested types
        parent, _, leaf = full.rpartition(".")
        container = protos[parent].nested_type if parent else f.message_type
        protos[full] = container.add(name=leaf)

    def set_type(field: Any, typ: str) -> None:
        if typ in scalars:
            field.type = scalars[typ]
        elif typ == "DataType":
            field.type = ftype.TYPE_ENUM
            field.type_name = ".tensorflow.DataType"
        else:
            field.type = ftype.TYPE_MESSAGE
            field.type_name = f".tensorflow.{typ}"

    for full, fields in _MESSAGES.items():
        msg = protos[full]
        oneof = _ONEOFS.get(full)
        if oneof:
            msg.oneof_decl.add(name=oneof[0])
        for name, number, typ, label in fields:
            field = msg.field.add(name=name, number=number, json_name=name)
            if label == "m":
                entry = msg.nested_type.add(name="".join(p.title() for p in name.split("_")) + "Entry")
                entry.options.map_entry = True
                entry.field.add(name="key", number=1, type=ftype.TYPE_STRING, label=ftype.LABEL_OPTIONAL)
                set_type(entry.field.add(name="value", number=2, label=ftype.LABEL_OPTIONAL), typ)
                field.label = ftype.LABEL_REPEATED
                field.type = ftype.TYPE_MESSAGE
                field.type_name = f".tensorflow.{full}.{entry.name}"
                continue
            field.label = ftype.LABEL_REPEATED if label == "r" else ftype.LABEL_OPTIONAL
            set_type(field, typ)
            if oneof and name in oneof[1]:
                field.oneof_index = 0
    return f.SerializeToString(deterministic=True)


if __name__ == "__main__":  # regenerate DESCRIPTOR_FILE after editing the schema
    DESCRIPTOR_FILE.write_bytes(build_file())
    print(f"wrote {DESCRIPTOR_FILE}")
