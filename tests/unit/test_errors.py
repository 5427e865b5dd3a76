from sandbox.errors import SandboxError, StartupTimeout


def test_render_has_code_message_details_and_hint() -> None:
    err = SandboxError("it broke", code="x.y", hint="do this", details="line 1\nline 2")
    assert err.render() == "error[x.y]: it broke\nline 1\nline 2\nHint: do this"
    assert err.to_dict() == {"error": "it broke", "code": "x.y", "hint": "do this", "details": "line 1\nline 2"}


def test_startup_timeout_names_service_url_wait_and_log() -> None:
    err = StartupTimeout("S3 server", "http://127.0.0.1:9", 12.4, "/l/s3.log", "boom")
    assert "S3 server" in err.message and "http://127.0.0.1:9" in err.message and "12s" in err.message
    assert "/l/s3.log" in err.hint and "boom" in err.details


def test_with_status_sets_the_http_status() -> None:
    assert SandboxError("x").with_status(422).http_status == 422
