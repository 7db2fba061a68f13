"""``python -m graphvae ...`` is the ``graphvae`` command."""

import sys

from graphvae.cli import main

if __name__ == "__main__":
    sys.exit(main())
