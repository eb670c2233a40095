import pytest
import requests


@pytest.fixture
def api(wsgihost_live_server):
    """A requests session for the server, with its base URL."""
    session = requests.Session()
    session.base = wsgihost_live_server.url("/notes/")
    return session
