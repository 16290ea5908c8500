"""The reconcile decision is pure: properties over generated cycles, and the cases of
AGENT.md §3 one by one."""

from hypothesis import given
from hypothesis import strategies as st

from agent.reconcile import Booking, Configuration, Feature, Inputs, Job, decide
from agent.slurm import SlurmJob, SlurmLicense
from agent.usage import Checkout, FeatureUsage

NAMES = ["abaqus", "cae", "hpc"]
USERS = ["alice", "Bob"]
HOSTS = ["n1", "N2.cluster.example"]


@st.composite
def cycles(draw: st.DrawFn) -> Inputs:
    """A cluster of one configuration, its jobs and bookings, a server report (or none) and
    Slurm's view, all drawn independently: any mix a real cycle can meet."""
    features = tuple(Feature(i + 1, "prod", name) for i, name in enumerate(NAMES))
    configuration = Configuration(1, "flexlm", draw(st.integers(1, 100)), features, (("h", 1),))
    jobs = []
    for number in range(draw(st.integers(0, 6))):
        bookings = tuple(
            Booking(100 * number + i, draw(st.sampled_from(features)).id, draw(st.integers(1, 3)))
            for i in range(draw(st.integers(0, 3)))
        )
        jobs.append(
            Job(
                number,
                str(number),
                draw(st.sampled_from(USERS)),
                draw(st.sampled_from(HOSTS)),
                bookings,
            )
        )
    checkout = st.builds(
        Checkout,
        st.sampled_from([u.upper() for u in USERS] + USERS),
        st.sampled_from(HOSTS),
        st.integers(1, 3),
    )
    usage = st.builds(
        FeatureUsage,
        st.integers(0, 20),
        st.integers(0, 20),
        st.lists(checkout, max_size=4).map(tuple),
    )
    report = draw(
        st.none() | st.dictionaries(st.sampled_from([n.upper() for n in NAMES] + NAMES), usage)
    )
    licenses = {
        f"prod.{name}@flexlm": SlurmLicense(draw(st.integers(0, 20)), draw(st.integers(0, 20)), 0)
        for name in draw(st.sets(st.sampled_from(NAMES)))
    }
    licenses["local"] = SlurmLicense(5, 1, 0)
    slurm_jobs = {
        job.slurm_job_id: SlurmJob(
            job.slurm_job_id,
            draw(st.sampled_from(["RUNNING", "CONFIGURING", "COMPLETED"])),
            draw(st.integers(0, 200)),
        )
        for job in jobs
        if draw(st.booleans())
    }
    booked = {f.key: draw(st.integers(0, 10)) for f in features}
    return Inputs((configuration,), tuple(jobs), booked, {1: report}, licenses, slurm_jobs)


@given(cycles())
def test_the_reservation_stays_within_slurm_s_count(inputs: Inputs) -> None:
    actions = decide(inputs)
    for name, amount in actions.reservation.items():
        assert 0 < amount <= inputs.licenses[name].total
    assert "local" not in actions.reservation  # Slurm-local licenses are left alone


@given(cycles())
def test_fail_closed_features_report_nothing_and_hide_everything(inputs: Inputs) -> None:
    actions = decide(inputs)
    updates = {u["feature_name"]: u for u in actions.updates}
    for state in actions.features:
        if state.fail_closed:
            name = state.product_feature.split(".")[1]
            assert (updates[name]["total"], updates[name]["used"]) == (0, 0)
            if state.slurm_license:
                assert state.reservation == inputs.licenses[state.slurm_license].total


@given(cycles())
def test_a_booking_is_released_for_checkouts_only_when_the_counts_match(inputs: Inputs) -> None:
    actions = decide(inputs)
    report = inputs.reports[1] or {}
    by_name = {name.lower(): usage for name, usage in report.items()}
    names = {f.id: f.name for f in inputs.configurations[0].features}
    jobs = {job.id: job for job in inputs.jobs}
    bookings = {b.id: (job, b) for job in inputs.jobs for b in job.bookings}
    released_jobs = {r.id for r in actions.releases if r.kind == "job"}
    for release in actions.releases:
        if release.kind == "job":
            assert release.id in jobs
            continue
        job, booking = bookings[release.id]
        assert job.id not in released_jobs

        def key(user: str, host: str, quantity: int) -> tuple[str, str, int]:
            return user.lower(), host.split(".")[0].lower(), quantity

        wanted = key(job.username, job.lead_host, booking.quantity)
        usage = by_name[names[booking.feature_id]]
        seen = sum(key(c.username, c.lead_host, c.quantity) == wanted for c in usage.checkouts)
        same = sum(
            b.feature_id == booking.feature_id
            and key(j.username, j.lead_host, b.quantity) == wanted
            for j in inputs.jobs
            if j.id not in released_jobs
            for b in j.bookings
        )
        assert seen == same > 0


