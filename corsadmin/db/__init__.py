"""The database: tables (``models``), writes with audit and revision (``store``),
consistent reads into a snapshot (``loader``), built-in operators (``operators``),
corsadmin's own migrations (``schema``)."""
