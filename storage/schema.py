"""The relational schema: tables, keys and the constraints that guard the data itself.

Counters live on the feature row (``booked_total`` included) so that admission reads one row
under a lock, whatever the number of bookings. ``features.cluster_client_id`` copies the
configuration's cluster so that "one product.feature per cluster" is a plain unique key.

Ids are never reused (API.md §4): a client may still hold a deleted object's id. SQLite
without ``AUTOINCREMENT`` hands a deleted top id out again, so every table with an id asks
for it; PostgreSQL's serial sequences never go back.
"""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

NAME = String(255)

configurations = Table(
    "configurations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", NAME, nullable=False),
    Column("cluster_client_id", NAME, nullable=False, index=True),
    Column("grace_time", Integer, nullable=False),
    Column("type", String(16), nullable=False),
    CheckConstraint("grace_time > 0", name="grace_time_positive"),
    sqlite_autoincrement=True,
)

license_servers = Table(
    "license_servers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "config_id",
        Integer,
        ForeignKey("configurations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("host", NAME, nullable=False),
    Column("port", Integer, nullable=False),
    CheckConstraint("port BETWEEN 1 AND 65535", name="port_range"),
    sqlite_autoincrement=True,
)

products = Table(
    "products",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    sqlite_autoincrement=True,
)

features = Table(
    "features",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", NAME, nullable=False),
    Column(
        "product_id",
        Integer,
        ForeignKey("products.id", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    Column(
        "config_id",
        Integer,
        ForeignKey("configurations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("cluster_client_id", NAME, nullable=False),
    Column("total", Integer, nullable=False, server_default="0"),
    Column("used", Integer, nullable=False, server_default="0"),
    Column("reserved", Integer, nullable=False, server_default="0"),
    Column("booked_total", Integer, nullable=False, server_default="0"),
    UniqueConstraint("cluster_client_id", "product_id", "name"),
    CheckConstraint("total >= 0", name="total_non_negative"),
    CheckConstraint("used >= 0", name="used_non_negative"),
    CheckConstraint("reserved >= 0", name="reserved_non_negative"),
    CheckConstraint("booked_total >= 0", name="booked_total_non_negative"),
    sqlite_autoincrement=True,
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("slurm_job_id", NAME, nullable=False),
    Column("cluster_client_id", NAME, nullable=False),
    Column("username", NAME, nullable=False),
    Column("lead_host", NAME, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("cluster_client_id", "slurm_job_id"),
    sqlite_autoincrement=True,
)

bookings = Table(
    "bookings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column(
        "feature_id",
        Integer,
        ForeignKey("features.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("quantity", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    sqlite_autoincrement=True,
)

cluster_statuses = Table(
    "cluster_statuses",
    metadata,
    Column("cluster_client_id", NAME, primary_key=True),
    Column("interval", Integer, nullable=False),
    Column("last_reported", DateTime(timezone=True), nullable=False),
    CheckConstraint("interval > 0", name="interval_positive"),
)

Index("ix_jobs_created_at", jobs.c.created_at)

# The latest set of checkouts the agent read from the license server, per feature.
feature_checkouts = Table(
    "feature_checkouts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "feature_id",
        Integer,
        ForeignKey("features.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("username", NAME, nullable=False),
    Column("lead_host", NAME, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("reported_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    sqlite_autoincrement=True,
)


def _history_key(*names: str) -> list[Column[int]]:
    """A feature's history rows: keyed by the feature (deleted with it) and ``names``, which
    are Unix seconds (``t``) or widths; no surrogate id, so none can be reused."""
    feature = Column(
        "feature_id", Integer, ForeignKey("features.id", ondelete="CASCADE"), primary_key=True
    )
    types = {"step": Integer, "t": BigInteger}
    return [feature, *(Column(name, types[name], primary_key=True) for name in names)]


# Usage history (storage/history.py). Recent samples: one row per feature, bucket width
# ``step`` and bucket start ``t`` (Unix seconds), with the last counters seen in the bucket
# and the highest ``used``, until the hourly roll-up packs them into ``usage_blocks``: a row
# per feature, tier and block start holding many samples (storage/packing.py).
usage_samples = Table(
    "usage_samples",
    metadata,
    *_history_key("step", "t"),
    Column("total", Integer, nullable=False),
    Column("used", Integer, nullable=False),
    Column("reserved", Integer, nullable=False),
    Column("booked", Integer, nullable=False),
    Column("peak_used", Integer, nullable=False),
)

usage_blocks = Table(
    "usage_blocks",
    metadata,
    *_history_key("step", "t"),
    Column("data", LargeBinary, nullable=False),
)

# Refused demand (-32010) per feature and hour (``t``: Unix seconds of the hour's start).
usage_refusals = Table(
    "usage_refusals",
    metadata,
    *_history_key("t"),
    Column("refused_calls", BigInteger, nullable=False),
    Column("refused_licenses", BigInteger, nullable=False),
)
Index("ix_usage_refusals_t", usage_refusals.c.t)
