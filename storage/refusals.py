"""Refused demand per feature and hour: how many calls got -32010 and how many licenses
they asked for. Counts are added in batches (``actors.usage.RefusalCounter``)."""

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite

from storage.schema import features, products, usage_refusals


def add(conn: Connection, counts: Mapping[tuple[int, int], tuple[int, int]]) -> None:
    """Add (calls, licenses) to the rows of (feature_id, hour); a feature deleted since
    is skipped (its refusals went with it)."""
    if not counts:
        return
    existing = set(
        conn.execute(
            select(features.c.id).where(features.c.id.in_(sorted({f for f, _ in counts})))
        ).scalars()
    )
    rows = [
        {"feature_id": fid, "t": hour, "refused_calls": calls, "refused_licenses": licenses}
        for (fid, hour), (calls, licenses) in sorted(counts.items())
        if fid in existing
    ]
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(usage_refusals)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["feature_id", "t"],
            set_={
                "refused_calls": usage_refusals.c.refused_calls + statement.excluded.refused_calls,
                "refused_licenses": usage_refusals.c.refused_licenses
                + statement.excluded.refused_licenses,
            },
        ),
        rows,
    )


def read(
    conn: Connection, feature_id: int | None, since: int, until: int, step: int
) -> list[dict[str, Any]]:
    """Refusals summed per ``step`` (a multiple of an hour) from ``since`` (aligned down)
    to ``until``, one row per bucket and feature that had any, by time then feature."""
    start = since - since % step
    bucket = (usage_refusals.c.t - (usage_refusals.c.t - start) % step).label("bucket")
    query = (
        select(
            bucket,
            usage_refusals.c.feature_id,
            products.c.name.label("product"),
            features.c.name.label("feature"),
            func.sum(usage_refusals.c.refused_calls).label("calls"),
            func.sum(usage_refusals.c.refused_licenses).label("licenses"),
        )
        .join(features, features.c.id == usage_refusals.c.feature_id)
        .join(products, products.c.id == features.c.product_id)
        .where(usage_refusals.c.t >= start, usage_refusals.c.t < until)
        .group_by(bucket, usage_refusals.c.feature_id, products.c.name, features.c.name)
        .order_by(bucket, usage_refusals.c.feature_id)
    )
    if feature_id is not None:
        query = query.where(usage_refusals.c.feature_id == feature_id)
    return [
        {
            "t": row.bucket,
            "feature_id": row.feature_id,
            "product_feature": f"{row.product}.{row.feature}",
            "refused_calls": int(row.calls),
            "refused_licenses": int(row.licenses),
        }
        for row in conn.execute(query)
    ]
