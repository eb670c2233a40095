"""Starting the example Flask app and Django site under wsgihost, with the frameworks from
the test virtualenv (the one running pytest)."""
import os
import subprocess
import sys

from conftest import REPO

EXAMPLES = REPO / "examples"
# Variants every framework suite runs under: defaults, and several processes and threads.
LAYOUTS = [[], ["--workers", "2", "--threads", "4"]]


def venv_args():
    """--venv for the interpreter running the tests, when it is a virtualenv."""
    return ["--venv", sys.prefix] if sys.prefix != sys.base_prefix else []


def prepare_django(data):
    """Creates the database, admin user and collected static files under `data`; returns
    the environment the site needs."""
    env = {
        "DJANGO_DB": str(data / "db.sqlite3"),
        "DJANGO_STATIC_ROOT": str(data / "static"),
        "DJANGO_MEDIA_ROOT": str(data / "media"),
    }
    manage = [sys.executable, "manage.py"]
    run_env = {**os.environ, **env, "DJANGO_SUPERUSER_PASSWORD": "s3cret-pass"}
    site = EXAMPLES / "django_site"
    for command in (["migrate", "--noinput"], ["collectstatic", "--noinput"],
                    ["createsuperuser", "--noinput", "--username", "admin", "--email", "admin@example.org"]):
        subprocess.run(manage + command, cwd=site, env=run_env, check=True, capture_output=True)
    return env


def django_args(env):
    args = ["--chdir", str(EXAMPLES / "django_site"), *venv_args()]
    for key, value in env.items():
        args += ["--env", f"{key}={value}"]
    args += ["--static", f"/static={env['DJANGO_STATIC_ROOT']}", "--static", f"/media={env['DJANGO_MEDIA_ROOT']}"]
    return args + ["mysite.wsgi:application"]


def flask_args(data):
    return ["--chdir", str(EXAMPLES / "flask_app"), *venv_args(), "--env", f"FLASK_APP_DATA={data}", "app:app"]


def csrf_token(html):
    marker = 'name="csrfmiddlewaretoken" value="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]


