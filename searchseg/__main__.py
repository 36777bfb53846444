"""``python -m searchseg COMMAND``: the same as the ``searchseg`` command."""

from searchseg.cli import main

if __name__ == "__main__":
    main()