@given(cycles())
def test_only_running_jobs_within_their_grace_time_stay(inputs: Inputs) -> None:
    actions = decide(inputs)
    released = {r.id for r in actions.releases if r.kind == "job"}
    grace = inputs.configurations[0].grace_time
    for job in inputs.jobs:
        seen = inputs.slurm_jobs.get(job.slurm_job_id)
        stays = seen is not None and seen.active and not (job.bookings and seen.elapsed_s > grace)
        assert (job.id not in released) == stays


def test_amount_is_server_used_minus_slurm_used_plus_booked() -> None:
    feature = Feature(1, "abaqus", "abaqus")
    inputs = Inputs(
        configurations=(Configuration(1, "flexlm", 60, (feature,), (("h", 1),)),),
        jobs=(),
        booked={"abaqus.abaqus": 2},
        reports={1: {"ABAQUS": FeatureUsage(10, 7)}},
        licenses={"abaqus.abaqus@flexlm": SlurmLicense(10, 3, 0)},
        slurm_jobs={},
    )
    actions = decide(inputs)
    assert actions.reservation == {"abaqus.abaqus@flexlm": 7 - 3 + 2}
    assert actions.updates == (
        {
            "product_name": "abaqus",
            "feature_name": "abaqus",
            "total": 10,
            "used": 7,
            "checkouts": [],
        },
    )
    assert actions.fail_closed == []


def test_a_booking_released_this_cycle_no_longer_counts_in_the_reservation() -> None:
    feature = Feature(1, "abaqus", "abaqus")
    job = Job(5, "42", "alice", "n1.example", (Booking(9, 1, 2),))
    inputs = Inputs(
        configurations=(Configuration(1, "flexlm", 600, (feature,), (("h", 1),)),),
        jobs=(job,),
        booked={"abaqus.abaqus": 2},
        reports={1: {"abaqus": FeatureUsage(10, 2, (Checkout("Alice", "N1", 2),))}},
        licenses={"abaqus.abaqus@flexlm": SlurmLicense(10, 2, 0)},
        slurm_jobs={"42": SlurmJob("42", "RUNNING", 30)},
    )
    actions = decide(inputs)
    assert [(r.kind, r.id) for r in actions.releases] == [("booking", 9)]
    assert actions.reservation == {}  # 2 used on the server, 2 used in Slurm, 0 booked left


def test_checkouts_are_reported_and_ones_lmrpc_would_refuse_left_out() -> None:
    feature = Feature(1, "abaqus", "abaqus")
    seen = (
        Checkout("alice", "n1.example", 2),
        Checkout("x" * 256, "n2", 1),
        Checkout("bob", "n3\x1b[2J", 1),
        Checkout("carol", "n4", 0),
    )
    inputs = Inputs(
        configurations=(Configuration(1, "flexlm", 60, (feature,), (("h", 1),)),),
        jobs=(),
        booked={},
        reports={1: {"abaqus": FeatureUsage(10, 4, seen)}},
        licenses={"abaqus.abaqus@flexlm": SlurmLicense(10, 0, 0)},
        slurm_jobs={},
    )
    [update] = decide(inputs).updates
    assert update["checkouts"] == [{"username": "alice", "lead_host": "n1.example", "quantity": 2}]


def test_a_fail_closed_feature_leaves_its_checkouts_alone() -> None:
    feature = Feature(1, "abaqus", "abaqus")
    inputs = Inputs(
        configurations=(Configuration(1, "flexlm", 60, (feature,), (("h", 1),)),),
        jobs=(),
        booked={},
        reports={1: None},
        licenses={"abaqus.abaqus@flexlm": SlurmLicense(10, 0, 0)},
        slurm_jobs={},
    )
    [update] = decide(inputs).updates
    assert (update["total"], "checkouts" in update) == (0, False)
