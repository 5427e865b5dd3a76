"""Read ``variables/variables.index`` (a TensorFlow tensor-bundle SSTable) without TensorFlow.

The index is a LevelDB-format table: a 48-byte footer points at an index block whose entries point
at data blocks; each data entry maps a checkpoint key to a ``BundleEntryProto`` (shard, offset, size),
and the empty key holds the ``BundleHeaderProto`` (number of data shards).
"""

from __future__ import annotations

import struct

from sandbox.artifacts import tfproto

_MAGIC = 0xDB4775248B80FB57
MAX_INDEX_BYTES = 256 * 1024 * 1024


class BundleError(ValueError):
    """The index is not a readable tensor bundle."""


class Bundle:
    """What the index records: the number of data shards, and where each tensor's bytes are."""

    def __init__(self) -> None:
        self.num_shards = 1
        self.entries: dict[str, tuple[int, int, int]] = {}
        """key -> (shard_id, offset, size)."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise BundleError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _block(data: bytes, offset: int, size: int) -> bytes:
    if offset < 0 or size < 0 or offset + size + 5 > len(data):
        raise BundleError("block handle points outside the file (truncated copy?)")
    if data[offset + size] != 0:
        raise BundleError("compressed table blocks are not supported")
    return data[offset : offset + size]


def _entries(block: bytes) -> list[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise BundleError("block too short")
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * num_restarts
    if end < 0:
        raise BundleError("bad restart count")
    out: list[tuple[bytes, bytes]] = []
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        non_shared, pos = _varint(block, pos)
        vlen, pos = _varint(block, pos)
        if shared > len(key) or pos + non_shared + vlen > end:
            raise BundleError("corrupt block entry")
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        out.append((key, block[pos : pos + vlen]))
        pos += vlen
    return out


def read_index(data: bytes) -> Bundle:
    """Parse the bytes of a ``variables.index`` file; raises :class:`BundleError`."""
    if len(data) < 48:
        raise BundleError("file shorter than a table footer")
    (magic,) = struct.unpack_from("<Q", data, len(data) - 8)
    if magic != _MAGIC:
        raise BundleError("no table magic number at the end of the file")
    footer = data[-48:]
    _, pos = _varint(footer, 0)  # metaindex offset
    _, pos = _varint(footer, pos)  # metaindex size
    idx_off, pos = _varint(footer, pos)
    idx_size, _ = _varint(footer, pos)
    bundle = Bundle()
    for _, handle in _entries(_block(data, idx_off, idx_size)):
        off, p = _varint(handle, 0)
        size, _ = _varint(handle, p)
        for key, value in _entries(_block(data, off, size)):
            try:
                if key == b"":
                    header = tfproto.parse_binary(tfproto.BundleHeaderProto, value)
                    bundle.num_shards = max(1, header.num_shards)  # type: ignore[attr-defined]
                else:
                    e = tfproto.parse_binary(tfproto.BundleEntryProto, value)
                    name = key.decode("utf-8", "replace")
                    bundle.entries[name] = (e.shard_id, e.offset, e.size)  # type: ignore[attr-defined]
            except Exception as exc:  # a bad record: report, do not crash
                raise BundleError(f"unreadable record {key[:40]!r}: {exc}") from exc
    return bundle
