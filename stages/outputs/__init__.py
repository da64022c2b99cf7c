"""Writing what the stages produce: atomic files and sets of files replaced together
(``atomic``), and the per-epoch training history (``history``)."""
