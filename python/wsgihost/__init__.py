"""wsgihost: an HTTP/1.1 server for WSGI applications, written in Rust.

Run it as ``wsgihost`` or ``python -m wsgihost`` (see ``wsgihost --help``); test an
application against it with the pytest plugin (the ``wsgihost_server`` fixture).
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("wsgihost")
except PackageNotFoundError:  # run from a source tree
    __version__ = "0+unknown"
