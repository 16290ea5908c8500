"""The README's configuration table is the one list of settings: it names exactly the
fields of ``Settings`` (lmrpc/settings.py), each with its real default."""

import re
from pathlib import Path
from typing import Any

from pydantic_core import PydanticUndefined

from lmrpc.client import DEFAULT_URL, MAX_BATCH
from lmrpc.settings import Settings

README = Path(__file__).parent.parent / "README.md"
TABLE_INTRO = "By environment (CLI flags of `lmrpc serve` override):"
# Defaults that are computed at start, documented by what they become.
COMPUTED = {
    "data_dir": "$XDG_DATA_HOME/lmrpc",
    "database_url": "sqlite:///<data dir>/lmrpc.sqlite3",
    "oidc_jwks_url": "from discovery",
    "max_connections": "open-file limit \u2212 max(100, 10 %)",
}


def documented() -> dict[str, str]:
    """Setting name → documented default, from the table after ``TABLE_INTRO``."""
    lines = README.read_text().split(TABLE_INTRO, 1)[1].strip().splitlines()
    rows: dict[str, str] = {}
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        variables, defaults = (cell.strip() for cell in line.strip("|").split("|")[:2])
        names = re.findall(r"`LMRPC_(\w+)`", variables)
        cells = defaults.split(", ") if len(names) > 1 else [defaults]
        values = [re.sub(r"^`([^`]*)`.*$", r"\1", cell) for cell in cells]
        assert len(values) == len(names), line
        for name, value in zip(names, values, strict=False):
            assert name.lower() not in rows, f"LMRPC_{name} is listed twice"
            rows[name.lower()] = value
    return rows


def shown(value: Any) -> str:
    """A default as the table writes it (what one would put in the environment)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_the_readme_table_lists_exactly_the_settings_with_their_defaults() -> None:
    table = documented()
    assert sorted(table) == sorted(Settings.model_fields)
    for name, field in Settings.model_fields.items():
        if name in COMPUTED:
            expected = COMPUTED[name]
        else:
            assert field.default is not PydanticUndefined, name
            expected = shown(field.default)
        assert table[name] == expected, f"LMRPC_{name.upper()}"


def test_the_clients_defaults_are_the_servers() -> None:
    """The client (shared with the agent, which never loads the service's settings) keeps
    its own copies of two defaults; they must stay the server's."""
    fields = Settings.model_fields
    assert f"http://{fields['host'].default}:{fields['port'].default}" == DEFAULT_URL
    assert fields["max_batch"].default == MAX_BATCH
