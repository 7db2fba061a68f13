"""``python -m graphvae ...`` is the ``graphvae`` command."""

import sys

from graphvae.cli import entry

if __name__ == "__main__":
    sys.exit(entry())
