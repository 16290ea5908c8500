"""Hypothesis strategies of license-server reports, with names each tool can print."""

from hypothesis import strategies as st

from agent.usage import Checkout, FeatureUsage, Report

# Feature names as each tool allows them (FlexLM's may contain ":").
FEATURE_NAMES: dict[str, str] = {
    "flexlm": r"[A-Za-z0-9_][A-Za-z0-9_:\-]{0,29}",
    "rlm": r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,29}",
    "lsdyna": r"[A-Z0-9_][A-Z0-9_\-]{0,19}",
    "lmx": r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,29}",
    "olicense": r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,29}",
    "dsls": r"[A-Za-z0-9][A-Za-z0-9_\-]{0,29}",
}
USERS = st.from_regex(r"[a-z_][a-z0-9_.\-]{0,15}", fullmatch=True)
HOSTS = st.from_regex(r"[a-z0-9]([a-z0-9\-]{0,10}[a-z0-9])?(\.[a-z0-9]{1,8}){0,3}", fullmatch=True)
CHECKOUTS = st.lists(
    st.builds(Checkout, USERS, HOSTS, st.integers(min_value=1, max_value=1000)), max_size=6
)


@st.composite
def usages(draw: st.DrawFn) -> FeatureUsage:
    """Used is at least what the checkouts hold (licenses may be used by hosts not shown)."""
    checkouts = tuple(draw(CHECKOUTS))
    used = sum(c.quantity for c in checkouts) + draw(st.integers(0, 50))
    return FeatureUsage(used + draw(st.integers(0, 10**6)), used, checkouts)


def reports(type_: str) -> st.SearchStrategy[Report]:
    names = st.from_regex(FEATURE_NAMES[type_], fullmatch=True)
    return st.dictionaries(names, usages(), max_size=6)


@st.composite
def shared_pools(draw: st.DrawFn) -> Report:
    """LS-DYNA programs sharing one pool: each has the pool's total and used."""
    names = draw(st.lists(st.from_regex(FEATURE_NAMES["lsdyna"], fullmatch=True), min_size=1,
                          max_size=6, unique=True))  # fmt: skip
    checkouts = {name: tuple(draw(CHECKOUTS)) for name in names}
    used = sum(c.quantity for held in checkouts.values() for c in held) + draw(st.integers(0, 50))
    total = used + draw(st.integers(0, 10**6))
    return {name: FeatureUsage(total, used, held) for name, held in checkouts.items()}
