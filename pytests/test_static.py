"""Static files from --html: index pages, types, validators, ranges, HEAD and confinement."""
import os
import time

import requests

from conftest import raw_request


def test_root_is_index_html(server, site):
    response = requests.get(server.url + "/")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.content == (site / "html" / "index.html").read_bytes()
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert "Last-Modified" in response.headers and "Date" in response.headers
    assert response.headers["Server"] == "wsgihost"


def test_landing_page_links_to_both_scripts(server):
    page = requests.get(server.url + "/").text
    assert 'href="/ctime.py"' in page and 'href="/sayhello.py?name=Ann"' in page


def test_content_types_and_subdirectory_index(server, site):
    (site / "html" / "docs").mkdir()
    (site / "html" / "docs" / "index.html").write_text("<p>docs</p>")
    (site / "html" / "style.css").write_text("body{}")
    (site / "html" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (site / "html" / "data.json").write_text("{}")
    assert requests.get(server.url + "/docs/").text == "<p>docs</p>"
    redirect = requests.get(server.url + "/docs", allow_redirects=False)
    assert redirect.status_code == 301 and redirect.headers["Location"] == "/docs/"
    assert requests.get(server.url + "/style.css").headers["Content-Type"] == "text/css; charset=utf-8"
    assert requests.get(server.url + "/logo.png").headers["Content-Type"] == "image/png"
    assert requests.get(server.url + "/data.json").headers["Content-Type"].startswith("application/json")


def test_head_has_headers_only(server, site):
    response = requests.head(server.url + "/index.html")
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["Content-Length"]) == (site / "html" / "index.html").stat().st_size


def test_missing_file_gets_404_page(server):
    response = requests.get(server.url + "/nope.html")
    assert response.status_code == 404
    assert "404 Not Found" in response.text


def test_conditional_requests_get_304(server):
    first = requests.get(server.url + "/index.html")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert requests.get(server.url + "/index.html", headers={"If-None-Match": etag}).status_code == 304
    again = requests.get(server.url + "/index.html", headers={"If-Modified-Since": modified})
    assert again.status_code == 304 and again.content == b""
    changed = requests.get(server.url + "/index.html", headers={"If-None-Match": '"other"'})
    assert changed.status_code == 200


def test_byte_ranges(server, site):
    (site / "html" / "digits.txt").write_text("0123456789")
    part = requests.get(server.url + "/digits.txt", headers={"Range": "bytes=2-5"})
    assert part.status_code == 206
    assert part.content == b"2345"
    assert part.headers["Content-Range"] == "bytes 2-5/10"
    assert requests.get(server.url + "/digits.txt", headers={"Range": "bytes=-3"}).content == b"789"
    assert requests.get(server.url + "/digits.txt", headers={"Range": "bytes=20-"}).status_code == 416


def test_large_file_arrives_complete(server, site):
    data = os.urandom(3 * 1024 * 1024 + 17)
    (site / "html" / "blob.bin").write_bytes(data)
    assert requests.get(server.url + "/blob.bin").content == data


def test_no_escape_from_the_root(server, site):
    (site / "secret.txt").write_text("TOP SECRET")
    os.symlink(site / "secret.txt", site / "html" / "link.txt")
    attacks = [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/..%2fsecret.txt",
        "/docs/..%2f..%2fsecret.txt",
        "/..\\secret.txt",
        "/..%5csecret.txt",
        "/index.html%00.txt",
        "/link.txt",
        "/./../secret.txt",
    ]
    for path in attacks:
        answer = raw_request(server, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        status = int(answer.split(b" ", 2)[1])
        assert status in (400, 403, 404), (path, answer[:100])
        assert b"TOP SECRET" not in answer, path


def test_post_to_static_is_405(server):
    response = requests.post(server.url + "/index.html", data=b"x")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"


def test_small_files_served_from_memory_follow_every_change(server, site, tmp_path):
    """Small files are kept in memory; an edit of the same size, a replacement and a
    symlink to a file outside the root are all seen on the next request."""
    target = site / "html" / "note.txt"
    target.write_bytes(b"first version")
    time.sleep(2.1)  # files that changed in the last two seconds are not kept
    for _ in range(3):  # the later requests come from memory
        assert requests.get(server.url + "/note.txt").content == b"first version"
    target.write_bytes(b"other version")  # same size
    assert requests.get(server.url + "/note.txt").content == b"other version"
    replacement = site / "html" / "note.new"
    replacement.write_bytes(b"replaced by rename")
    os.replace(replacement, target)
    assert requests.get(server.url + "/note.txt").content == b"replaced by rename"
    secret = tmp_path / "outside-secret.txt"
    secret.write_bytes(b"outside secret")
    target.unlink()
    target.symlink_to(secret)
    response = requests.get(server.url + "/note.txt")
    assert response.status_code in (403, 404) and b"outside secret" not in response.content
    target.unlink()
    assert requests.get(server.url + "/note.txt").status_code == 404


def test_ranges_and_validators_of_a_file_in_memory(server, site):
    (site / "html" / "abc.txt").write_bytes(b"abcdefghij")
    time.sleep(2.1)  # settled: the next requests are answered from memory
    first = requests.get(server.url + "/abc.txt")
    again = requests.get(server.url + "/abc.txt")
    assert first.content == again.content == b"abcdefghij"
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Content-Type"] == "text/plain; charset=utf-8"
    part = requests.get(server.url + "/abc.txt", headers={"Range": "bytes=2-4"})
    assert (part.status_code, part.content) == (206, b"cde")
    assert part.headers["Content-Range"] == "bytes 2-4/10"
    cached = requests.get(server.url + "/abc.txt", headers={"If-None-Match": first.headers["ETag"]})
    assert cached.status_code == 304 and cached.content == b""
    head = requests.head(server.url + "/abc.txt")
    assert head.headers["Content-Length"] == "10" and head.content == b""
