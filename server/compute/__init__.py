"""Model work: typed jobs (:mod:`.jobs`), the priority worker pool that runs them (:mod:`.workpool`) and the
runtime that executes them on collaborators passed in (:mod:`.runtime`)."""
