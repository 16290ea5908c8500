"""``python -m lmrpc`` runs the console script."""

from lmrpc.cli import main

main()
