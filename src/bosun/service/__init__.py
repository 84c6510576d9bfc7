"""The business plane: the REST API and its workers, webhooks and email in.

`compose.py` assembles store -> runtime -> gateway -> worker -> app; the command line that
starts it is `bosun.cli`."""
