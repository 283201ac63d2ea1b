"""Several nodes, one service: the node registry with heartbeats (:mod:`.registry`), the choice of node for a
call (:mod:`.routing`) and the room events that cross nodes (:mod:`.bus`), all on Redis. Nothing here is used on
one machine (``Settings.redis_url`` unset)."""
