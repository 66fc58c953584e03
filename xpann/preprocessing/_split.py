"""The seeded split of rows into training and validation, stratified by class when labels are given."""

import numpy

from ._cells import _label_key


def split_rows(n, validation_fraction, seed=None, labels=None):
    """Shuffled (train_indices, validation_indices) for ``n`` rows; with ``labels`` each class is
    split in the same proportion (stratified), keeping at least one training row per class."""
    rng = numpy.random.default_rng(seed)
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"The validation fraction must be in [0, 1), got {validation_fraction!r}.")
    if validation_fraction == 0:
        return rng.permutation(n), numpy.empty(0, dtype=numpy.int64)
    if labels is None:
        groups = [numpy.arange(n)]
    else:
        import pandas

        keys = pandas.Series(list(labels), dtype=object).map(_label_key)
        codes = pandas.factorize(keys, use_na_sentinel=False)[0]
        if len(codes) != n:
            raise ValueError(f"labels has {len(codes)} entries for {n} rows; they must match.")
        groups = [numpy.flatnonzero(codes == code) for code in range(codes.max() + 1)]
    train, validation = [], []
    for group in groups:
        group = rng.permutation(group)
        count = min(int(round(len(group) * validation_fraction)), len(group) - 1)
        validation.append(group[:count])
        train.append(group[count:])
    train, validation = numpy.concatenate(train), numpy.concatenate(validation)
    if validation.size == 0:
        if labels is not None and max(len(group) for group in groups) * validation_fraction < 1.5:
            single = sum(len(group) == 1 for group in groups)
            if single == len(groups):
                detail = f"each of the {len(groups)} classes has a single row, which must stay in training"
            elif single == 0:
                detail = f"each of the {len(groups)} classes is too small to give one"
            else:
                detail = (f"{single} of the {len(groups)} classes have a single row, which must stay in training, "
                          "and the others are too small to give one")
            raise ValueError(
                f"A validation fraction of {validation_fraction} leaves no validation rows out of {n}: {detail} "
                "(each class is split on its own); give 0 for no validation, or more rows per class."
            )
        raise ValueError(
            f"A validation fraction of {validation_fraction} leaves no validation rows out of {n}; "
            "give a larger fraction, or 0 for no validation."
        )
    return rng.permutation(train), rng.permutation(validation)
