"""callscribe turn package (filled by later issues)."""
