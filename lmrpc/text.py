"""Control characters in text: refused in params, escaped in what the CLI prints.

A control or format character (Unicode ``Cc``: NUL, ESC, line breaks; ``Cf``: bidi
overrides, zero-width marks) in a name can end a C string (PostgreSQL refuses NUL), drive a
terminal, or fake a table row; a lone surrogate (``Cs``) cannot be stored as UTF-8 at all.
"""

import unicodedata

CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in CONTROL_CATEGORIES


def has_control(value: str) -> bool:
    """Whether ``value`` holds a control, format or surrogate character. Printable text
    (nearly all of it) is answered by ``str.isprintable`` alone, at C speed."""
    return not value.isprintable() and any(_is_control(char) for char in value)


def escape_control(value: str) -> str:
    """``value`` with each control, format or surrogate character written as a visible
    escape (``\\x1b``, ``\\n``, ``\\u202e``), so printing it cannot move the cursor."""
    if not has_control(value):
        return value
    return "".join(
        char.encode("unicode_escape", "backslashreplace").decode("ascii")
        if _is_control(char)
        else char
        for char in value
    )
