"""Recording-analysis jobs: stored in the database (:mod:`server.store.jobs`), queued with huey, run by job workers
(:mod:`.worker`), reported to an optional callback URL (:mod:`.callback`); :mod:`.service` is what the REST API
and the composition root use."""
