"""The example Django site, unchanged, under wsgihost: admin with CSRF, the app's own
views and form with an upload, static and media files, in both layouts."""
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests

from frameworks import LAYOUTS, csrf_token, django_args, prepare_django


@pytest.fixture(params=LAYOUTS, ids=["1x8", "2x4"])
def django_server(request, start_server, tmp_path):
    env = prepare_django(tmp_path)
    return start_server(*request.param, *django_args(env))


def admin_session(server):
    session = requests.Session()
    login = session.get(server.url + "/admin/login/?next=/admin/")
    assert login.status_code == 200
    answer = session.post(
        server.url + "/admin/login/?next=/admin/",
        data={"csrfmiddlewaretoken": csrf_token(login.text), "username": "admin", "password": "s3cret-pass", "next": "/admin/"},
    )
    assert answer.status_code == 200 and "Site administration" in answer.text, answer.text[:500]
    return session


def test_admin_login_and_create_through_admin(django_server):
    session = admin_session(django_server)
    add = session.get(django_server.url + "/admin/notes/note/add/")
    created = session.post(
        django_server.url + "/admin/notes/note/add/",
        data={"csrfmiddlewaretoken": csrf_token(add.text), "title": "From the admin", "body": "hello"},
    )
    assert created.status_code == 200 and "was added successfully" in created.text
    assert "From the admin" in requests.get(django_server.url + "/").text


def test_post_without_csrf_is_refused(django_server):
    refused = requests.post(django_server.url + "/notes/new/", data={"title": "x"})
    assert refused.status_code == 403


def test_own_form_with_upload_and_media(django_server):
    session = requests.Session()
    form = session.get(django_server.url + "/notes/new/")
    attachment = os.urandom(300_000)
    created = session.post(
        django_server.url + "/notes/new/",
        data={"csrfmiddlewaretoken": csrf_token(form.text), "title": "With a file", "body": "see attachment"},
        files={"attachment": ("report.bin", attachment)},
    )
    assert created.status_code == 200 and "<h1>With a file</h1>" in created.text
    assert "With a file" in session.get(django_server.url + "/").text
    link = re.search(r'class="attachment" href="([^"]+)"', created.text).group(1)
    media = session.get(django_server.url + link)
    assert media.status_code == 200 and media.content == attachment


def test_admin_and_app_static_files(django_server):
    css = requests.get(django_server.url + "/static/admin/css/base.css")
    assert css.status_code == 200
    assert css.headers["Content-Type"].startswith("text/css")
    assert requests.get(django_server.url + "/static/notes/style.css").status_code == 200
    assert requests.get(django_server.url + "/static/missing.css").status_code == 404


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


CERTUTIL = shutil.which("certutil")


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_real_browser_adds_an_object_through_the_admin(start_server, tmp_path, scheme):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("headless browser test needs Debian's chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver); CI installs them")
    if scheme == "https" and not CERTUTIL:
        pytest.skip("the HTTPS browser test needs certutil to trust the test CA "
                    "(apt-get install libnss3-tools); CI installs it")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as page_is
    from selenium.webdriver.support.ui import WebDriverWait

    home = tmp_path / "home"  # the browser's own certificate store, with the test CA trusted
    (home / ".pki" / "nssdb").mkdir(parents=True)
    tls, base = [], None
    if scheme == "https":
        from certs import Authority

        ca = Authority(tmp_path / "pki")
        cert, key, _ = ca.issue("server", "localhost")
        tls = ["--certfile", str(cert), "--keyfile", str(key), "--env", "DJANGO_HTTPS=1"]
        nssdb = f"sql:{home / '.pki' / 'nssdb'}"
        subprocess.run([CERTUTIL, "-d", nssdb, "-N", "--empty-password"], check=True)
        subprocess.run([CERTUTIL, "-d", nssdb, "-A", "-t", "C,,", "-n", "wsgihost test CA", "-i", str(ca.pem)],
                       check=True)
    server = start_server(*tls, *django_args(prepare_django(tmp_path)))
    base = f"{scheme}://localhost:{server.port}"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic", f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER, env={**os.environ, "HOME": str(home)}),
                              options=options)
    try:
        driver.set_page_load_timeout(30)
        driver.get(base + "/admin/")
        driver.find_element(By.NAME, "username").send_keys("admin")
        driver.find_element(By.NAME, "password").send_keys("s3cret-pass")
        driver.find_element(By.CSS_SELECTOR, "input[type=submit], button[type=submit]").click()
        WebDriverWait(driver, 20).until(page_is.title_contains("Site administration"))
        driver.get(base + "/admin/notes/note/add/")
        driver.find_element(By.NAME, "title").send_keys("Typed in a real browser")
        driver.find_element(By.NAME, "_save").click()
        WebDriverWait(driver, 20).until(page_is.title_contains("Select note to change"))
        assert "Typed in a real browser" in driver.page_source
        # The admin's stylesheet really applied: its header has the admin's colours.
        header = driver.find_element(By.ID, "header")
        assert header.value_of_css_property("background-color") not in ("rgba(0, 0, 0, 0)", "transparent")
        screenshot = Path(tmp_path) / "admin.png"
        driver.save_screenshot(str(screenshot))
        assert screenshot.stat().st_size > 1000
        assert driver.current_url.startswith(base)  # over HTTPS: no certificate warning page
    finally:
        driver.quit()
    assert "Typed in a real browser" in requests.get(base + "/", verify=ca.pem if tls else True).text
