"""Transcript export formats (chat text, JSON, SRT, WebVTT): the one implementation, used by the CLI and served
to the pages (``POST /api/export``)."""
