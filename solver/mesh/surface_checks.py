"""Checks of triangulated cell surfaces: closed, manifold, orientable, free of crossings.

Used by :mod:`solver.mesh.surface` on the gmsh rank; everything raises
:class:`SurfaceError`, whose message says what is wrong and where.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

__all__ = [
    "SurfaceError",
    "check_manifold",
    "check_self_intersections",
    "where",
    "winding_number",
]

_CROSS_TOL = 1e-12  # relative: orientation tests closer to 0 count as touching, not crossing
_PAIR_CHUNK = 200_000  # triangle pairs tested for crossings at once
_MAX_SPAN = 5  # grid cells per axis a triangle may cover in the search for crossings


class SurfaceError(ValueError):
    """A surface that cannot become a cell; the message names the problem."""


def where(points: np.ndarray, vertex_ids: np.ndarray) -> str:
    """``"e.g. near (x, y, z) µm"``: where the first of ``vertex_ids`` is."""
    x = points[int(vertex_ids[0])]
    return f"e.g. near ({x[0]:.4g}, {x[1]:.4g}, {x[2]:.4g}) µm"


def check_manifold(points: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check that every edge has two triangles and every vertex one fan; orient consistently.

    Returns the triangles, each piece (a connected set of triangles) consistently
    oriented, and the piece of each triangle (0, 1, ...). Raises
    :class:`SurfaceError` for an open, non-manifold or non-orientable surface.
    """
    m = len(triangles)
    local = np.array([[0, 1], [1, 2], [2, 0]])
    directed = np.concatenate([triangles[:, pair] for pair in local])  # occurrence k: tri k % m
    keys = np.sort(directed, axis=1)
    n = len(points)
    codes, inverse, counts = np.unique(
        keys[:, 0] * n + keys[:, 1], return_inverse=True, return_counts=True
    )
    edges = np.stack([codes // n, codes % n], axis=1)
    if np.any(counts == 1):
        bad = edges[counts == 1]
        raise SurfaceError(
            f"open surface: {len(bad)} edges belong to one triangle only (a hole), "
            f"{where(points, bad[0])}; expected a closed cell surface"
        )
    if np.any(counts > 2):
        bad = edges[counts > 2]
        raise SurfaceError(
            f"non-manifold surface: {len(bad)} edges are shared by more than two "
            f"triangles, {where(points, bad[0])}"
        )
    order = np.argsort(inverse, kind="stable")
    first, second = order[0::2], order[1::2]  # the two occurrences of each edge
    tri_a, tri_b = first % m, second % m
    # one fan of triangles around each vertex: join corners across shared edges
    block = np.arange(3 * m) // m
    corner_from = 3 * (np.arange(3 * m) % m) + local[block, 0]
    corner_to = 3 * (np.arange(3 * m) % m) + local[block, 1]
    low_is_from = directed[:, 0] == keys[:, 0]
    corner_low = np.where(low_is_from, corner_from, corner_to)
    corner_high = np.where(low_is_from, corner_to, corner_from)
    links = np.concatenate(
        [
            np.stack([corner_low[first], corner_low[second]], axis=1),
            np.stack([corner_high[first], corner_high[second]], axis=1),
        ]
    )
    labels = np.arange(3 * m)
    while True:
        lowest = np.minimum(labels[links[:, 0]], labels[links[:, 1]])
        before = labels.copy()
        np.minimum.at(labels, links[:, 0], lowest)
        np.minimum.at(labels, links[:, 1], lowest)
        labels = labels[labels]
        if np.array_equal(labels, before):
            break
    vertex_of_corner = triangles.reshape(-1)
    fans = np.unique(vertex_of_corner * (3 * m) + labels) // (3 * m)  # (vertex, fan) pairs
    vertices, fan_counts = np.unique(fans, return_counts=True)
    if np.any(fan_counts > 1):
        bad = vertices[fan_counts > 1]
        raise SurfaceError(
            f"non-manifold surface: {len(bad)} vertices join surface parts that share no "
            f"edge (pinch points), {where(points, bad)}"
        )
    # orientation: neighbours must run through their shared edge in opposite directions
    same = directed[first, 0] == directed[second, 0]
    neighbours: list[list[tuple[int, bool]]] = [[] for _ in range(m)]
    for a, b, s in zip(tri_a.tolist(), tri_b.tolist(), same.tolist(), strict=True):
        neighbours[a].append((b, s))
        neighbours[b].append((a, s))
    flip = np.zeros(m, dtype=bool)
    seen = np.zeros(m, dtype=bool)
    pieces = 0
    piece = np.zeros(m, dtype=np.int64)
    for start in range(m):
        if seen[start]:
            continue
        pieces += 1
        seen[start] = True
        piece[start] = pieces - 1
        queue = deque([start])
        while queue:
            t = queue.popleft()
            for other, same_direction in neighbours[t]:
                wanted = flip[t] ^ same_direction
                if not seen[other]:
                    seen[other], flip[other] = True, wanted
                    piece[other] = pieces - 1
                    queue.append(other)
                elif flip[other] != wanted:
                    raise SurfaceError(
                        "non-orientable surface (it has no inside), "
                        f"{where(points, triangles[other])}"
                    )
    triangles = triangles.copy()
    triangles[flip] = triangles[flip][:, ::-1]
    return triangles, piece


def _candidate_pairs(p: np.ndarray) -> np.ndarray:
    """Pairs of triangles (coordinates ``p`` (m, 3, 3)) whose bounding boxes meet."""
    lo, hi = p.min(axis=1), p.max(axis=1)
    extent = np.max(hi - lo, axis=1)
    # cells of twice the typical triangle; a few long ones span up to _MAX_SPAN cells
    cell = max(2 * float(np.median(extent)), float(extent.max()) / (_MAX_SPAN - 1)) or 1.0
    first, last = np.floor(lo / cell).astype(np.int64), np.floor(hi / cell).astype(np.int64)
    id_parts, key_parts = [], []
    for offset in np.ndindex(_MAX_SPAN, _MAX_SPAN, _MAX_SPAN):
        index = first + np.array(offset)
        ok = np.all(index <= last, axis=1)
        id_parts.append(np.flatnonzero(ok))
        key_parts.append(index[ok])
    ids, keys = np.concatenate(id_parts), np.concatenate(key_parts)
    keys -= keys.min(axis=0)
    span = keys.max(axis=0) + 1
    flat = (keys[:, 0] * span[1] + keys[:, 1]) * span[2] + keys[:, 2]
    order = np.argsort(flat, kind="stable")
    ids, flat = ids[order], flat[order]
    # every pair within a grid cell: entry i with the entries after it in its cell
    starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
    ends = np.r_[starts[1:], len(flat)]
    later = np.repeat(ends, ends - starts) - np.arange(len(flat)) - 1
    left = np.repeat(np.arange(len(flat)), later)
    right = left + 1 + np.arange(len(left)) - np.repeat(np.cumsum(later) - later, later)
    a, b = np.minimum(ids[left], ids[right]), np.maximum(ids[left], ids[right])
    keep = (a != b) & np.all((lo[a] <= hi[b]) & (lo[b] <= hi[a]), axis=1)
    unique = np.unique(a[keep] * len(p) + b[keep])  # a pair may share several cells
    return np.stack([unique // len(p), unique % len(p)], axis=1)


def _orient(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Six times the signed volume of the tetrahedra (a, b, c, d), row-wise."""
    return np.einsum("ij,ij->i", b - a, np.cross(c - a, d - a))


def _edges_cross(p: np.ndarray, q: np.ndarray, tol: float) -> np.ndarray:
    """Whether an edge of triangles ``p`` crosses the inside of triangles ``q``, row-wise."""
    a, b, c = q[:, 0], q[:, 1], q[:, 2]
    hit = np.zeros(len(p), dtype=bool)
    for i in range(3):
        s, t = p[:, i], p[:, (i + 1) % 3]
        sides = _orient(a, b, c, s) * _orient(a, b, c, t) < -tol
        turns = np.stack([_orient(s, t, a, b), _orient(s, t, b, c), _orient(s, t, c, a)])
        through = np.all(turns > tol, axis=0) | np.all(turns < -tol, axis=0)
        hit |= sides & through
    return hit


def check_self_intersections(points: np.ndarray, triangles: np.ndarray) -> None:
    """Raise if two triangles that share no edge cross each other.

    Triangles sharing one corner are tested too: an edge through the shared corner
    touches the other triangle's plane there and never counts, so only a fold (the
    edge opposite the corner through the other triangle) is found.
    """
    p = points[triangles]
    pairs = _candidate_pairs(p)
    shared = np.zeros(len(pairs), dtype=np.int64)
    for i in range(3):
        for j in range(3):
            shared += triangles[pairs[:, 0], i] == triangles[pairs[:, 1], j]
    pairs = pairs[shared < 2]
    scale = float(np.max(np.ptp(points, axis=0)))
    tol = _CROSS_TOL * scale**3
    hits = []
    for start in range(0, len(pairs), _PAIR_CHUNK):
        chunk = pairs[start : start + _PAIR_CHUNK]
        pa, pb = p[chunk[:, 0]], p[chunk[:, 1]]
        hit = _edges_cross(pa, pb, tol) | _edges_cross(pb, pa, tol)
        hits.append(chunk[hit])
    crossing = np.concatenate(hits) if hits else np.empty((0, 2), np.int64)
    if len(crossing):
        raise SurfaceError(
            f"self-intersecting surface: {len(crossing)} pairs of triangles cross, "
            f"{where(points, triangles[crossing[0, 0]])}"
        )


def winding_number(points: np.ndarray, triangles: np.ndarray, x: np.ndarray) -> float:
    """How many times the closed surface winds around the point ``x``: 1 inside, 0 outside.

    The sum of the solid angles of the triangles seen from ``x`` (Van Oosterom and
    Strackee's formula), over 4π; for an outward-oriented surface.
    """
    a, b, c = (points[triangles[:, i]] - x for i in range(3))
    la, lb, lc = (np.linalg.norm(v, axis=1) for v in (a, b, c))
    numerator = np.einsum("ij,ij->i", a, np.cross(b, c))
    denominator = (
        la * lb * lc
        + np.einsum("ij,ij->i", a, b) * lc
        + np.einsum("ij,ij->i", a, c) * lb
        + np.einsum("ij,ij->i", b, c) * la
    )
    return float(np.sum(2 * np.arctan2(numerator, denominator)) / (4 * math.pi))
