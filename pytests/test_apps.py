"""Loading applications: spec forms, sys.path and environment flags, virtualenvs, the mount
table and --reload."""
import os
import subprocess
import time

import requests

from conftest import Server, free_port
from testsite import wait_for

HELLO = (
    "def {name}(environ, start_response):\n"
    "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
    "    return [b'{text} ' + environ['SCRIPT_NAME'].encode() + b'|' + environ['PATH_INFO'].encode()]\n"
)


def test_module_only_spec_finds_application_then_app(start_server, site):
    (site / "only_app.py").write_text(HELLO.format(name="app", text="app"))
    (site / "both.py").write_text(HELLO.format(name="application", text="application") + HELLO.format(name="app", text="app"))
    assert requests.get(start_server("only_app").url + "/").text.startswith("app ")
    assert requests.get(start_server("both").url + "/").text.startswith("application ")


def test_factory_spec_with_arguments(start_server, site):
    (site / "factory.py").write_text(
        "def create_app(greeting='default', punctuation='.'):\n"
        "    def app(environ, start_response):\n"
        "        start_response('200 OK', [])\n"
        "        return [(greeting + punctuation).encode()]\n"
        "    return app\n"
    )
    assert requests.get(start_server("factory:create_app()").url + "/").text == "default."
    server = start_server("factory:create_app('hi', punctuation='!')")
    assert requests.get(server.url + "/").text == "hi!"


def test_chdir_pythonpath_and_env(start_server, tmp_path):
    project, libs = tmp_path / "project", tmp_path / "libs"
    project.mkdir()
    libs.mkdir()
    (libs / "shared_lib.py").write_text("VALUE = 'from pythonpath'\n")
    (project / "main.py").write_text(
        "import os, shared_lib\n"
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [f\"{shared_lib.VALUE}|{os.environ['GREETING']}|{os.getcwd()}\".encode()]\n"
    )
    server = start_server("--chdir", str(project), "--pythonpath", str(libs), "--env", "GREETING=hi=there", "main:application")
    assert requests.get(server.url + "/").text == f"from pythonpath|hi=there|{project}"


def test_mounts_split_script_name_and_serve_static_rows(start_server, site):
    (site / "api.py").write_text(HELLO.format(name="app", text="api"))
    (site / "root.py").write_text(HELLO.format(name="app", text="root"))
    (site / "assets").mkdir()
    (site / "assets" / "site.css").write_text("body{}")
    server = start_server("--mount", "/api=api:app", "--static", "/assets=assets", "root:app")
    assert requests.get(server.url + "/api/users/1").text == "api /api|/users/1"
    assert requests.get(server.url + "/api").text == "api /api|"
    assert requests.get(server.url + "/apiary").text == "root |/apiary"
    assert requests.get(server.url + "/other").text == "root |/other"
    css = requests.get(server.url + "/assets/site.css")
    assert css.text == "body{}" and css.headers["Content-Type"].startswith("text/css")
    assert requests.get(server.url + "/assets/missing.css").status_code == 404


def test_html_and_scripts_beside_an_app_when_given(start_server, site):
    (site / "root.py").write_text(HELLO.format(name="app", text="root"))
    server = start_server("--html", "html", "--scripts", "wsgipython", "root:app")
    assert "wsgihost is running" in requests.get(server.url + "/").text
    assert "Hello, Ann!" in requests.get(server.url + "/sayhello.py?name=Ann").text
    assert requests.get(server.url + "/not-a-file").text == "root |/not-a-file"


def test_virtualenv_packages_and_prefix(start_server, site, tmp_path, via, wheel):
    venv = tmp_path / "venv"
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    package = next((venv / "lib").glob("python3.*")) / "site-packages"
    (package / "only_in_venv.py").write_text("MARK = 'venv package'\n")
    (package / "extra.pth").write_text(str(tmp_path / "pth_dir") + "\n")
    (tmp_path / "pth_dir").mkdir()
    (tmp_path / "pth_dir" / "via_pth.py").write_text("MARK = 'pth'\n")
    (site / "venv_app.py").write_text(
        "import sys, only_in_venv, via_pth\n"
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [f'{only_in_venv.MARK}|{via_pth.MARK}|{sys.prefix}|{sys.executable}'.encode()]\n"
    )
    if via == "binary":  # the binary serves any venv of its Python version
        server = start_server("--venv", str(venv), "venv_app")
    else:  # the pip-installed command serves the venv it was installed into
        subprocess.run([venv / "bin" / "pip", "install", "-q", "--no-deps", str(wheel)], check=True)
        server = Server([str(venv / "bin" / "wsgihost")], site, ["venv_app"])
    try:
        marks, prefix, executable = requests.get(server.url + "/").text.rsplit("|", 2)
        assert marks == "venv package|pth" and prefix == str(venv)
        assert executable in (f"{venv}/bin/python", f"{venv}/bin/python3")
    finally:
        server.stop()


def test_virtualenv_of_another_python_is_refused(command, via, tmp_path):
    venv = tmp_path / "venv312"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.12.1\n")
    result = subprocess.run([*command, "--bind", f"127.0.0.1:{free_port()}", "--venv", str(venv)],
                            capture_output=True, text=True, timeout=30)
    if via == "binary":  # the embedded Python must match the venv's
        assert result.returncode == 1
        assert "3.12.1" in result.stderr and "3.11" in result.stderr
    else:  # the pip-installed command runs only in its own environment
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and "runs there" in result.stderr


def test_reload_restarts_workers_and_survives_broken_code(start_server, site):
    module = site / "live.py"
    module.write_text(HELLO.format(name="app", text="v1"))
    server = start_server("--reload", "live:app")
    assert requests.get(server.url + "/").text.startswith("v1")
    time.sleep(1.1)
    module.write_text("this is not python\n")
    assert wait_for(lambda: "does not load" in server.log())
    assert requests.get(server.url + "/").text.startswith("v1")  # old workers keep serving
    module.write_text(HELLO.format(name="app", text="v2"))
    os.utime(module, (time.time() + 2, time.time() + 2))
    assert wait_for(lambda: requests.get(server.url + "/").text.startswith("v2"), timeout=15)
