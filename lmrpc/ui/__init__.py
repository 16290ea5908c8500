"""The read-only web dashboard: static page (``static/``), its sign-in (``signin``) and the
routes serving them (``routes``, imported by the app only, so ``lmrpc ui`` stays light)."""
