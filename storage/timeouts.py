"""The database timeouts' defaults, in a module without SQL: ``lmrpc/settings.py`` reads them,
and commands that only need the settings (``lmrpc token``, ``lmrpc ui``) then start
without loading SQLAlchemy."""

# How long one transaction may wait on the database, in seconds (``LMRPC_DB_TIMEOUT``,
# lmrpc/settings.py). It bounds SQLite's busy wait, PostgreSQL's statement timeout (its
# lock timeout is 80 % of it, so a lock wait fails first and says so), and a transaction's
# wait in the storage queue (storage/runner.py). A stuck database becomes ``-32050``.
DEFAULT_DB_TIMEOUT_S = 10.0
