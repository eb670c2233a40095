"""The example Flask app, unchanged, under wsgihost: every route, in both layouts."""
import hashlib
import os

import pytest
import requests

from frameworks import LAYOUTS, flask_args


@pytest.fixture(params=LAYOUTS, ids=["1x8", "2x4"])
def flask_server(request, start_server, tmp_path):
    return start_server(*request.param, *flask_args(tmp_path / "data"))


def test_form_page_and_post(flask_server):
    page = requests.get(flask_server.url + "/")
    assert page.status_code == 200 and "<form" in page.text
    greeted = requests.post(flask_server.url + "/", data={"name": "Ann <b>"})
    assert "Hello, Ann &lt;b&gt;!" in greeted.text


def test_session_cookie_counter_persists(flask_server):
    with requests.Session() as session:
        counts = [session.get(flask_server.url + "/counter").json()["visits"] for _ in range(4)]
    assert counts == [1, 2, 3, 4]
    assert requests.get(flask_server.url + "/counter").json()["visits"] == 1


def test_json_api(flask_server):
    assert requests.get(flask_server.url + "/api/items").json() == {"items": []}
    created = requests.post(flask_server.url + "/api/items", json={"name": "first"})
    assert created.status_code == 201 and created.json()["name"] == "first"
    assert requests.post(flask_server.url + "/api/items", json={}).status_code == 400
    assert [i["name"] for i in requests.get(flask_server.url + "/api/items").json()["items"]] == ["first"]


@pytest.mark.parametrize("size", [1 << 20, 50 << 20], ids=["1MiB", "50MiB"])
def test_upload_and_download_are_byte_exact(flask_server, size):
    data = os.urandom(size)
    uploaded = requests.post(flask_server.url + "/upload", files={"file": ("blob.bin", data)})
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json() == {"name": "blob.bin", "size": size, "sha256": hashlib.sha256(data).hexdigest()}
    downloaded = requests.get(flask_server.url + "/files/blob.bin")
    assert downloaded.status_code == 200
    assert "attachment" in downloaded.headers["Content-Disposition"]
    assert downloaded.content == data


def test_chunked_post_reaches_get_data(flask_server):
    parts = [os.urandom(1000) for _ in range(50)]
    response = requests.post(flask_server.url + "/echo", data=iter(parts))  # a generator: chunked
    whole = b"".join(parts)
    assert response.json() == {"size": len(whole), "sha256": hashlib.sha256(whole).hexdigest()}


def test_streaming_route(flask_server):
    response = requests.get(flask_server.url + "/stream", stream=True)
    lines = [line for line in response.iter_lines()]
    assert lines == [b"line %d" % i for i in range(5)]
    assert response.headers.get("Transfer-Encoding") == "chunked"


def test_error_handlers(flask_server):
    missing = requests.get(flask_server.url + "/nope")
    assert missing.status_code == 404 and "Nothing here." in missing.text
    broken = requests.get(flask_server.url + "/boom")
    assert broken.status_code == 500 and "it has been logged" in broken.text
    assert "deliberate failure" in flask_server.log()
