"""The ClickHouse warehouse: client factory, migrations, raw tables, rollups and typed queries.

- :mod:`warehouse.client`: ``get_client(dsn)`` (``chdb:///abs/path`` embedded, ``http(s)://`` server),
  ``database_of(dsn)``, ``preload_chdb()``; one client per DSN per process.
- :mod:`warehouse.migrate`: ``migrate(client, database)``, versioned SQL files in ``migrations/``.
- :mod:`warehouse.store`: ``insert_events``, ``count_distinct_ids`` and other small queries.
- :mod:`warehouse.writer`: ``WarehouseWriter``, batches into the raw tables and the rollup's crash recovery.
- :mod:`warehouse.embedded`: whether another process holds the embedded store (one process at a time).
- :mod:`warehouse.rollups`: ``rebuild_rollups`` and the per-minute rollup queries.

Column types come from :mod:`schemas.clickhouse`, derived from the event Structs.
"""
