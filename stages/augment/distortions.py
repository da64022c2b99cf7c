"""Random affine and elastic distortions of images, folded into one sampling grid.

Each image gets a random affine map (mirror, scale, shear, rotation, shift, about the
image centre) and a random smooth elastic displacement (``smoothing``). Both are written
as source coordinates ``x(r, c)`` and ``y(r, c)`` in one basis: ``rows @ C @ cols.T``,
whose first two columns are ``1`` and the pixel's offset from the centre (the affine
part) and whose others are the elastic basis. Two small matrix products per chunk of
images give every sampling coordinate; one bilinear gather per output pixel reads the
image there. Sources outside the image read the blank pixel (its normalized value).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stages.augment.smoothing import smooth_field_basis

#: blank rows/columns added before (1) and after (2) each image: a bilinear read at a
#: clipped coordinate then only touches blank pixels
PAD_BEFORE, PAD_AFTER = 1, 2
#: images per chunk: the chunk's temporaries stay in the CPU's cache (measured: 128 beats
#: 64 and 512 on 28x28 images)
CHUNK_PIXELS = 128 * 28 * 28
#: variance of a uniform(-1, 1) number, the noise Simard's elastic field smooths
UNIFORM_VARIANCE = 1.0 / 3.0


#: the largest value of each strength measured in pixels, as a fraction of the picture's
#: shorter side (so that they hold for any picture size): a shift beyond a quarter of the
#: side moves the digit out of its frame; a smoothing wider than the picture is a plain shift
#: (and its kernel costs memory in proportion to it); an elastic field scaled past twice the
#: side tears the picture into noise
PIXEL_LIMITS = {"shift": 0.25, "elastic_alpha": 2.0, "elastic_sigma": 1.0}


def pixel_limits(image_shape: tuple[int, int]) -> dict[str, float]:
    """The largest value in pixels of each of ``PIXEL_LIMITS`` for pictures ``(rows, cols)``."""
    side = min(image_shape)
    return {name: fraction * side for name, fraction in PIXEL_LIMITS.items()}


@dataclass(frozen=True)
class Strengths:
    """How strongly each image is distorted; every draw is uniform and independent.

    ``rotation``: degrees, the angle is in ``[-rotation, rotation]``, positive turns
    counter-clockwise as displayed. ``scale``: the size factor is in ``[1 - scale,
    1 + scale]``. ``shear``: ``x += shear_factor * y`` (rows downwards) with the factor in
    ``[-shear, shear]``: a positive factor slants upright strokes like a backslash.
    ``shift``: pixels, each axis independently in ``[-shift, shift]``. ``elastic_alpha``,
    ``elastic_sigma``: Simard's elastic field, ``alpha`` times uniform(-1, 1) noise per
    pixel smoothed by a Gaussian of standard deviation ``sigma`` pixels (0: no smoothing).
    ``mirror``: flip left-right half of the images, at random.
    """

    rotation: float = 0.0
    scale: float = 0.0
    shear: float = 0.0
    shift: float = 0.0
    elastic_alpha: float = 0.0
    elastic_sigma: float = 0.0
    mirror: bool = False

    def __post_init__(self) -> None:
        for name in ("rotation", "scale", "shear", "shift", "elastic_alpha", "elastic_sigma"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.scale >= 1:
            raise ValueError(f"scale must be < 1, got {self.scale!r}")

    @property
    def active(self) -> bool:
        """Whether these strengths change any image (all zero: they do not)."""
        return self.mirror or any(
            (self.rotation, self.scale, self.shear, self.shift, self.elastic_alpha)
        )


@dataclass(frozen=True)
class Draw:
    """The random part of distorting ``n`` images.

    ``angles`` ``(n,)`` degrees, ``scales`` ``(n,)``, ``shears`` ``(n,)``, ``shifts``
    ``(n, 2)`` pixels as (x: right, y: down), ``mirrored`` ``(n,)`` bool, ``elastic``
    ``(n, 2, k_rows, k_cols)``: the x and y fields' coefficients in the elastic basis
    (displacements in pixels once multiplied out), or None for no elastic field.
    """

    angles: np.ndarray
    scales: np.ndarray
    shears: np.ndarray
    shifts: np.ndarray
    mirrored: np.ndarray
    elastic: np.ndarray | None = None

    @classmethod
    def identity(cls, n: int) -> Draw:
        """``n`` images left as they are."""
        return cls(np.zeros(n), np.ones(n), np.zeros(n), np.zeros((n, 2)), np.zeros(n, bool))


def padded_shape(image_shape: tuple[int, int]) -> tuple[int, int]:
    """The shape of one image of ``image_shape`` once padded (1 pixel before, 2 after)."""
    return image_shape[0] + PAD_BEFORE + PAD_AFTER, image_shape[1] + PAD_BEFORE + PAD_AFTER


def pad_images(
    images: np.ndarray, image_shape: tuple[int, int], blank: float, out: np.ndarray | None = None
) -> np.ndarray:
    """``images`` ``(n, rows * cols)`` -> ``(n, rows + 3, cols + 3)`` float32 with a border of
    ``blank``: the source ``Distorter.apply`` reads. Written into ``out`` if given."""
    rows, cols = image_shape
    if out is None:
        out = np.empty((len(images), *padded_shape(image_shape)), np.float32)
    out[...] = blank
    out[:, PAD_BEFORE : PAD_BEFORE + rows, PAD_BEFORE : PAD_BEFORE + cols] = images.reshape(
        -1, rows, cols
    )
    return out


def _linear_basis(n: int, elastic: np.ndarray | None) -> np.ndarray:
    """``(n, 2 + k)`` float32: a column of ones, the offset from the centre, the elastic basis."""
    columns = [np.ones(n), np.arange(n) - (n - 1) / 2]
    stacked = np.column_stack(columns if elastic is None else [*columns, elastic])
    return stacked.astype(np.float32)


class Distorter:
    """Distorts images of ``image_shape`` ``(rows, cols)`` by ``strengths``.

    ``draw`` takes the random numbers for ``n`` images from a Generator, ``apply`` carries
    them out; the same draw always gives the same bytes.
    """

    def __init__(self, image_shape: tuple[int, int], strengths: Strengths) -> None:
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        self.strengths = strengths
        rows, cols = self.image_shape
        elastic = strengths.elastic_alpha > 0
        self.elastic_rows = smooth_field_basis(rows, strengths.elastic_sigma) if elastic else None
        self.elastic_cols = smooth_field_basis(cols, strengths.elastic_sigma) if elastic else None
        self.rows_basis = _linear_basis(rows, self.elastic_rows)
        self.cols_basis = _linear_basis(cols, self.elastic_cols)

    def draw(self, rng: np.random.Generator, n: int) -> Draw:
        """The random numbers for distorting ``n`` images, in a fixed order."""
        s = self.strengths
        angles = rng.uniform(-s.rotation, s.rotation, n) if s.rotation else np.zeros(n)
        scales = rng.uniform(1 - s.scale, 1 + s.scale, n) if s.scale else np.ones(n)
        shears = rng.uniform(-s.shear, s.shear, n) if s.shear else np.zeros(n)
        shifts = rng.uniform(-s.shift, s.shift, (n, 2)) if s.shift else np.zeros((n, 2))
        mirrored = rng.random(n) < 0.5 if s.mirror else np.zeros(n, bool)
        elastic = None
        if self.elastic_rows is not None:
            shape = (n, 2, self.elastic_rows.shape[1], self.elastic_cols.shape[1])
            elastic = rng.standard_normal(shape, dtype=np.float32)
            elastic *= np.float32(s.elastic_alpha * np.sqrt(UNIFORM_VARIANCE))
        return Draw(angles, scales, shears, shifts, mirrored, elastic)

    def coefficients(self, draw: Draw) -> np.ndarray:
        """``C`` ``(n, 2, 2 + k_rows, 2 + k_cols)`` float32: source ``x`` (``C[:, 0]``) and ``y``
        (``C[:, 1]``) of every output pixel are ``rows_basis @ C[i, d] @ cols_basis.T``, in
        the coordinates of the padded image."""
        n = len(draw.angles)
        theta = np.deg2rad(draw.angles)
        cos, sin = np.cos(theta), np.sin(theta)
        # inverse of rotate @ shear @ scale @ mirror, which maps ink to where it goes:
        # mirror @ scale^-1 @ shear^-1 @ rotate^-1; rotate^-1 turns clockwise as displayed
        unrotate = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
        unshear = np.zeros((n, 2, 2))
        unshear[:, 0, 0] = unshear[:, 1, 1] = 1
        unshear[:, 0, 1] = -draw.shears
        inverse = np.einsum("nij,njk->nik", unshear, unrotate) / draw.scales[:, None, None]
        inverse[:, 0] *= np.where(draw.mirrored, -1.0, 1.0)[:, None]
        rows, cols = self.image_shape
        centre = np.array([(cols - 1) / 2, (rows - 1) / 2]) + PAD_BEFORE
        out = np.zeros((n, 2, self.rows_basis.shape[1], self.cols_basis.shape[1]), np.float32)
        out[:, :, 0, 0] = centre - np.einsum("nij,nj->ni", inverse, draw.shifts)
        out[:, :, 0, 1] = inverse[:, :, 0]  # times the column's offset from the centre
        out[:, :, 1, 0] = inverse[:, :, 1]  # times the row's offset from the centre
        if draw.elastic is not None:
            out[:, :, 2:, 2:] = draw.elastic
        return out

    def apply(self, padded: np.ndarray, draw: Draw, out: np.ndarray | None = None) -> np.ndarray:
        """The images of ``padded`` (``pad_images``) distorted as ``draw`` says: float32
        ``(n, rows * cols)``, written into ``out`` if given."""
        rows, cols = self.image_shape
        n = len(padded)
        if padded.shape[1:] != padded_shape(self.image_shape):
            raise ValueError(f"padded images of shape {padded.shape} do not fit {rows}x{cols}")
        if len(draw.angles) != n:
            raise ValueError(f"a draw for {len(draw.angles)} images cannot distort {n}")
        if out is None:
            out = np.empty((n, rows * cols), np.float32)
        coefficients = self.coefficients(draw)
        chunk = max(1, CHUNK_PIXELS // (rows * cols))
        sampler = _BilinearSampler(padded, chunk)
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            sampler.sample(
                start, self._source_coordinates(coefficients[start:stop]), out[start:stop]
            )
        return out

    def _source_coordinates(self, coefficients: np.ndarray) -> np.ndarray:
        """``(m, 2, rows, cols)`` float32: the padded image's x and y each output pixel reads."""
        m, _, k_rows, k_cols = coefficients.shape
        rows, cols = self.image_shape
        half = coefficients.reshape(-1, k_cols) @ self.cols_basis.T  # (m * 2 * k_rows, cols)
        fields = np.matmul(self.rows_basis, half.reshape(m * 2, k_rows, cols))
        return fields.reshape(m, 2, rows, cols)


