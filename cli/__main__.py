"""``python -m xpann_cli``: the same as the ``xpann`` command."""

from .main import main

main()
