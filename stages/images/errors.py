"""The image helpers' exceptions: one-line messages; whoever names the file adds it."""


class ImageError(Exception):
    """A user's image cannot be turned into a model input (unreadable, too large, blank)."""


class BlankImageError(ImageError):
    """The image was read, but holds no ink: one uniform level, or noise only."""
