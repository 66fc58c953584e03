"""Scores in the user's terms: metrics in the target's units, per-class precision and recall, and
the confusion matrix (rows: true class, columns: predicted class)."""

import numpy


def in_target_units(results, encoder):
    """``model.evaluate`` results with mae, rmse (x scale) and mse (x scale^2) of a standardised
    target put back in its units; r2 is the same on either scale; the loss stays what training
    minimised."""
    scaled = dict(results)
    if encoder.task != "regression":
        return scaled
    for name in ("mae", "rmse"):
        if name in scaled:
            scaled[name] = results[name] * encoder.scale
    if "mse" in scaled:
        scaled["mse"] = results["mse"] * encoder.scale ** 2
    return scaled


MAX_LISTED_CLASSES = 50  # per-class rows beyond these (by support) are summed into one
MAX_MATRIX_CLASSES = 30  # confusion-matrix rows and columns beyond these (by support) likewise
OTHER = "(other classes)"


def classification_details(codes, probabilities, classes):
    """Accuracy, per-class precision = TP / predicted, recall = TP / actual and support, and the
    confusion matrix ``matrix[true][predicted]``; with many classes, the most frequent ones (by
    support) and one "(other classes)" entry for the rest, so memory stays O(rows + classes)."""
    codes = numpy.asarray(codes)
    predicted = numpy.asarray(probabilities).argmax(axis=1)
    k = len(classes)
    hits = codes == predicted
    actual = numpy.bincount(codes, minlength=k)
    guessed = numpy.bincount(predicted, minlength=k)
    correct = numpy.bincount(codes[hits], minlength=k)
    order = numpy.argsort(-actual, kind="stable")
    listed = order if k <= MAX_LISTED_CLASSES else order[:MAX_LISTED_CLASSES]
    per_class = [{"class": classes[i],
                  "precision": float(correct[i] / guessed[i]) if guessed[i] else None,
                  "recall": float(correct[i] / actual[i]) if actual[i] else None,
                  "support": int(actual[i])} for i in (range(k) if k <= MAX_LISTED_CLASSES else listed)]
    if k > MAX_LISTED_CLASSES:
        rest = order[MAX_LISTED_CLASSES:]
        per_class.append({"class": f"{OTHER[:-1]}: {len(rest):,})", "precision": None, "recall": None,
                          "support": int(actual[rest].sum())})
    if k <= MAX_MATRIX_CLASSES:
        shown, labels = numpy.arange(k), list(classes)
    else:
        shown = numpy.sort(order[:MAX_MATRIX_CLASSES])
        labels = [classes[i] for i in shown] + [OTHER]
    position = numpy.full(k, len(shown), dtype=numpy.int64)
    position[shown] = numpy.arange(len(shown))
    size = len(labels)
    matrix = numpy.bincount(position[codes] * size + position[predicted], minlength=size * size).reshape(size, size)
    return {
        "accuracy": float(hits.mean()),
        "correct": int(hits.sum()),
        "per_class": per_class,
        "confusion_matrix": {"labels": labels, "matrix": matrix.tolist()},
    }
