"""Start the mindsearch REST server: ``python serve.py [flags]``, the same as ``mindsearch serve [flags]``.

The app itself is ``mindsearch.api.create_app``; see the README for the routes.
"""

import sys

from mindsearch.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
