"""Per-feature actors that own counters and serialize admission (DESIGN.md §2).

The package re-exports nothing: params models read ``actors.usage`` when they are defined,
and the command line defines them without Trio or storage (lmrpc.cli.lazy_imports), which
importing the supervisor here would bring.
"""
