"""The saved license-tool outputs under ``data/``, read the way the agent reads a tool."""

from pathlib import Path

DATA = Path(__file__).parent / "data"


def fixture_text(name: str) -> str:
    """A fixture's text with undecodable bytes replaced, as ``license_tools.run`` does."""
    return (DATA / name).read_bytes().decode(errors="replace")
