"""Property tests: any report, printed in a tool's format by the simulator's printers, parses
back to the same totals, used counts and checkouts."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.parsers import PARSERS, parse
from agent.simulator import printers
from agent.usage import Report
from tests.agent.reports import HOSTS, reports, shared_pools

PORTS = st.integers(min_value=1, max_value=65535)


@pytest.mark.parametrize("type_", PARSERS)
@given(data=st.data(), host=HOSTS, port=PORTS)
def test_printed_report_parses_back(type_: str, data: st.DataObject, host: str, port: int) -> None:
    report = data.draw(reports(type_))
    assert parse(type_, printers.PRINTERS[type_](host, port, report)) == report


@given(report=shared_pools(), host=HOSTS, port=PORTS)
def test_lsdyna_shared_pool_parses_back(report: Report, host: str, port: int) -> None:
    assert parse("lsdyna", printers.lsdyna(host, port, report, shared_pool=True)) == report


@given(report=shared_pools(), host=HOSTS, port=PORTS)
def test_lsdyna_shared_pool_lines_show_each_programs_share(
    report: Report, host: str, port: int
) -> None:
    """Without its LICENSE GROUP line, the output gives each program only its own checkouts:
    so the group line is what carries the pool's counts."""
    text = printers.lsdyna(host, port, report, shared_pool=True)
    ungrouped = "\n".join(line for line in text.splitlines() if "LICENSE GROUP" not in line)
    for name, usage in parse("lsdyna", ungrouped).items():
        assert usage.used == sum(c.quantity for c in report[name].checkouts)
