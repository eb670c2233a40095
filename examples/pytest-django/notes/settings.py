"""A small Django project whose tests run against wsgihost (see docs/testing.md)."""
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "only-for-the-example"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["notes"]
MIDDLEWARE = []
ROOT_URLCONF = "notes.urls"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "notes.sqlite3",
        # A file, not SQLite's in-memory default: the server's processes must see it too.
        "TEST": {"NAME": BASE_DIR / "test_notes.sqlite3"},
    }
}
