"""Rooms: who listens to what. :mod:`.hub` is the small interface, :mod:`.memory` the in-process implementation
(a networked one can stand in its place)."""
