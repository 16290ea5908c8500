"""The JSON-RPC 2.0 envelope as pure functions: body bytes → calls, responses → bytes.

No IO here: the dispatcher runs the calls, the HTTP app moves the bytes.
"""

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from lmrpc.errors import INVALID_REQUEST, PARSE_ERROR, RpcError, first_names

_MEMBERS = {"jsonrpc", "method", "params", "id"}
_NO_ID = object()
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # may be a lone surrogate: check strings
# Where orjson may read a body otherwise than the strict parser (see ``_parse``):
_ESCAPED_COLON = re.compile(rb"\\u003[aA]")  # a colon in a string, not in the body's text
# An integer past 64 bits, which orjson makes a float, has 19 digits or more in a row: the
# digits are mapped to one and searched for (a regex is slow on the many short numbers).
_DIGITS_AS_ZEROS = bytes.maketrans(b"0123456789", b"0" * 10)
_LONG_NUMBER = b"0" * 19


@dataclass(frozen=True, slots=True)
class Call:
    """One well-formed request; ``id`` is absent (``is_notification``) or a string/number/null."""

    method: str
    params: Any  # dict, list, or None when absent; the dispatcher checks it
    id: Any = _NO_ID

    @property
    def is_notification(self) -> bool:
        return self.id is _NO_ID


@dataclass(frozen=True, slots=True)
class BadCall:
    """An entry that is not a valid request object: answered with -32600."""

    id: Any
    reason: str


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e400 would become inf, which JSON cannot carry
        raise ValueError(f"number {text[:20]} is out of range")
    return number


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose member names are unique: a repeated name is ambiguous (RFC 8259 §4:
    parsers disagree which one wins), so the body is refused rather than guessed."""
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise ValueError(f"duplicate member {name[:50]!r}")
            seen.add(name)
    return document


def _check_unicode(document: Any) -> None:
    """Refuse strings holding a lone surrogate (``"\\ud800"``): they are not Unicode text,
    cannot be stored or answered, and could only come from a ``\\uD8xx``-``\\uDFxx`` escape."""
    stack = [document]
    while stack:  # iterative: the document may be nested as deep as the parser allowed
        item = stack.pop()
        if isinstance(item, str):
            item.encode()  # raises UnicodeEncodeError on a lone surrogate
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _strict_parse(body: bytes) -> Any:
    """The body's JSON document; refuses what is not UTF-8 JSON text, repeated member
    names, numbers out of range and lone surrogates (ValueError or RecursionError)."""
    text = body.decode()  # strictly UTF-8 (RFC 8259 §8.1): no UTF-16/32 guessing, no BOM
    document = json.loads(
        text,
        parse_constant=_reject_constant,
        parse_float=_finite_float,
        object_pairs_hook=_unique_keys,
    )
    if _SURROGATE_ESCAPE.search(text):
        _check_unicode(document)
    return document


def _parse(body: bytes) -> Any:
    """What ``_strict_parse`` answers, mostly from orjson, which is several times faster
    (it calls no Python per object). orjson refuses what the strict parser refuses (NaN,
    out-of-range floats, lone surrogates, bad UTF-8), but keeps the last of repeated names,
    makes a float of an integer past 64 bits and nests deeper; wherever one of these may
    apply, or orjson refuses the body, the strict parser decides and words the error."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _strict_parse(body)
    if _orjson_agrees(body, document):
        return document
    return _strict_parse(body)


def _orjson_agrees(body: bytes, document: Any) -> bool:
    """Whether the strict parser reads ``body`` as ``document`` (which orjson read).

    Repeated names: outside strings a colon separates a member's name from its value, and
    orjson writes every member with one; inside strings colons are the same in both texts
    unless one was escaped. So the body has more colons exactly when a name repeated.
    Nesting: orjson reads 1,024 levels, json as many as the interpreter's stack allows;
    orjson writes at most 254, which json always reads."""
    if _ESCAPED_COLON.search(body) or _LONG_NUMBER in body.translate(_DIGITS_AS_ZEROS):
        return False
    try:
        written = orjson.dumps(document)
    except orjson.JSONEncodeError:  # nested past 254 levels
        return False
    return body.count(b":") == written.count(b":")


def decode(body: bytes, max_batch: int) -> tuple[bool, list[Call | BadCall]]:
    """Split a body into calls. Returns (is_batch, entries); raises RpcError for the body."""
    try:
        document = _parse(body)
    except (ValueError, RecursionError) as error:  # Unicode errors are ValueErrors
        raise RpcError(PARSE_ERROR, message=f"Parse error: {_short(error)}") from None
    if isinstance(document, list):
        if not document:
            raise RpcError(INVALID_REQUEST, {"reason": "empty batch"})
        if len(document) > max_batch:
            raise RpcError(
                INVALID_REQUEST, {"reason": f"batch of {len(document)} calls exceeds {max_batch}"}
            )
        return True, [_entry(item) for item in document]
    return False, [_entry(document)]


def _entry(item: Any) -> Call | BadCall:
    if not isinstance(item, dict):
        return BadCall(None, "a request must be a JSON object")
    id_ = item.get("id", _NO_ID)
    valid_id = id_ is _NO_ID or id_ is None or _is_id(id_)
    reply_id = id_ if valid_id and id_ is not _NO_ID else None
    if not valid_id:
        return BadCall(None, "id must be a string, an integer or null")
    if item.get("jsonrpc") != "2.0":
        return BadCall(reply_id, 'jsonrpc must be "2.0"')
    method = item.get("method")
    if not isinstance(method, str):
        return BadCall(reply_id, "method must be a string")
    if not item.keys() <= _MEMBERS:
        return BadCall(reply_id, _unknown_members(item))
    params = item.get("params")
    if "params" in item and not isinstance(params, dict | list):
        return BadCall(reply_id, "params must be an object or an array")
    return Call(method, params, id_)


def _unknown_members(item: dict[str, Any]) -> str:
    """Names the first few unknown members only: a request with 380,000 of them gets a
    short answer, built without sorting or copying them all."""
    unknown = (name for name in item if name not in _MEMBERS)
    listed = first_names(unknown)
    more = len(item) - len(listed) - sum(1 for name in _MEMBERS if name in item)
    return f"unknown members: {', '.join(listed)}" + (f" (and {more} more)" if more else "")


def _is_id(value: Any) -> bool:
    return (isinstance(value, str) and len(value) <= 255) or (
        isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63
    )


def _short(error: BaseException) -> str:
    return str(error)[:200] if not isinstance(error, RecursionError) else "nested too deeply"


def result(id_: Any, value: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "result": value, "id": id_}


def error(id_: Any, err: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": err.to_json(), "id": id_}


def error_encoder(err: RpcError) -> Callable[[Any], bytes]:
    """Encodes the error response of ``err`` for any id, like ``encode(error(id_, err))``
    but encoding the error once: the id is the last member."""
    head = encode({"jsonrpc": "2.0", "error": err.to_json()})[:-1] + b',"id":'
    return lambda id_: head + encode(id_) + b"}"


def bad_call_response(bad: BadCall) -> dict[str, Any]:
    return error(bad.id, RpcError(INVALID_REQUEST, {"reason": bad.reason}))


def encode(document: Any) -> bytes:
    """Compact UTF-8 JSON. orjson writes it several times faster than json; it refuses
    integers past 64 bits, which a caller may send as an id, so those go through json."""
    try:
        return orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
