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


def classification_details(codes, probabilities, classes):
    """Accuracy, per-class precision = TP / predicted, recall = TP / actual, support, and the
    confusion matrix ``matrix[true][predicted]``."""
    predicted = numpy.asarray(probabilities).argmax(axis=1)
    k = len(classes)
    matrix = numpy.zeros((k, k), dtype=numpy.int64)
    numpy.add.at(matrix, (numpy.asarray(codes), predicted), 1)
    per_class = []
    for i, label in enumerate(classes):
        predicted_i, actual_i, correct = matrix[:, i].sum(), matrix[i].sum(), matrix[i, i]
        per_class.append({
            "class": label,
            "precision": float(correct / predicted_i) if predicted_i else None,
            "recall": float(correct / actual_i) if actual_i else None,
            "support": int(actual_i),
        })
    return {
        "accuracy": float(numpy.trace(matrix) / matrix.sum()),
        "correct": int(numpy.trace(matrix)),
        "per_class": per_class,
        "confusion_matrix": {"labels": list(classes), "matrix": matrix.tolist()},
    }
