"""A helper module imported by uses_helper.py from the scripts folder."""
GREETING = "hello from helper_mod"
