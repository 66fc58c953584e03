"""Stored configurations: the newest version this xpann reads, and the check a stored one passes first."""

CONFIG_VERSION = 5  # 2 added date columns, 3 coded columns, 4 missing indicators, 5 smooth clipping; without them: 1


def _check_version(config, what):
    if not isinstance(config, dict):
        raise ValueError(f"The stored {what} is damaged (not a JSON object).")
    version = config.get("version")
    if not isinstance(version, int) or version > CONFIG_VERSION:
        raise ValueError(
            f"The stored {what} has version {version!r}; this xpann reads version {CONFIG_VERSION} "
            "and older. Upgrade xpann."
        )
