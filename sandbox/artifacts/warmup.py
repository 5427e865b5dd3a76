"""Validate ``assets.extra/tf_serving_warmup_requests``: a TFRecord file of ``PredictionLog`` records.

TF Serving replays these at load time and refuses the version when one does not parse.
"""

from __future__ import annotations

import struct
from pathlib import Path

from sandbox.artifacts import tfproto

MAX_RECORDS = 1000
"""TF Serving reads at most this many warmup records."""
MAX_BYTES = 64 * 1024 * 1024


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def problem(path: Path) -> str | None:
    """Why the warmup file will be rejected, or None when it looks valid."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            data = fh.read(MAX_BYTES)
    except OSError as exc:
        return f"cannot read it: {exc.strerror or exc}"
    if size == 0:
        return "the file is empty"
    pos, count = 0, 0
    while pos < len(data) and count < MAX_RECORDS:
        if pos + 12 > len(data):
            return f"record {count} is truncated (TFRecord header needs 12 bytes)"
        header = data[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack_from("<I", data, pos + 8)
        if masked_crc(header) != length_crc:
            return f"record {count} has a bad length checksum: this is not a TFRecord file"
        body = data[pos + 12 : pos + 12 + length]
        if len(body) < length or pos + 16 + length > len(data):
            if size > MAX_BYTES:
                return None  # the rest was not read: accept what was checked
            return f"record {count} is truncated"
        (data_crc,) = struct.unpack_from("<I", data, pos + 12 + length)
        if length <= 1024 * 1024 and masked_crc(body) != data_crc:
            return f"record {count} has a bad data checksum"
        try:
            log = tfproto.parse_binary(tfproto.PredictionLog, body)
        except Exception:
            return f"record {count} is not a PredictionLog proto"
        if log.WhichOneof("log_type") is None:  # type: ignore[attr-defined]
            return f"record {count} is a proto with no predict/classify/regress/multi_inference log set"
        pos += 16 + length
        count += 1
    return None
