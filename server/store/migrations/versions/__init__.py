"""One file per schema revision, chained by ``down_revision`` (see :mod:`server.store.database`)."""
