"""The one ownership rule (lmrpc/identity.py ``check_owner``), as a property: a caller may
change what a cluster owns exactly when it is an admin or that cluster's own token."""

from hypothesis import given
from hypothesis import strategies as st

from lmrpc.errors import Forbidden
from tests.conftest import identity

clusters = st.sampled_from(["cluster-a", "cluster-b", "", "a" * 255])


@given(caller=st.one_of(st.none(), clusters), owner=clusters, admin=st.booleans())
def test_only_the_owner_or_an_admin_may_change(caller: str | None, owner: str, admin: bool) -> None:
    who = identity("admin" if admin else "job:delete", cluster=caller)
    try:
        who.check_owner(owner)
    except Forbidden as refused:
        assert not admin and caller != owner, refused
        assert refused.reason == "the job belongs to another cluster"
    else:
        assert admin or caller == owner
