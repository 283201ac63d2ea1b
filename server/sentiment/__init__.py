"""Offline text sentiment (English and Korean) for finals and analysed segments: :class:`TextSentiment`.

Imports only numpy, scikit-learn (HashingVectorizer, with scipy's sparse matrices), vaderSentiment, kiwipiepy and
``server.errors``; the method and its figures are in :mod:`server.sentiment.model` and ``bench/README.md``.
"""

from .model import Sentiment, TextSentiment

__all__ = ["Sentiment", "TextSentiment"]
