"""Start the mindsearch REST server: ``python serve.py [flags]``, the same as ``mindsearch serve [flags]``.

Both run ``mindsearch.api.serve``: the app of ``mindsearch.api.create_app`` on uvicorn under every
connection limit (header, body and keep-alive deadlines, connection and header-size caps). See the
README for the routes and docs/security.md for the guards.
"""

import sys

from mindsearch.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
