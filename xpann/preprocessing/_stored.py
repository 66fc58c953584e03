"""The preprocessing inside the model file: ``attach`` before ``model.save``, ``from_model`` after loading."""

from ._config import _check_version
from ._features import TabularPreprocessor
from ._target import TargetEncoder

METADATA_KEY = "tabular"


def attach(model, preprocessor, target_encoder, **extra):
    """Store both (and any JSON-ready ``extra`` facts) in ``model.metadata`` for ``model.save``."""
    features = preprocessor.to_config()
    model.metadata[METADATA_KEY] = {"version": features["version"], "features": features,
                                    "target": target_encoder.to_config(), **extra}


def from_model(model):
    """(TabularPreprocessor, TargetEncoder, the stored dict) from a model saved after ``attach``."""
    stored = (model.metadata or {}).get(METADATA_KEY)
    if stored is None:
        raise ValueError("The model holds no tabular preprocessing (it was not trained by `xpann train` "
                         "or given one with xpann.preprocessing.attach).")
    _check_version(stored, "tabular preprocessing")
    if not isinstance(stored.get("features"), dict) or not isinstance(stored.get("target"), dict):
        raise ValueError("The stored tabular preprocessing is damaged (features or target missing).")
    return (TabularPreprocessor.from_config(stored["features"]), TargetEncoder.from_config(stored["target"]),
            stored)
