"""The command line: help, bad flags (exit 2, one line), port in use (exit 1)."""
import socket
import subprocess

from conftest import free_port


def run(command, *args, cwd=None):
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=30, cwd=cwd)


def test_help_lists_every_flag_with_its_default(command):
    result = run(command, "--help")
    assert result.returncode == 0
    for flag, default in [
        ("--bind", "127.0.0.1:8000"),
        ("--html", "html"),
        ("--scripts", "wsgipython"),
        ("--threads", "8"),
        ("--max-body", "1073741824"),
        ("--header-timeout", "10"),
        ("--keep-alive", "5"),
    ]:
        assert flag in result.stdout
        assert f"[default: {default}]" in result.stdout


def test_unknown_flag_is_one_line_and_exit_2(command):
    result = run(command, "--no-such-flag")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "--no-such-flag" in lines[0]


def test_bad_value_names_the_flag(command):
    for args, named in [(["--threads", "zero"], "--threads"), (["--bind", "nowhere:port"], "--bind"), (["--keep-alive", "-1"], "--keep-alive"),
                         (["--health-path", "livez"], "--health-path"), (["--shutdown-delay", "soon"], "--shutdown-delay")]:
        result = run(command, *args)
        assert result.returncode == 2, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and named in lines[0], result.stderr


def test_bad_app_spec_exit_2(command):
    result = run(command, "not-an-app-spec")
    assert result.returncode == 2
    assert "module:callable" in result.stderr


def test_port_in_use_is_one_line_and_exit_1(command):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(command, "--bind", f"127.0.0.1:{port}")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "address already in use" in lines[0] and str(port) in lines[0]


def test_app_import_error_exits_1_with_reason(command, tmp_path):
    result = run(command, "--bind", f"127.0.0.1:{free_port()}", "missing_module:app", cwd=tmp_path)
    assert result.returncode == 1
    assert "missing_module" in result.stderr and "ModuleNotFoundError" in result.stderr


def test_app_mounted_at_root(start_server, site):
    (site / "myapp.py").write_text(
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [('app:' + environ['SCRIPT_NAME'] + '|' + environ['PATH_INFO']).encode()]\n"
    )
    import requests

    server = start_server("myapp:application")
    response = requests.get(server.url + "/some/path")
    assert response.text == "app:|/some/path"
    # Without --html the app also answers for "/" (no static files in front of it).
    assert requests.get(server.url + "/").text == "app:|/"


def test_sigint_and_sigterm_exit_cleanly(start_server):
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        server = start_server()
        assert server.stop(sig) == 0
        assert "received, stopping gracefully" in server.log()
