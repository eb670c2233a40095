"""Drop-in scripts from --scripts: routing, SCRIPT_NAME/PATH_INFO, reload, load errors."""
import os
import time

import requests

from conftest import raw_request


def test_ctime_returns_current_time_as_text(server):
    response = requests.get(server.url + "/ctime.py")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain"
    assert abs(time.mktime(time.strptime(response.text)) - time.time()) < 5


def test_str_result_is_utf8_with_one_warning(server, site):
    (site / "wsgipython" / "unicode_str.py").write_text(
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain; charset=utf-8')])\n"
        "    return 'caf\\u00e9 \\u2603'\n"
    )
    for _ in range(3):
        response = requests.get(server.url + "/unicode_str.py")
        assert response.content == "café ☃".encode()
        assert response.headers["Content-Length"] == str(len("café ☃".encode()))
    requests.get(server.url + "/ctime.py")
    log = server.log()
    assert log.count("unicode_str.py: returned a str") == 1
    assert log.count("ctime.py: returned a str") == 1


def test_sayhello_greets_and_escapes(server):
    assert "Hello, World!" in requests.get(server.url + "/sayhello.py").text
    assert "Hello, Ann!" in requests.get(server.url + "/sayhello.py?name=Ann").text
    evil = requests.get(server.url + "/sayhello.py", params={"name": "<script>x</script>"}).text
    assert "<script>" not in evil and "&lt;script&gt;" in evil


def test_script_name_and_path_info(server):
    env = requests.get(server.url + "/env_echo.py/x/y%20z?q=1").json()
    assert env["SCRIPT_NAME"] == "/env_echo.py"
    assert env["PATH_INFO"] == "/x/y z"
    assert env["QUERY_STRING"] == "q=1"
    bare = requests.get(server.url + "/env_echo.py").json()
    assert bare["SCRIPT_NAME"] == "/env_echo.py" and bare["PATH_INFO"] == ""


def test_helper_module_beside_script_is_importable(server):
    assert requests.get(server.url + "/uses_helper.py").text == "hello from helper_mod"


def test_edit_and_reload_runs_new_code(server, site):
    script = site / "wsgipython" / "edited.py"
    source = (
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'version %d']\n"
    )
    script.write_text(source % 1)
    assert requests.get(server.url + "/edited.py").text == "version 1"
    script.write_text(source % 2)
    # Make sure the modification time differs even on a coarse-grained file system.
    stamp = time.time() + 2
    os.utime(script, (stamp, stamp))
    assert requests.get(server.url + "/edited.py").text == "version 2"


def test_missing_script_is_404(server):
    assert requests.get(server.url + "/no_such_script.py").status_code == 404


def test_load_errors_are_500_with_traceback_in_log(server):
    response = requests.get(server.url + "/syntax_error.py")
    assert response.status_code == 500
    assert "SyntaxError" not in response.text  # tracebacks only on the page with --debug
    assert "SyntaxError" in server.log()
    response = requests.get(server.url + "/no_application.py")
    assert response.status_code == 500
    assert "defines no 'application'" in server.log()
    (server.workdir / "wsgipython" / "import_error.py").write_text("import no_such_module_xyz\n")
    assert requests.get(server.url + "/import_error.py").status_code == 500
    assert "ModuleNotFoundError" in server.log()


def test_debug_shows_traceback_on_page(start_server):
    server = start_server("--debug")
    response = requests.get(server.url + "/syntax_error.py")
    assert response.status_code == 500 and "SyntaxError" in response.text


def test_only_files_directly_in_the_folder(server, site):
    (site / "outside.py").write_text(
        "def application(e, s):\n    s('200 OK', [])\n    return [b'OUTSIDE']\n"
    )
    os.symlink(site / "outside.py", site / "wsgipython" / "linked.py")
    (site / "wsgipython" / "sub").mkdir()
    (site / "wsgipython" / "sub" / "inner.py").write_text((site / "outside.py").read_text())
    for path in ["/..%2foutside.py", "/%2e%2e/outside.py", "/sub%2finner.py", "/linked.py", "/.py", "/..\\outside.py"]:
        answer = raw_request(server, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        assert b"OUTSIDE" not in answer, path
        assert int(answer.split(b" ", 2)[1]) in (400, 403, 404), path
