"""Parsers of what Slurm prints and gives the hooks, on outputs of the real Slurm 22.05."""

from hypothesis import given
from hypothesis import strategies as st

from agent import slurm
from agent.slurm import SlurmJob, SlurmLicense

SHOW_LIC = """LicenseName=abaqus.abaqus@flexlm
    Total=10 Used=3 Free=2 Reserved=5 Remote=no
LicenseName=scratch
    Total=2 Used=0 Free=2 Reserved=0 Remote=no
"""


def test_scontrol_show_licenses_in_both_layouts() -> None:
    expected = {
        "abaqus.abaqus@flexlm": SlurmLicense(10, 3, 5),
        "scratch": SlurmLicense(2, 0, 0),
    }
    assert slurm.parse_licenses(SHOW_LIC) == expected
    one_line = "\n".join(
        " ".join(part.strip() for part in pair)
        for pair in zip(SHOW_LIC.splitlines()[::2], SHOW_LIC.splitlines()[1::2], strict=True)
    )
    assert slurm.parse_licenses(one_line) == expected
    assert slurm.parse_licenses("slurm_load_licenses error: Unable to contact") == {}


def test_squeue_lines_with_every_elapsed_form() -> None:
    text = (
        "12|RUNNING|0:05\n13|CONFIGURING|1:02:03\n14|PENDING|2-01:00:00\ngarbage\n15_3|RUNNING|x\n"
    )
    assert slurm.parse_jobs(text) == {
        "12": SlurmJob("12", "RUNNING", 5),
        "13": SlurmJob("13", "CONFIGURING", 3723),
        "14": SlurmJob("14", "PENDING", 2 * 86400 + 3600),
        "15_3": SlurmJob("15_3", "RUNNING", 0),
    }
    assert [job.active for job in slurm.parse_jobs(text).values()] == [True, True, False, True]


@given(st.integers(0, 30), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
def test_elapsed_round_trips(days: int, hours: int, minutes: int, seconds: int) -> None:
    text = f"{hours}:{minutes:02d}:{seconds:02d}"
    if days:
        text = f"{days}-{hours:02d}:{minutes:02d}:{seconds:02d}"
    assert slurm.parse_elapsed(text) == ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def test_job_licenses_keep_only_tracked_names_and_sum_repeats() -> None:
    value = (
        "abaqus.abaqus@flexlm:3,scratch:2,ansys.hpc@RLM,abaqus.abaqus@flexlm:1,"
        "x.y@nope:2,a.b@dsls:z"
    )
    assert slurm.parse_job_licenses(value) == {"abaqus.abaqus": 4, "ansys.hpc": 1}
    for nothing in (None, "", "(null)"):
        assert slurm.parse_job_licenses(nothing) == {}


def test_node_lists_and_host_names() -> None:
    assert slurm.first_host("n07.cluster.example,n08") == "n07.cluster.example"
    assert slurm.needs_expansion("gpu[07-09],cpu1") and not slurm.needs_expansion("n1,n2")
    assert slurm.short_host("N07.Cluster.example") == "n07"


def test_reservation_commands_are_argument_lists() -> None:
    amounts = {"b.b@rlm": 2, "a.a@flexlm": 5}
    assert slurm.create_reservation("scontrol", "R", "root", amounts, 180) == [
        "scontrol",
        "create",
        "reservation",
        "ReservationName=R",
        "StartTime=now",
        "EndTime=now+180",
        "Users=root",
        "Flags=LICENSE_ONLY",
        "Licenses=a.a@flexlm:5,b.b@rlm:2",
    ]
    assert slurm.reservation_exists("ReservationName=R StartTime=…", "R")
    assert not slurm.reservation_exists("Reservation R not found", "R")
