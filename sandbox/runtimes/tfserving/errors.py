"""Status errors in TF Serving's terms: a canonical code name plus a message."""

from __future__ import annotations

# HTTP status TF Serving's REST server returns for each canonical code (http_server.cc).
HTTP_STATUS: dict[str, int] = {
    "OK": 200,
    "CANCELLED": 500,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}

# Canonical code numbers (tensorflow/core/protobuf/error_codes.proto, same as gRPC).
CODE_NUMBERS: dict[str, int] = {
    "OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5, "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9, "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12,
    "INTERNAL": 13, "UNAVAILABLE": 14, "DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}
CODE_NAMES: dict[int, str] = {v: k for k, v in CODE_NUMBERS.items()}


class ServingError(Exception):
    """A failed status: ``code`` is the canonical name (``"NOT_FOUND"``), ``message`` the text."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)

    def to_string(self) -> str:
        """absl ``Status::ToString()``: ``"INVALID_ARGUMENT: msg"``."""
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"ServingError({self.code}, {self.message!r})"


def invalid_argument(msg: str) -> ServingError:
    return ServingError("INVALID_ARGUMENT", msg)


def not_found(msg: str) -> ServingError:
    return ServingError("NOT_FOUND", msg)


def failed_precondition(msg: str) -> ServingError:
    return ServingError("FAILED_PRECONDITION", msg)


def internal(msg: str) -> ServingError:
    return ServingError("INTERNAL", msg)


def unimplemented(msg: str) -> ServingError:
    return ServingError("UNIMPLEMENTED", msg)


def from_exception(exc: BaseException) -> ServingError:
    """Map a TF ``OpError`` (or anything else) to a ServingError, keeping TF's own text."""
    if isinstance(exc, ServingError):
        return exc
    code_num = getattr(exc, "error_code", None)
    message = getattr(exc, "message", None) or str(exc)
    if isinstance(code_num, int) and code_num in CODE_NAMES:
        return ServingError(CODE_NAMES[code_num], message)
    return ServingError("UNKNOWN", message)
