"""One printer per license tool: a ``Report`` in the tool's output format (AGENT.md §5).

The simulator prints with these and the parsers' property tests parse what they print, so
the simulator's output is exactly what the parsers are tested against. Dates, versions and
handles are fixed: only the counts and checkouts vary.
"""

import csv
import io
from collections.abc import Callable

from agent.usage import Report


def _plural(count: int) -> str:
    return "license" if count == 1 else "licenses"


def flexlm(host: str, port: int, report: Report) -> str:
    lines = [
        "lmutil - Copyright (c) 1989-2023 Flexera. All Rights Reserved.",
        "Flexible License Manager status on Wed 12/2/2026 06:45",
        "",
        f"License server status: {port}@{host}",
        f"    License file(s) on {host}: /opt/licenses/simulated.lic:",
        "",
        f"{host}: license server UP (MASTER) v11.19.0",
        "",
        f"Vendor daemon status (on {host}):",
        "",
        "  simvendor: UP v11.19.0",
        "",
        "Feature usage info:",
        "",
    ]
    for name, usage in report.items():
        lines += [
            f"Users of {name}:  (Total of {usage.total} {_plural(usage.total)} issued;"
            f"  Total of {usage.used} {_plural(usage.used)} in use)",
            "",
            f'  "{name}" v1.0, vendor: simvendor, expiry: 31-dec-2030',
            "  floating license",
            "",
        ]
        for handle, checkout in enumerate(usage.checkouts, start=101):
            tail = "" if checkout.quantity == 1 else f", {checkout.quantity} licenses"
            lines.append(
                f"    {checkout.username} {checkout.lead_host} /dev/pts/{handle % 10} (v1.0)"
                f" ({host}/{port} {handle}), start Wed 12/2 6:30{tail}"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


def rlm(host: str, port: int, report: Report) -> str:
    lines = [
        f"Setting license file path to {port}@{host}",
        "rlmutil v15.1",
        "",
        f"\trlm status on {host} (port {port}), up 1d 00:00:00",
        "\trlm software version v15.1 (build:1)",
        "------------------------",
        "",
        f"simvendor ISV server status on {host} (port 40001), up 1d 00:00:00",
        "\tsimvendor software version v15.1 (build:1)",
        "------------------------",
        "",
        f"simvendor license pool status on {host} (port 40001)",
        "",
    ]
    for name, usage in report.items():
        lines += [
            f"{name} v1.0",
            f"\tcount: {usage.total}, # reservations: 0, inuse: {usage.used}, exp: 31-dec-2030",
            "\tobsolete: 0, min_remove: 120, total checkouts: 7",
        ]
    lines += ["", f"simvendor license usage status on {host} (port 40001)", ""]
    for name, usage in report.items():
        for handle, checkout in enumerate(usage.checkouts, start=0x41):
            lines.append(
                f"{name} v1.0: {checkout.username}@{checkout.lead_host} {checkout.quantity}/0"
                f" at 12/02 06:30  (handle: {handle:x})"
            )
    return "\n".join(lines) + "\n"


def _lsdyna_counts(used: int, free: int, total: int) -> str:
    """The ``USED FREE MAX | QUEUE`` columns; LS-DYNA prints ``-`` for zero used."""
    return f"{used or '-':>5} {free:>6} {total:>6} |     0"


def lsdyna(host: str, port: int, report: Report, shared_pool: bool = False) -> str:
    """With ``shared_pool`` the programs share one pool: every feature of ``report`` must
    then have the pool's total and used, and each program line shows its own checkouts."""
    lines = [
        f"Using server {port}@{host}",
        "",
        "                     License Usage",
        "PROGRAM          EXPIRATION CPUS  USED   FREE    MAX | QUEUE",
        "---------------- ----------      ----- ------ ------ | -----",
    ]
    for name, usage in report.items():
        own = sum(c.quantity for c in usage.checkouts) if shared_pool else usage.used
        counts = _lsdyna_counts(own, usage.total - usage.used, usage.total)  # FREE: the pool's
        lines.append(f"{name:<16} 12/31/2030      {counts}")
        for pid, c in enumerate(usage.checkouts, start=4001):
            lines.append(f" {c.username:<10} {pid}@{c.lead_host}  {c.quantity}")
    if shared_pool and report:
        pool = next(iter(report.values()))
        counts = _lsdyna_counts(pool.used, pool.total - pool.used, pool.total)
        lines.append(f"                   LICENSE GROUP {counts}")
    return "\n".join(lines) + "\n"


def lmx(host: str, port: int, report: Report) -> str:
    """Every checkout's host carries LM-X's ``_suffix``, which the parser drops."""
    lines = [
        "LM-X End-user Utility v5.5",
        "Copyright (C) 2002-2023 X-Formation. All rights reserved.",
        "",
        "++++++++++++++++++++++++++++++++++++++++",
        f"LM-X License Server on {port}@{host}:",
        "",
        "Server version: v5.5 Uptime: 1 day(s) 0 hour(s) 0 min(s) 0 sec(s)",
    ]
    for name, usage in report.items():
        lines += [
            "----------------------------------------",
            f"Feature: {name} Version: 1.0 Vendor: SIMVENDOR",
            "Start date: NONE Expire date: 2030-12-31",
            "Key type: EXCLUSIVE License sharing: CUSTOM VIRTUAL",
            "",
            f"{usage.used} of {usage.total} license(s) used:",
            "",
        ]
        for index, checkout in enumerate(usage.checkouts, start=1):
            user, lead_host = checkout.username, checkout.lead_host
            lines += [
                f"{checkout.quantity} license(s) used by {user}@{lead_host}_{4000 + index}"
                f" [10.0.0.{index % 250 + 1}]",
                "  Login time: 2026-12-02 06:30   Checkout time: 2026-12-02 06:30",
                f"  Shared on custom string: {user}:{lead_host}",
                "",
            ]
    lines.append("----------------------------------------")
    return "\n".join(lines) + "\n"


def olicense(host: str, port: int, report: Report) -> str:
    lines = [
        "olixtool 4.8.0 - OLicense XML Status Application",
        "Copyright (C) 2011-2023 Optimum GmbH, Karlsruhe, Germany",
        "",
        f"Server: <{host}:{port}> (Proxy: <>)",
        "",
        "List of requested licenses:",
        "",
        "==============================================",
        "Application: <simapp>",
        "Version:     <1.0>",
        "Licenser: <Simulated Vendor>",
        "Licensee: <lmrpc tests>",
        f"License-ID: <sim-{port}>",
        "Modules:",
    ]
    for name, usage in report.items():
        lines.append(f"        {name}; FloatingLicense; {usage.total}; 2030-12-31 23:59:59;")
        if usage.used or usage.checkouts:
            lines.append(f"                {usage.used} FloatsLockedBy:")
        for checkout in usage.checkouts:
            lines.append(
                f"                        {checkout.username}@{checkout.lead_host}"
                f" #{checkout.quantity}"
            )
    lines.append("==============================================")
    return "\n".join(lines) + "\n"


_DSLS_COLUMNS = (
    "server,vendor,feature,model,commercial type,max release number,max release date,"
    "max casual duration,expiration date,customer ID,count,inuse,tokens,casual usage (mn),"
    "host,user,internal ID,active process,client code version,session ID,granted since,"
    "last used at,granted at,queue position"
)


def dsls(host: str, port: int, report: Report) -> str:
    """What the admin tool prints for ``connect``, ``getLicenseUsage -csv`` and ``quit`` on
    its stdin: each prompt stays on the line where the next output starts."""
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    for name, usage in report.items():
        common = [host, "DASSAULTSYSTEMES", name, "ConcurrentUser", "STD", "0", "", "0",
                  "2030-12-31 23:59:59", "SIMULATED", usage.total, usage.used]  # fmt: skip
        for pid, c in enumerate(usage.checkouts, start=7001):
            client = f"{c.lead_host} ({pid})/10.0.0.{pid % 250 + 1}"
            writer.writerow([*common, c.quantity, "0", client, c.username, c.username, "",
                             "6.426", pid, "2026-12-02 06:30:00", "", "", ""])  # fmt: skip
        if not usage.checkouts:
            writer.writerow([*common, "", "0", "", "", "", "", "", "", "", "", "", ""])
    return (
        "Dassault Systemes License Server Administration Tool V6R2023x (6.426.0)\n"
        "Copyright (c) 2000-2023 Dassault Systemes. All rights reserved.\n"
        "Ready.\n"
        f"admin >Connected to license server at {host}:{port} (V6R2023x 6.426.0)\n"
        f"admin >{_DSLS_COLUMNS}\n"
        f"{table.getvalue()}"
        "admin >"
    )


PRINTERS: dict[str, Callable[[str, int, Report], str]] = {
    "flexlm": flexlm,
    "rlm": rlm,
    "lsdyna": lsdyna,
    "lmx": lmx,
    "olicense": olicense,
    "dsls": dsls,
}

# What each tool says when its server cannot be reached (with a non-zero exit status).
DOWN_MESSAGES: dict[str, str] = {
    "flexlm": "Error getting status: Cannot connect to license server system."
    ' (-15,570:111 "Connection refused")',
    "rlm": 'rlmutil: Error connecting to "{port}@{host}":'
    " Communications error with license server (-17)",
    "lsdyna": "*** ERROR: failed to connect to license server {port}@{host}",
    "lmx": "LM-X Error: (Internal: 4 Feature: ) Connection to {host}:{port} failed",
    "olicense": "Error: could not connect to server <{host}:{port}>",
    "dsls": "ERROR: cannot connect to license server {host}:{port}",
}
