"""Recording analysis: a whole file → diarized transcript with word timings, acoustic features and sentiment
(:func:`server.analysis.pipeline.analyze_file`); what analysis jobs (:mod:`server.jobs`) and ``callscribe
analyze`` run."""
