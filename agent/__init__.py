"""The cluster side of lmrpc (AGENT.md): reads license servers and Slurm, reports to lmrpc,
keeps a license-only reservation, books and releases licenses for jobs.

It talks to the service only through JSON-RPC and never imports ``actors``, ``storage`` or
``lmrpc.methods``.
"""
