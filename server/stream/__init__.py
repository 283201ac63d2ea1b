"""One audio stream's pipeline: endpointing (:mod:`.segmenter`), the typed events it produces (:mod:`.events`),
the assembly of finals from speaker turns and words (:mod:`.assembly`), and the ordering processor
(:mod:`.processor`) that turns ``push(samples)`` into events. :mod:`.filemode` runs files through it."""
