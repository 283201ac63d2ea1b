"""NAT traversal: coturn (Debian's package) as the TURN relay, with time-limited credentials.

- :mod:`turn.credentials` mints credentials with the shared-secret scheme of coturn's ``use-auth-secret``.
- :mod:`turn.coturn` renders a coturn configuration and runs ``turnserver`` (``callscribe turn``).
"""