class _BilinearSampler:
    """Bilinear reads of chunks of padded images at given coordinates, with reused buffers."""

    def __init__(self, padded: np.ndarray, chunk: int) -> None:
        self.flat = padded.reshape(-1)
        _, self.padded_rows, self.padded_cols = padded.shape
        self.image_size = self.padded_rows * self.padded_cols
        rows, cols = (
            self.padded_rows - PAD_BEFORE - PAD_AFTER,
            self.padded_cols - PAD_BEFORE - PAD_AFTER,
        )
        self.floors = np.empty((chunk, 2, rows, cols), np.float32)
        self.index = np.empty((chunk, rows, cols), np.intp)
        self.corners = np.empty((4, chunk, rows, cols), np.float32)
        # the first pixel of each image of a chunk, relative to the chunk's first
        self.image_starts = (np.arange(chunk, dtype=np.float32) * self.image_size)[:, None, None]

    def sample(self, start: int, coordinates: np.ndarray, out: np.ndarray) -> None:
        """Images ``start, start + 1, ...`` read at ``coordinates`` ``(m, 2, rows, cols)`` (x, y;
        overwritten) into ``out`` ``(m, rows * cols)``."""
        m = len(coordinates)
        x, y = coordinates[:, 0], coordinates[:, 1]
        # mode="clip" below only skips numpy's bounds check: every index is in range.
        # The last blank column/row and the one before it: reads there are blank only.
        np.clip(x, 0, self.padded_cols - 2, out=x)
        np.clip(y, 0, self.padded_rows - 2, out=y)
        floors = self.floors[:m]
        np.floor(coordinates, out=floors)
        coordinates -= floors  # the fractions: the weights of the right and lower neighbours
        x0, y0 = floors[:, 0], floors[:, 1]
        y0 *= self.padded_cols
        y0 += x0
        y0 += self.image_starts[:m]
        index = self.index[:m]
        index[...] = y0
        source = self.flat[start * self.image_size :]
        top_left, top_right, bottom_left, bottom_right = self.corners[:, :m]
        source.take(index, out=top_left, mode="clip")
        source[1:].take(index, out=top_right, mode="clip")
        source[self.padded_cols :].take(index, out=bottom_left, mode="clip")
        source[self.padded_cols + 1 :].take(index, out=bottom_right, mode="clip")
        top_right -= top_left
        top_right *= x
        top_left += top_right
        bottom_right -= bottom_left
        bottom_right *= x
        bottom_left += bottom_right
        bottom_left -= top_left
        bottom_left *= y
        np.add(top_left, bottom_left, out=out.reshape(y.shape))
