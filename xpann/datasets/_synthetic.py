"""Seeded synthetic data for tests and benchmarks: the same arguments give the same arrays.

The first ``n_informative`` columns carry the signal; the others are standard normal noise.
"""

import math

import numpy

from .._checks import float_dtype, fraction, non_negative, positive_int


def _common(n_samples, n_features, n_informative, seed, dtype):
    n_samples = positive_int("n_samples", n_samples)
    n_features = positive_int("n_features", n_features)
    if n_informative is None:
        n_informative = max(1, n_features // 2)
    elif positive_int("n_informative", n_informative) > n_features:
        raise ValueError(f"n_informative ({n_informative}) must not exceed n_features ({n_features}).")
    n_informative = int(n_informative)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"seed must be a whole number >= 0 or None, got {seed!r}.")
    return n_samples, n_features, n_informative, numpy.random.default_rng(seed), float_dtype(dtype)


def make_classification(n_samples=1000, n_features=20, n_informative=None, n_classes=2, class_sep=1.0,
                        noise=0.0, seed=0, dtype="float32"):
    """``(x, y)``: Gaussian clusters, one per class, with ``y`` int64 codes 0..n_classes-1.

    Class centroids are distinct vertices of the hypercube {-class_sep, +class_sep}^k in the
    k = ``n_informative`` (default ``n_features // 2``) informative columns, rotated at random;
    each sample is its centroid plus N(0, 1) per column. Classes are balanced (sizes differ by
    at most one); a fraction ``noise`` of the labels is then redrawn uniformly over the classes.
    """
    n_samples, n_features, n_informative, rng, dtype = _common(n_samples, n_features, n_informative, seed, dtype)
    n_classes = positive_int("n_classes", n_classes, minimum=2)
    if n_classes > n_samples:
        raise ValueError(f"n_classes ({n_classes}) must not exceed n_samples ({n_samples}).")
    if math.log2(n_classes) > n_informative:
        raise ValueError(f"n_classes ({n_classes}) must be at most 2**n_informative "
                         f"({2 ** n_informative}) so that every class has its own hypercube vertex.")
    class_sep = non_negative("class_sep", class_sep)
    noise = fraction("noise", noise, high_inclusive=True)

    vertices = set()
    while len(vertices) < n_classes:
        vertices.add(tuple(rng.integers(0, 2, size=n_informative)))
    centroids = class_sep * (2.0 * numpy.array(sorted(vertices)) - 1.0)
    rotation, _ = numpy.linalg.qr(rng.standard_normal((n_informative, n_informative)))
    y = rng.permutation(numpy.arange(n_samples) % n_classes)
    informative = (centroids[y] + rng.standard_normal((n_samples, n_informative))) @ rotation
    x = numpy.hstack([informative, rng.standard_normal((n_samples, n_features - n_informative))])
    relabel = rng.random(n_samples) < noise
    y[relabel] = rng.integers(0, n_classes, size=int(relabel.sum()))
    return x.astype(dtype), y.astype(numpy.int64)


def make_regression(n_samples=1000, n_features=20, n_informative=None, noise=0.1, seed=0, dtype="float32"):
    """``(x, y)`` with x ~ N(0, 1) and ``y = z @ w + 0.5 * sin(z @ v) + noise * N(0, 1)``.

    z is the first k = ``n_informative`` (default ``n_features // 2``) columns of x; w and v are
    drawn from N(0, 1/k), so the signal has variance near 1 whatever k. ``y`` has shape
    (n_samples,) and the same dtype as x.
    """
    n_samples, n_features, n_informative, rng, dtype = _common(n_samples, n_features, n_informative, seed, dtype)
    noise = non_negative("noise", noise)

    x = rng.standard_normal((n_samples, n_features))
    weights, frequencies = rng.standard_normal((2, n_informative)) / math.sqrt(n_informative)
    informative = x[:, :n_informative]
    y = informative @ weights + 0.5 * numpy.sin(informative @ frequencies) \
        + noise * rng.standard_normal(n_samples)
    return x.astype(dtype), y.astype(dtype)
