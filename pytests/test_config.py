"""Configuration: TOML file, WSGIHOST_* environment, precedence, --print-config, and the
README's generated reference."""
import os
import subprocess

import requests

from conftest import REPO, free_port


def check(command, *args, cwd=None, env=None):
    return subprocess.run([*command, *args, "--print-config"], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=30)


def setting(output, key):
    line = next(l for l in output.splitlines() if l.startswith(f"{key} = "))
    value, _, source = line[len(key) + 3:].partition("  # ")
    return value, source


def test_precedence_command_line_env_file_default(command, tmp_path):
    (tmp_path / "wsgihost.toml").write_text('workers = 2\nthreads = 3\nmax-requests = 100\nstatic = ["/s=html"]\n')
    result = check(command, "--workers", "4", cwd=tmp_path, env={"WSGIHOST_THREADS": "5"})
    assert result.returncode == 0, result.stderr
    assert setting(result.stdout, "workers") == ('"4"', "command line")
    assert setting(result.stdout, "threads") == ('"5"', "environment WSGIHOST_THREADS")
    assert setting(result.stdout, "max-requests") == ('"100"', "wsgihost.toml")
    assert setting(result.stdout, "static") == ('["/s=html"]', "wsgihost.toml")
    assert setting(result.stdout, "keep-alive") == ('"5"', "default")


def test_explicit_config_file_and_unknown_key_line(command, tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('# comment\nkeep_alive = 7.5\ndebug = true\napp = "mod:app"\n')
    result = check(command, "--config", str(good))
    assert setting(result.stdout, "keep-alive")[0] == '"7.5"'
    assert setting(result.stdout, "debug")[0] == "true"
    assert setting(result.stdout, "app")[0] == '"mod:app"'
    bad = tmp_path / "bad.toml"
    bad.write_text("workers = 1\n\nwokers = 2\n")
    result = check(command, "--config", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"wsgihost: {bad}:3: unknown option 'wokers' (see wsgihost --help)"]
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("workers = [true]\n")
    assert check(command, "--config", str(wrong)).returncode == 2


def test_invalid_values_from_env_and_file_are_named(command, tmp_path):
    result = check(command, env={"WSGIHOST_WORKERS": "many"})
    assert result.returncode == 2 and "--workers" in result.stderr
    (tmp_path / "wsgihost.toml").write_text('bind = "nowhere:port"\n')
    result = check(command, cwd=tmp_path)
    assert result.returncode == 2 and "--bind" in result.stderr


def test_file_settings_really_apply(command, site):
    port = free_port()
    (site / "wsgihost.toml").write_text(f'bind = "127.0.0.1:{port}"\naccess-log = "off"\n')
    process = subprocess.Popen([*command], cwd=site, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        import time

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                assert "Hello, file!" in requests.get(f"http://127.0.0.1:{port}/sayhello.py?name=file", timeout=1).text
                break
            except requests.RequestException:
                time.sleep(0.05)
        else:
            raise AssertionError("server from wsgihost.toml did not answer")
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0].decode()
    assert "GET /sayhello.py" not in output  # access-log = "off" from the file


def test_readme_reference_is_generated_from_the_flags(command):
    generated = subprocess.run([*command, "--config-reference"], capture_output=True, text=True, check=True).stdout
    readme = (REPO / "README.md").read_text()
    embedded = readme.split("<!-- config-reference:start -->\n", 1)[1].split("<!-- config-reference:end -->", 1)[0]
    assert embedded == generated, "README's reference is stale: paste `wsgihost --config-reference` into it"
