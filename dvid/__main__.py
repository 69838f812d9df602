"""``python -m dvid``: the dvid command line."""

from dvid.cli import main

if __name__ == "__main__":
    main()
