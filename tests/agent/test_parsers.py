"""Each parser on outputs written in its tool's format, with the quirks of AGENT.md §5."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.parsers import PARSERS, parse
from agent.usage import Checkout, FeatureUsage, Report
from tests.agent.fixtures import DATA, fixture_text


def _usage(total: int, used: int, *checkouts: tuple[str, str, int]) -> FeatureUsage:
    return FeatureUsage(total, used, tuple(Checkout(*c) for c in checkouts))


EXPECTED: dict[str, tuple[str, Report]] = {
    # Latin-1 bytes, singular "license", names with ":" "-" "_", uncounted and erroneous
    # features and their checkouts skipped, checkouts without the "N licenses" tail count 1,
    # reservation lines
    "flexlm_status.txt": ("flexlm", {
        "abaqus": _usage(1000, 8, ("jdoe", "node01.cluster.example.org", 5),
                         ("asmith", "node02", 1), ("bwayne", "node03", 2)),
        "abaqus:standard-solver_2": _usage(1, 1, ("dprince", "gpu-07.hpc", 1)),
        "explicit": _usage(12, 0),
        "standard": _usage(40, 6, ("jdoe", "node01.cluster.example.org", 4),
                           ("asmith", "node02", 2)),
    }),
    # two vendor pools, one feature in two versions (summed), a checkout of an unlisted one
    "rlm_status.txt": ("rlm", {
        "nuke_i": _usage(15, 4, ("jdoe", "node01.cluster", 2), ("asmith", "node02", 1),
                         ("jdoe", "node05", 1)),
        "nukex_i": _usage(4, 0),
        "solver-pro": _usage(8, 2, ("ckent", "gpu-01.hpc", 2)),
    }),
    # "-" for zero used; the running-programs table above is not read as checkouts
    "lsdyna_status.txt": ("lsdyna", {
        "MPPDYNA": _usage(500, 24, ("jdoe", "node01.cluster", 16), ("asmith", "node02", 8)),
        "LS-DYNA": _usage(50, 0),
        "SMPDYNA_R12": _usage(10, 1, ("ckent", "gpu-01.hpc", 1)),
    }),
    # a LICENSE GROUP line gives each program above it the pool's used and max; a program
    # after the group line keeps its own
    "lsdyna_group.txt": ("lsdyna", {
        "MPPDYNA": _usage(500, 12, ("fane8y", "n-c13.maas.example.org", 1),
                          ("ssskmj", "n-c55.maas.example.org", 1)),
        "MPPDYNA_971": _usage(500, 12),
        "MPPDYNA_980": _usage(500, 12, ("jdoe", "node01", 10)),
        "LS-DYNA": _usage(500, 12),
        "LSTC_PRE": _usage(5, 0),
    }),
    # host suffixes dropped, a host without one, one feature in two versions (summed)
    "lmx_status.txt": ("lmx", {
        "HyperWorks": _usage(1010, 26, ("jdoe", "node01.cluster", 20), ("asmith", "node02", 5),
                             ("ckent", "gpu-01.hpc", 1)),
        "GlobalZoneEU": _usage(60, 0),
    }),
    # one module in two application blocks (summed), FloatsLockedBy adds to used
    "olicense_status.txt": ("olicense", {
        "ftire_adams": _usage(10, 4, ("jdoe", "node01.cluster", 2), ("asmith", "node02", 1),
                              ("ckent", "gpu-01.hpc", 1)),
        "ftire_sim": _usage(2, 0),
    }),
    # rows of one feature merge, "node (pid)/ip" hosts, an unused feature's empty row
    "dsls_status.txt": ("dsls", {
        "CRP": _usage(4, 2, ("jdoe", "node01.cluster", 1), ("asmith", "node02", 1)),
        "QSC": _usage(20, 0),
        "SIMULIA-TOKENS": _usage(100, 30, ("ckent", "gpu-01.hpc", 30)),
    }),
    # a longer banner with warnings, a prompt before the header, other columns and case
    "dsls_warning.txt": ("dsls", {
        "CRP": _usage(4, 1, ("jdoe", "node01", 1)),
        "HEX": _usage(2, 0),
    }),
}  # fmt: skip

FAILURES = [f"{type_}_down.txt" for type_ in PARSERS] + ["empty.txt"]


@pytest.mark.parametrize("name", EXPECTED)
def test_parses_the_fixture(name: str) -> None:
    type_, expected = EXPECTED[name]
    assert parse(type_, fixture_text(name)) == expected


def test_undecodable_bytes_are_in_the_flexlm_fixture() -> None:
    """The fixture keeps its Latin-1 bytes, so the test above covers them."""
    raw = (DATA / "flexlm_status.txt").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode()


@pytest.mark.parametrize("type_", PARSERS)
@pytest.mark.parametrize("name", FAILURES)
def test_error_and_empty_output_yield_no_feature(type_: str, name: str) -> None:
    assert parse(type_, fixture_text(name)) == {}


@pytest.mark.parametrize("type_", PARSERS)
@pytest.mark.parametrize("name", EXPECTED)
def test_another_tools_output_yields_no_feature(type_: str, name: str) -> None:
    """Unknown lines are skipped: a parser finds nothing in another format."""
    if EXPECTED[name][0] != type_:
        assert parse(type_, fixture_text(name)) == {}


def test_an_unknown_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown license server type"):
        parse("lmgrd", "")


_ACTIONS = st.sampled_from(["drop", "twice", "cut", "text"])
_EDIT = st.tuples(st.integers(min_value=0), _ACTIONS, st.text(max_size=60))


def _mangled(text: str, edits: list[tuple[int, str, str]]) -> str:
    """``text`` with lines dropped, repeated, cut short or replaced by arbitrary text."""
    lines = text.splitlines()
    for position, action, garbage in edits:
        if not lines:
            break
        index = position % len(lines)
        line = lines[index]
        if action == "drop":
            del lines[index]
        elif action == "twice":
            lines.insert(index, line)
        elif action == "cut":
            lines[index] = line[: len(garbage)]
        else:
            lines[index] = garbage
    return "\n".join(lines)


@given(st.sampled_from(sorted(EXPECTED)), st.lists(_EDIT, min_size=1, max_size=12))
def test_mangled_output_never_raises(name: str, edits: list[tuple[int, str, str]]) -> None:
    type_ = EXPECTED[name][0]
    report = parse(type_, _mangled(fixture_text(name), edits))
    for usage in report.values():  # every count fits the API's integers
        assert 0 <= usage.total < 10**9 and 0 <= usage.used < 10**9
        assert all(0 <= c.quantity < 10**9 for c in usage.checkouts)


@given(st.sampled_from(sorted(PARSERS)), st.text())
def test_arbitrary_text_never_raises(type_: str, text: str) -> None:
    assert isinstance(parse(type_, text), dict)


@pytest.mark.parametrize("name", EXPECTED)
def test_absurdly_long_numbers_are_skipped_not_raised(name: str) -> None:
    """int() refuses more than 4300 digits: such numbers are garbage, not an exception."""
    type_ = EXPECTED[name][0]
    text = re.sub(r"\d+", "9" * 5000, fixture_text(name))
    assert parse(type_, text) == {}


def test_dsls_table_ends_at_a_row_without_counts() -> None:
    """An unreadable count or inuse is never guessed (0 in use would admit too much)."""
    text = (
        "admin >feature,count,inuse,tokens,host,user\n"
        "CRP,4,1,1,node01 (1)/10.0.0.1,jdoe\n"
        "QSC,20,n/a,,,\n"
        "HEX,2,0,,,\n"
    )
    assert parse("dsls", text) == {"CRP": _usage(4, 1, ("jdoe", "node01", 1))}
