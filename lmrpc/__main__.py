"""``python -m lmrpc`` runs the console script."""

from lmrpc.console import main

main()
