"""Randomized put/copy/delete sequences: what survives ``kill -9`` equals a plain dict model of the bucket."""

from __future__ import annotations

import hashlib
import itertools
import signal
import threading
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.s3server.harness import S3Process, snapshot

KEYS = ["a", "dir/b", "dir/sub/c d", "ünï/cödé", "e+f=g", "z" * 200]
key_index = st.integers(0, len(KEYS) - 1)
body = st.one_of(st.binary(max_size=64), st.binary(min_size=10_000, max_size=300_000))
op = st.one_of(
    st.tuples(st.just("put"), key_index, body),
    st.tuples(st.just("copy"), key_index, key_index),
    st.tuples(st.just("delete"), key_index),
    st.tuples(st.just("delete_many"), st.lists(key_index, min_size=1, max_size=3, unique=True)),
)
_run = itertools.count()


def _apply(s3: Any, model: dict[str, bytes], step: tuple[Any, ...]) -> None:
    kind = step[0]
    if kind == "put":
        s3.put_object(Bucket="model", Key=KEYS[step[1]], Body=step[2])
        model[KEYS[step[1]]] = step[2]
    elif kind == "copy" and KEYS[step[1]] in model and step[1] != step[2]:
        s3.copy_object(Bucket="model", Key=KEYS[step[2]], CopySource={"Bucket": "model", "Key": KEYS[step[1]]})
        model[KEYS[step[2]]] = model[KEYS[step[1]]]
    elif kind == "delete":
        s3.delete_object(Bucket="model", Key=KEYS[step[1]])
        model.pop(KEYS[step[1]], None)
    elif kind == "delete_many":
        s3.delete_objects(Bucket="model", Delete={"Objects": [{"Key": KEYS[i]} for i in step[1]]})
        for i in step[1]:
            model.pop(KEYS[i], None)


@settings(
    max_examples=8,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(op, min_size=1, max_size=25))
def test_kill9_keeps_exactly_the_model(workdir: Path, steps: list[tuple[Any, ...]]) -> None:
    run = workdir / f"run-{next(_run)}"
    run.mkdir()
    server = S3Process(run / "data", run / "server.log")
    try:
        server.start()
        s3 = server.client()
        s3.create_bucket(Bucket="model")
        model: dict[str, bytes] = {}
        for step in steps:
            _apply(s3, model, step)
        server.restart(signal.SIGKILL)
        survived = snapshot(server.client())["model"]
    finally:
        server.stop(signal.SIGKILL)
    assert {k: v["sha256"] for k, v in survived.items()} == {k: hashlib.sha256(v).hexdigest() for k, v in model.items()}
    assert {k: v["etag"] for k, v in survived.items()} == {
        k: f'"{hashlib.md5(v).hexdigest()}"' for k, v in model.items()
    }


def test_concurrent_writers_leave_the_last_state(workdir: Path) -> None:
    """8 threads overwrite 3 keys at once; after kill -9 the disk holds what the server held before it."""
    server = S3Process(workdir / "data", workdir / "server.log")
    try:
        server.start()
        s3 = server.client()
        s3.create_bucket(Bucket="race")

        def writer(n: int) -> None:
            client = server.client()
            for i in range(15):
                key = f"k{(n + i) % 3}"
                if i % 5 == 4:
                    client.delete_object(Bucket="race", Key=key)
                else:
                    client.put_object(Bucket="race", Key=key, Body=f"{n}-{i}".encode() * (n + 1) * 100)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        before = snapshot(s3)
        server.restart(signal.SIGKILL)
        assert snapshot(server.client()) == before
    finally:
        server.stop(signal.SIGKILL)


def test_moto_internals_this_layer_relies_on() -> None:
    """Pins the moto 5.2 details used to stream values without a full copy; an upgrade that drops them fails here."""
    from moto.s3.models import FakeKey, s3_backends

    key = FakeKey(name="k", value=b"abc", account_id="123456789012", region_name="us-east-1")
    try:
        assert hasattr(key, "_value_buffer")
        assert hasattr(key, "lock")
        assert key.contentsize == 3
        assert hasattr(s3_backends, "bucket_accounts")
    finally:
        key.dispose()
