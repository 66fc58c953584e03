"""Name -> class tables: build objects from a name, an instance or a saved config."""


class Configurable:
    """An object rebuilt from ``get_config()`` (its constructor's arguments), shown by them too."""

    def get_config(self):
        return {}

    def __repr__(self):
        args = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Registry:
    """Builds objects of one kind from names; an unknown name is a ValueError listing the valid ones.
    ``classes`` (name -> class) is kept, not copied: names added to it later are found too."""

    def __init__(self, kind, classes, base):
        self.kind = kind
        self.classes = classes
        self.base = base

    def names(self):
        return sorted(self.classes)

    def get(self, identifier):
        if isinstance(identifier, self.base):
            return identifier
        if isinstance(identifier, str):
            key = identifier.strip().lower()
            if key in self.classes:
                return self.classes[key]()
        if isinstance(identifier, dict):
            return self.deserialize(identifier)
        raise ValueError(
            f"Unknown {self.kind} {identifier!r}; valid names are {', '.join(self.names())}."
        )

    def serialize(self, obj):
        """A JSON-ready dict: the class name and the constructor arguments."""
        return {"class_name": type(obj).__name__, "config": obj.get_config()}

    def deserialize(self, config):
        by_class = {cls.__name__: cls for cls in self.classes.values()}
        name = config.get("class_name") if isinstance(config, dict) else None
        if name not in by_class:
            raise ValueError(
                f"Unknown {self.kind} class {name!r}; valid classes are {', '.join(sorted(by_class))}."
            )
        return by_class[name](**config.get("config", {}))
