"""callscribe signaling package (filled by later issues)."""
