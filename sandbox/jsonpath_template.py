"""kubectl's ``-o jsonpath=TEMPLATE`` output, with the expressions evaluated by jsonpath-ng.

A template is literal text with ``{...}`` actions, as kubectl takes them:
``{.status.primaryCondition}``, ``{$.status.conditions[?(@.type == "EndpointReady")]}``,
``{range .items[*]}{.metadata.name}{"\\n"}{end}``. Strings print bare, maps and lists as compact JSON
with sorted keys (what Go's ``json.Marshal`` prints), several results of one action space-separated;
a missing field prints nothing, as with ``kubectl get``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext import parse

from sandbox.errors import UsageError

_UNESCAPED_DOT = re.compile(r"(?<!\\)\.")


@dataclass
class _Range:
    expression: str
    body: list[Any] = field(default_factory=list)


def render(document: Any, template: str) -> str:
    """Render ``template`` (kubectl's jsonpath syntax) against ``document``."""
    return "".join(_render(_parse(template), document, document))


def _bad(template: str, why: str) -> UsageError:
    return UsageError(
        f"jsonpath template {template!r}: {why}",
        code="get.bad-jsonpath",
        hint="kubectl's syntax, e.g. -o jsonpath='{.status.primaryCondition}' or "
        "'{range .items[*]}{.metadata.name}{\"\\n\"}{end}'",
    )


def _actions(template: str) -> list[tuple[bool, str]]:
    """Split into (is_action, text) pieces; braces inside quoted strings do not end an action."""
    pieces, text, i = [], "", 0
    while i < len(template):
        if template[i] != "{":
            text += template[i]
            i += 1
            continue
        if text:
            pieces.append((False, text))
            text = ""
        j, quote = i + 1, ""
        while j < len(template) and (quote or template[j] != "}"):
            if template[j] == "\\" and quote:
                j += 1
            elif template[j] in "\"'":
                quote = "" if quote == template[j] else (quote or template[j])
            j += 1
        if j >= len(template):
            raise _bad(template, "unclosed action (a '{' without its '}')")
        pieces.append((True, template[i + 1 : j].strip()))
        i = j + 1
    if text:
        pieces.append((False, text))
    return pieces


def _parse(template: str) -> list[Any]:
    root: list[Any] = []
    stack = [root]
    for is_action, text in _actions(template):
        if not is_action:
            stack[-1].append(text)
        elif text.startswith("range ") or text == "range":
            block = _Range(text[len("range") :].strip())
            stack[-1].append(block)
            stack.append(block.body)
        elif text == "end":
            if len(stack) == 1:
                raise _bad(template, "{end} without {range}")
            stack.pop()
        elif len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
            stack[-1].append(_literal(text, template))
        else:
            stack[-1].append(_compile(text, template))
    if len(stack) > 1:
        raise _bad(template, "{range} without {end}")
    return root


@dataclass
class _Expression:
    path: Any
    from_root: bool
    """``$...`` starts at the document; ``.a.b`` at the current item of a ``{range}``."""


def _literal(text: str, template: str) -> str:
    inner = text[1:-1] if text[0] == '"' else text[1:-1].replace('"', '\\"')
    try:
        return str(json.loads(f'"{inner}"'))
    except ValueError:
        raise _bad(template, f"bad string literal {text}") from None


def _compile(expression: str, template: str) -> _Expression:
    """kubectl writes ``.a.b`` for the current object and escapes dots in keys (``a\\.b/c``); jsonpath-ng
    quotes such keys instead."""
    expr = expression
    if "\\." in expr:
        expr = ".".join(
            f'"{part.replace(chr(92) + ".", ".")}"' if "\\." in part else part for part in _UNESCAPED_DOT.split(expr)
        )
    from_root = expr.startswith("$")
    if expr.startswith("."):
        expr = "$" + expr.rstrip(".") if expr != "." else "$"
    try:
        return _Expression(parse(expr or "$"), from_root)
    except (JsonPathLexerError, JsonPathParserError, Exception) as exc:  # jsonpath-ng raises plain Exception too
        raise _bad(template, f"cannot parse {expression!r} ({exc})") from None


def _find(expression: _Expression, root: Any, current: Any) -> list[Any]:
    return [match.value for match in expression.path.find(root if expression.from_root else current)]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _render(nodes: list[Any], root: Any, current: Any) -> list[str]:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, _Range):
            for item in _find(_compile(node.expression, node.expression), root, current):
                out += _render(node.body, root, item)
        else:
            out.append(" ".join(_text(v) for v in _find(node, root, current)))
    return out
