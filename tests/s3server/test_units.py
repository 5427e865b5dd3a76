"""The request parsing helpers of the S3 middlewares, without a server."""

from __future__ import annotations

import io

import pytest

from sandbox.s3.persist import _buffer_delete_request, _xml_keys
from sandbox.s3.request import raw_path

REQUEST = b"""<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>
<Object><Key>a/b</Key></Object><Object><Key>\xc3\xbc &amp; c</Key></Object></Delete>"""
QUIET_RESULT = b"""<?xml version="1.0" encoding="UTF-8"?>
<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></DeleteResult>"""


def test_delete_keys_come_from_the_request_even_when_the_result_is_quiet() -> None:
    assert _xml_keys(REQUEST, QUIET_RESULT) == {"a/b", "ü & c"}
    assert _xml_keys(b"", b"") == set()


def test_delete_request_body_is_read_once_and_handed_on() -> None:
    environ = {
        "REQUEST_METHOD": "POST",
        "QUERY_STRING": "delete",
        "CONTENT_LENGTH": str(len(REQUEST)),
        "wsgi.input": io.BytesIO(REQUEST + b"trailing junk"),
    }
    assert _buffer_delete_request(environ) == REQUEST
    assert environ["wsgi.input"].read() == REQUEST
    assert _buffer_delete_request({"REQUEST_METHOD": "PUT", "QUERY_STRING": "delete"}) == b""


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"RAW_URI": "/bkt/a%20b/%C3%BC?x-id=PutObject", "PATH_INFO": "/bkt/a b/ü"}, "/bkt/a%20b/%C3%BC"),
        ({"RAW_URI": "http://127.0.0.1:9000/bkt/k?uploads"}, "/bkt/k"),
        ({"PATH_INFO": "/bkt/a b/\xc3\xbc"}, "/bkt/a%20b/%C3%BC"),
    ],
)
def test_raw_path_is_what_moto_parses(environ: dict[str, str], expected: str) -> None:
    assert raw_path(environ) == expected
