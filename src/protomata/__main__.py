"""``python -m protomata``: the same as the ``protomata`` command."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
