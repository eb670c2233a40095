"""The pytest plugin in a user's test suite (run in a pytester sandbox, as its own pytest
process, against the server command under test): scopes, the working directory, each
server line under the test that caused it, server-side errors failing their test, and
configuration errors said once."""
import os
import re
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

HELLO_APP = '''
import logging

def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/boom":
        raise ZeroDivisionError("the app divided by zero")
    if path == "/logged":
        logging.getLogger("shop.payments").error("card declined for order 7")
    if path == "/exit":
        import os
        os._exit(3)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [path.encode()]
'''


@pytest.fixture
def project(pytester, command):
    """A user project: app.py at its root, a pytest.ini that points the plugin at it and at
    the server command under test (binary or pip)."""
    pytester.makefile(".py", app=HELLO_APP)
    pytester.makefile(".ini", pytest=f"""
        [pytest]
        wsgihost_app = app:application
        wsgihost_args = --venv {sys.prefix}
        wsgihost_command = {" ".join(command)}
    """)
    return pytester


def run(pytester, *args):
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=120)


def leftovers(root):
    """Server processes started in `root` still running after its pytest ended."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if cwd.startswith(str(root)) and b"wsgihost" in cmdline:
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


def assert_stopped_once(result, project, said):
    """The session ended with a usage error (exit 4) that said `said` once and left no
    server running; returns all it printed."""
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    assert out.count(said) == 1, out
    assert leftovers(project.path) == []
    return out


def test_one_session_server_serves_session_fixtures_and_every_test(project):
    project.makeconftest("""
        import pytest, requests

        @pytest.fixture(scope="session")
        def client(wsgihost_server):
            session = requests.Session()
            session.base = wsgihost_server.url("")
            return session
    """)
    project.makepyfile(test_shop="""
        import requests

        PIDS = set()

        def test_one(client, wsgihost_server):
            assert client.get(client.base + "/one").text == "/one"
            PIDS.add(wsgihost_server.pid)

        def test_two(client, wsgihost_server):
            assert client.get(client.base + "/two").text == "/two"
            PIDS.add(wsgihost_server.pid)

        def test_the_same_server_served_both():
            assert len(PIDS) == 1
    """)
    result = run(project)
    result.assert_outcomes(passed=3)
    assert leftovers(project.path) == []


def test_the_server_runs_in_the_rootdir_when_pytest_starts_in_a_subdirectory(project, monkeypatch):
    tests = project.mkdir("tests")
    (tests / "test_from_below.py").write_text(textwrap.dedent("""
        import os, requests

        def test_app_imported_from_the_rootdir(wsgihost_server):
            assert requests.get(wsgihost_server.url("/here")).text == "/here"
            assert os.readlink(f"/proc/{wsgihost_server.pid}/cwd") == str(wsgihost_server_root())

        def wsgihost_server_root():
            from pathlib import Path
            return Path(__file__).resolve().parent.parent
    """))
    monkeypatch.chdir(tests)
    result = run(project)
    result.assert_outcomes(passed=1)


def test_wsgihost_chdir_chooses_the_working_directory(project):
    src = project.mkdir("src")
    (src / "app.py").write_text(HELLO_APP.replace("[path.encode()]", "[b'from src' + path.encode()]"))
    ini = (project.path / "pytest.ini").read_text()
    (project.path / "pytest.ini").write_text(ini + "\nwsgihost_chdir = src\n")
    project.makepyfile(test_src="""
        import requests

        def test_served_from_src(wsgihost_server):
            assert requests.get(wsgihost_server.url("/x")).text == "from src/x"
    """)
    run(project).assert_outcomes(passed=1)


def test_a_failing_test_shows_the_server_lines_of_its_own_span_only(project):
    project.makepyfile(test_lines="""
        import requests

        def test_first(wsgihost_server):
            for _ in range(3):
                assert requests.get(wsgihost_server.url("/first-test")).status_code == 200

        def test_second_fails_right_after_its_request(wsgihost_server):
            requests.get(wsgihost_server.url("/second-test"))
            assert False, "fails at once"

        def test_third(wsgihost_server):
            assert requests.get(wsgihost_server.url("/third-test")).status_code == 200
    """)
    result = run(project)
    result.assert_outcomes(passed=2, failed=1)
    report = result.stdout.str()
    section = report[report.index("wsgihost log (http://127.0.0.1:"):]
    section = section[:section.index("short test summary")]
    # The request made just before the failure is there, though the access log's writer
    # sweeps only every 0.1 s: the plugin waited for the worker's mark.
    assert '"GET /second-test HTTP/1.1" 200' in section
    assert "/first-test" not in section and "/third-test" not in section
    assert "log mark" not in section


def test_server_side_errors_fail_the_test_that_caused_them(project):
    project.makepyfile(test_errors="""
        import pytest, requests

        def test_a_500_with_a_traceback(wsgihost_server):
            assert requests.get(wsgihost_server.url("/boom")).status_code == 500

        def test_an_error_the_app_logged(wsgihost_server):
            assert requests.get(wsgihost_server.url("/logged")).status_code == 200

        @pytest.mark.wsgihost_allow_errors
        def test_an_expected_500(wsgihost_server):
            assert requests.get(wsgihost_server.url("/boom")).status_code == 500

        def test_a_quiet_one_after_them(wsgihost_server):
            assert requests.get(wsgihost_server.url("/fine")).status_code == 200
    """)
    result = run(project)
    result.assert_outcomes(passed=2, failed=2)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*FAILED test_errors.py::test_a_500_with_a_traceback*",
        "*FAILED test_errors.py::test_an_error_the_app_logged*",
    ])
    assert "ZeroDivisionError: the app divided by zero" in out
    assert "ERROR through shop.payments: card declined for order 7" in out
    # --wsgihost-allow-errors turns it off for a run.
    run(project, "--wsgihost-allow-errors").assert_outcomes(passed=4)


DJANGO_SETTINGS = '''
SECRET_KEY = "only-for-this-test"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "djangoapp"
INSTALLED_APPS = []
MIDDLEWARE = []
'''

DJANGO_APP = '''
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djangosettings")
from django.core.wsgi import get_wsgi_application
from django.http import HttpResponse
from django.urls import path

def ok(request):
    return HttpResponse("ok")

def broken(request):
    raise KeyError("missing basket")

urlpatterns = [path("ok", ok), path("broken", broken)]
application = get_wsgi_application()
'''


def test_a_django_500_under_debug_false_fails_its_test(project):
    project.makepyfile(djangosettings=DJANGO_SETTINGS, djangoapp=DJANGO_APP)
    ini = (project.path / "pytest.ini").read_text()
    (project.path / "pytest.ini").write_text(ini.replace("app:application", "djangoapp:application"))
    project.makepyfile(test_django="""
        import requests

        def test_broken_view(wsgihost_server):
            response = requests.get(wsgihost_server.url("/broken"))
            assert response.status_code == 500
            assert "Traceback" not in response.text  # DEBUG=False: nothing in the page

        def test_ok_view(wsgihost_server):
            assert requests.get(wsgihost_server.url("/ok")).text == "ok"
    """)
    result = run(project)
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "ERROR through django.request: Internal Server Error: /broken" in out
    assert "KeyError: 'missing basket'" in out


def test_the_projects_gunicorn_conf_py_still_applies(project):
    (project.path / "gunicorn.conf.py").write_text(textwrap.dedent("""
        workers = 2

        def post_worker_init(worker):
            worker.log.info("project hook ran in %s", worker.pid)
    """))
    project.makepyfile(test_conf="""
        import requests

        def test_two_workers_and_the_hook(wsgihost_server):
            assert requests.get(wsgihost_server.url("/")).status_code == 200
            log = wsgihost_server.log()
            assert "2 workers" in log
            assert log.count("project hook ran in") == 2
    """)
    run(project).assert_outcomes(passed=1)


def test_a_wrong_app_path_is_one_error_and_the_session_stops(project):
    ini = (project.path / "pytest.ini").read_text()
    (project.path / "pytest.ini").write_text(ini.replace("app:application", "nosuchmodule:app"))
    project.makepyfile(test_many="""
        import pytest

        @pytest.mark.parametrize("n", range(5))
        def test_each(wsgihost_server, n):
            pass
    """)
    out = assert_stopped_once(run(project), project, "did not start")
    assert "nosuchmodule" in out
    assert "while setting up test_many.py::test_each[0]" in out


def test_an_unset_app_names_the_ini_option_unless_scripts_only(project):
    ini = (project.path / "pytest.ini").read_text()
    (project.path / "pytest.ini").write_text(ini.replace("wsgihost_app = app:application\n", ""))
    project.makepyfile(test_scripts="""
        import requests

        def test_script(wsgihost_server):
            assert requests.get(wsgihost_server.url("/hello.py")).text == "a drop-in script"

        def test_another(wsgihost_server):
            pass
    """)
    out = assert_stopped_once(run(project), project, "Set wsgihost_app = module:callable")
    assert "wsgihost_scripts_only = true" in out

    (project.path / "wsgipython").mkdir()
    (project.path / "wsgipython" / "hello.py").write_text(textwrap.dedent("""
        def application(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"a drop-in script"]
    """))
    (project.path / "html").mkdir()
    (project.path / "pytest.ini").write_text(
        (project.path / "pytest.ini").read_text() + "\nwsgihost_scripts_only = true\n")
    run(project).assert_outcomes(passed=2)


def test_the_function_server_is_the_session_one_unless_its_marker_changes_settings(project):
    project.makepyfile(test_scopes="""
        import pytest, requests

        SESSION = []

        def test_session(wsgihost_server):
            SESSION.append(wsgihost_server.pid)

        def test_unmarked_reuses_it(wsgihost_test_server):
            assert wsgihost_test_server.pid == SESSION[0]

        @pytest.mark.wsgihost(args=["--threads", "1"])
        def test_marked_gets_its_own(wsgihost_test_server):
            assert wsgihost_test_server.pid != SESSION[0]
            assert "x 1 thread" in wsgihost_test_server.log()
            assert requests.get(wsgihost_test_server.url("/own")).text == "/own"

        @pytest.mark.wsgihost(env={"SHOP_MODE": "test"}, args=["--threads", "2"])
        def test_marked_with_env(wsgihost_test_server):
            assert wsgihost_test_server.pid != SESSION[0]
            environ = open(f"/proc/{wsgihost_test_server.pid}/environ", "rb").read()
            assert b"SHOP_MODE=test" in environ.split(b"\\0")
    """)
    run(project).assert_outcomes(passed=4)


@pytest.mark.parametrize("app_source, said", [
    ("raise RuntimeError('the settings are broken')\n", "RuntimeError: the settings are broken"),
    ("import time\ntime.sleep(600)\n", "did not serve within 3.0 s"),
], ids=["crashes", "hangs"])
def test_an_app_that_crashes_or_hangs_at_import_is_one_error_naming_the_test(
        project, app_source, said):
    (project.path / "app.py").write_text(app_source)
    with open(project.path / "pytest.ini", "a") as ini:
        ini.write("\nwsgihost_start_timeout = 3\n")
    project.makepyfile(test_boot="""
        def test_a(wsgihost_server):
            pass

        def test_b(wsgihost_server):
            pass
    """)
    out = assert_stopped_once(run(project), project, "did not start")
    assert said in out
    assert re.search(r"while setting up test_boot\.py::test_a\b", out), out


def test_a_server_command_that_does_not_exist_is_one_error(project):
    ini = (project.path / "pytest.ini").read_text()
    (project.path / "pytest.ini").write_text(
        re.sub(r"wsgihost_command = .*", "wsgihost_command = /nonexistent/wsgihost", ini))
    project.makepyfile(test_a="def test_a(wsgihost_server):\n    pass\n")
    out = assert_stopped_once(run(project), project, "did not start")
    assert "cannot run /nonexistent/wsgihost" in out and "No such file" in out


def test_a_worker_that_exits_during_a_test_fails_that_test_only(project):
    project.makepyfile(test_exit="""
        import requests

        def test_the_app_exits(wsgihost_server):
            requests.get(wsgihost_server.url("/exit"))

        def test_the_next_one_is_served_by_the_replacement(wsgihost_server):
            assert requests.get(wsgihost_server.url("/fine")).text == "/fine"
    """)
    result = run(project)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*FAILED test_exit.py::test_the_app_exits*ConnectionError*"])
    assert leftovers(project.path) == []

SHOP_APP = '''
from flask import Flask

app = Flask(__name__)


@app.route("/basket")
def basket():
    items = ["tea", "milk"]
    return ", ".join(items)


@app.route("/never")
def never():
    unused = "only if asked"
    return unused
'''

SHOP_TESTS = """
    import requests

    def test_basket(wsgihost_server):
        assert requests.get(wsgihost_server.url("/basket")).text == "tea, milk"
