"""Per-feature usage for the metrics endpoint: one query over all features."""

from sqlalchemy import Connection, select

from storage.schema import features, products

_USAGE = (
    select(
        features.c.cluster_client_id,
        products.c.name,
        features.c.name,
        features.c.total,
        features.c.used,
        features.c.reserved,
        features.c.booked_total,
    )
    .join(products, products.c.id == features.c.product_id)
    .order_by(features.c.id)
)


def feature_usage(conn: Connection) -> list[tuple[str, str, str, int, int, int, int]]:
    """(cluster, product, feature, total, used, reserved, booked_total) of every feature."""
    return [tuple(row) for row in conn.execute(_USAGE)]
