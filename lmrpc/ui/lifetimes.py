"""How long a dashboard sign-in lives: its one-time code and the session it opens. A module
of its own so that ``lmrpc ui --help`` (and ``lmrpc --help``) can show them without
importing the sign-in store."""

CODE_TTL_S = 300
SESSION_TTL_S = 8 * 3600
