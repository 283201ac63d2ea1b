"""Speaker identification: embeddings, voice profiles, scoring rules, turn splitting."""