"""


def coverage_of(output, module):
    """(missed statements, the Missing column) of `module` in a term-missing report."""
    found = re.search(rf"^{module} +\d+ +(\d+) +\d+%[ \t]*(.*)$", output, re.MULTILINE)
    assert found, output
    return int(found.group(1)), found.group(2).strip()


def test_coverage_counts_the_app_code_that_only_the_server_ran(project):
    project.makepyfile(shop=SHOP_APP, test_shop=SHOP_TESTS)
    ini = (project.path / "pytest.ini").read_text()
    (project.path / "pytest.ini").write_text(
        ini.replace("app:application", "shop:app")
        .replace("wsgihost_args = ", "wsgihost_args = --workers 2 --threads 2 "))
    result = run(project, "--cov=shop", "--cov-report=term-missing")
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    # Only the server ran the view (pytest never imports shop), on a thread it started:
    # its lines count, the view nobody asked for does not.
    assert coverage_of(out, "shop.py") == (2, "14-15"), out
    assert "No data was collected" not in out + result.stderr.str()

    # Under xdist: a server per xdist worker, each test's data combined with the others'.
    project.makepyfile(test_never="""
        import requests

        def test_never(wsgihost_server):
            assert requests.get(wsgihost_server.url("/never")).text == "only if asked"
    """)
    result = run(project, "-n", "2", "--cov=shop", "--cov-report=term-missing")
    result.assert_outcomes(passed=2)
    assert coverage_of(result.stdout.str(), "shop.py") == (0, "")
    assert sorted(p.name for p in project.path.glob(".coverage*")) == [".coverage"]
    assert leftovers(project.path) == []


def test_coverage_data_the_servers_cannot_write_is_one_error(project):
    # A read-only directory for the data, in a mount namespace of this test's own; with
    # --cov-append pytest-cov itself writes there only at the end.
    project.makepyfile(shop=SHOP_APP, test_shop=SHOP_TESTS)
    ini = (project.path / "pytest.ini").read_text()
    (project.path / "pytest.ini").write_text(ini.replace("app:application", "shop:app"))
    (project.path / ".coveragerc").write_text("[run]\ndata_file = readonly/.coverage\n")
    (project.path / "readonly").mkdir()
    result = project.run(
        "unshare", "--mount", "sh", "-c",
        "mount --bind readonly readonly && mount -o remount,bind,ro readonly && exec "
        f"{sys.executable} -m pytest -p no:cacheprovider --cov=shop --cov-append",
        timeout=120)
    out = assert_stopped_once(result, project, "cannot write their coverage data")
    assert "Read-only file system" in out


DJANGO_EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "pytest-django"


@pytest.fixture
def django_example(pytester, command):
    """examples/pytest-django as a user has it, with the server command under test."""
    shutil.copytree(DJANGO_EXAMPLE, pytester.path, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"))
    with open(pytester.path / "pytest.ini", "a") as ini:
        ini.write(f"wsgihost_args = --venv {sys.prefix}\n"
                  f"wsgihost_command = {' '.join(command)}\n")
    return pytester


def test_django_tests_and_server_share_the_test_database_one_test_at_a_time(django_example):
    # The example's tests write through the ORM and read over HTTP, post over HTTP and
    # read through the ORM, and find the tables empty again in the next test.
    run(django_example).assert_outcomes(passed=3)
    run(django_example, "-n", "2").assert_outcomes(passed=3)
    # The test databases are gone, and the real one was never made.
    assert list(django_example.path.glob("*.sqlite3")) == []
    assert leftovers(django_example.path) == []


def test_an_in_memory_django_test_database_is_one_error(django_example):
    settings = django_example.path / "notes" / "settings.py"
    settings.write_text(re.sub(r'\n *"TEST": .*\n', "\n", settings.read_text()))
    assert '"TEST"' not in settings.read_text()
    out = assert_stopped_once(run(django_example), django_example, "SQLite in memory")
    assert "DATABASES['default']['TEST']" in out


TESTING_DOCS = Path(__file__).resolve().parent.parent / "docs" / "testing.md"


def docs_blocks():
    """{marker: code} of the code blocks in docs/testing.md under a <!-- marker -->."""
    text = TESTING_DOCS.read_text()
    return dict(re.findall(r"<!-- (.+?) -->\n```\w*\n(.*?)```\n", text, re.DOTALL))


def test_the_docs_flask_project_passes_and_reads_as_the_docs_say(pytester, command):
    blocks = {marker[len("flask: "):]: code for marker, code in docs_blocks().items()
              if marker.startswith("flask: ")}
    assert sorted(blocks) == ["pytest.ini", "shop.py", "tests/conftest.py",
                              "tests/test_basket.py"]
    for path, code in blocks.items():
        (pytester.path / path).parent.mkdir(exist_ok=True)
        (pytester.path / path).write_text(code)
    ini = blocks["pytest.ini"].replace("wsgihost_args = ", f"wsgihost_args = --venv {sys.prefix} ")
    (pytester.path / "pytest.ini").write_text(ini + f"wsgihost_command = {' '.join(command)}\n")
    run(pytester).assert_outcomes(passed=2)
    result = run(pytester, "-n", "2", "--cov=shop", "--cov-report=term-missing")
    result.assert_outcomes(passed=2)
    assert coverage_of(result.stdout.str(), "shop.py") == (0, "")

    # The failure report of "Reading a failure report".
    with open(pytester.path / "shop.py", "a") as shop:
        shop.write('\n\n@app.post("/checkout")\ndef checkout():\n    return str(1 / 0)\n')
    (pytester.path / "tests" / "test_checkout.py").write_text(
        "def test_checkout(client):\n"
        "    assert client.post(client.base + '/checkout').status_code == 200\n")
    result = run(pytester, "tests/test_checkout.py")
    result.assert_outcomes(failed=1)
    report = result.stdout.str()
    section = report[report.index("wsgihost log (http://127.0.0.1:"):]
    assert "ERROR in app: Exception on /checkout [POST]" in section
    assert section.count("ZeroDivisionError: division by zero") == 1, section
    assert ("wsgihost-pytest: the app logged ERROR through shop: Exception on /checkout "
            "[POST]\n") in section
    assert re.search(r'"POST /checkout HTTP/1.1" 500 \d+ "-" "python-requests/[\d.]+" \d+\n',
                     section)


def test_the_docs_django_files_are_the_examples():
    blocks = {marker: code for marker, code in docs_blocks().items()
              if marker.startswith("examples/")}
    assert len(blocks) == 3
    root = TESTING_DOCS.parent.parent
    for path, code in blocks.items():
        assert (root / path).read_text() == code, path
