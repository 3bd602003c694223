"""Ledoit-Wolf shrunk covariance kept in the form a Mahalanobis distance needs, and saved as
the smaller of its two forms (the out-of-scope detectors of :mod:`.ood` use it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class LedoitWolf:
    """Mean and Ledoit-Wolf shrunk covariance of (N, D) rows, kept as what the distance needs.

    The shrinkage is sklearn's ``ledoit_wolf_shrinkage`` computed from the N x N Gram matrix
    (sklearn forms D x D products); the covariance is ``scale * I + (1 - shrinkage) / N *
    C'C`` with ``C`` the centred rows. With fewer rows than dimensions the distance goes
    through the Woodbury identity (an N x N matrix, the rows kept); otherwise through the
    D x D precision. Either way the stored arrays are the smaller of the two.
    """

    mean: np.ndarray
    scale: float
    shrinkage: float
    precision: np.ndarray | None = None  # (D, D) when N >= D
    basis: np.ndarray | None = None  # (N, D) centred rows when N < D
    inner_inv: np.ndarray | None = None  # (N, N) inverse of the Woodbury inner matrix

    @classmethod
    def fit(cls, rows: np.ndarray) -> LedoitWolf:
        rows = np.asarray(rows, dtype=np.float64)
        mean = rows.mean(axis=0)
        centered = rows - mean
        count, dims = centered.shape
        gram = centered @ centered.T
        norms = np.diag(gram)
        mu = float(norms.sum()) / (count * dims)
        gram_sq = float(np.sum(gram * gram))
        delta = (gram_sq / count ** 2 - 2 * mu * float(norms.sum()) / count
                 + dims * mu ** 2) / dims
        beta = (float(np.sum(norms * norms)) / count - gram_sq / count ** 2) / (dims * count)
        beta = min(beta, delta)
        shrinkage = 0.0 if beta == 0 else beta / delta
        scale = shrinkage * mu
        if count < dims and 0.0 < shrinkage < 1.0 and scale > 0:
            inner = scale * count / (1.0 - shrinkage) * np.eye(count) + gram
            return cls(mean, scale, shrinkage, basis=centered, inner_inv=np.linalg.inv(inner))
        covariance = (1.0 - shrinkage) / count * centered.T @ centered
        covariance[np.diag_indices(dims)] += scale
        return cls(mean, scale, shrinkage, precision=np.linalg.inv(covariance))

    def full_precision(self) -> np.ndarray:
        """The D x D precision (forms it from the Woodbury factors when needed)."""
        if self.precision is not None:
            return self.precision
        assert self.basis is not None and self.inner_inv is not None
        dims = self.mean.size
        return (np.eye(dims) - self.basis.T @ self.inner_inv @ self.basis) / self.scale

    def distances(self, rows: np.ndarray) -> np.ndarray:
        """Mahalanobis distances (not squared) of (M, D) rows."""
        delta = np.asarray(rows, dtype=np.float64).reshape(-1, self.mean.size) - self.mean
        if self.precision is not None:
            squared = np.einsum("nd,de,ne->n", delta, self.precision, delta)
        else:
            assert self.basis is not None and self.inner_inv is not None
            projected = delta @ self.basis.T
            squared = (np.einsum("nd,nd->n", delta, delta) - np.einsum(
                "nk,kl,nl->n", projected, self.inner_inv, projected)) / self.scale
        return np.sqrt(np.maximum(squared, 0.0))

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        out = {f"{prefix}mean": self.mean, f"{prefix}scale": np.float64(self.scale),
               f"{prefix}shrinkage": np.float64(self.shrinkage)}
        if self.precision is not None:
            out[f"{prefix}precision"] = self.precision.astype(np.float32)
        else:
            assert self.basis is not None and self.inner_inv is not None
            out[f"{prefix}basis"] = self.basis.astype(np.float32)
            out[f"{prefix}inner_inv"] = self.inner_inv
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> LedoitWolf:
        def get(name: str) -> np.ndarray | None:
            value = arrays.get(prefix + name)
            return None if value is None else np.asarray(value, dtype=np.float64)

        return cls(np.asarray(arrays[prefix + "mean"], dtype=np.float64),
                   float(arrays[prefix + "scale"]), float(arrays[prefix + "shrinkage"]),
                   precision=get("precision"), basis=get("basis"), inner_inv=get("inner_inv"))
