"""A small but real Flask app for wsgihost: a form, a session counter, a JSON API backed by
SQLite, file upload and download, a streaming route, and 404/500 handlers.

Run it:  wsgihost --chdir examples/flask_app app:app
"""
import hashlib
import os
import sqlite3
import time
from pathlib import Path

from flask import (Flask, abort, g, jsonify, render_template, request, send_file,
                   session, stream_with_context)
from werkzeug.utils import secure_filename

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("FLASK_APP_DATA", HERE / "instance"))
UPLOADS = DATA / "uploads"

app = Flask(__name__)
app.secret_key = os.environ.get("FLASK_SECRET_KEY", "dev-only-secret")
app.config["MAX_CONTENT_LENGTH"] = 200 * 1024 * 1024


def db():
    if "db" not in g:
        DATA.mkdir(parents=True, exist_ok=True)
        g.db = sqlite3.connect(DATA / "items.db", timeout=10)
        g.db.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    return g.db


@app.teardown_appcontext
def close_db(_error):
    connection = g.pop("db", None)
    if connection is not None:
        connection.close()


@app.route("/", methods=["GET", "POST"])
def index():
    name = request.form.get("name", "").strip() if request.method == "POST" else ""
    return render_template("index.html", name=name)


@app.route("/counter")
def counter():
    session["visits"] = session.get("visits", 0) + 1
    return jsonify(visits=session["visits"])


@app.route("/api/items", methods=["GET", "POST"])
def items():
    if request.method == "POST":
        payload = request.get_json(force=True, silent=True) or {}
        name = str(payload.get("name", "")).strip()
        if not name:
            return jsonify(error="name is required"), 400
        with db() as connection:
            cursor = connection.execute("INSERT INTO items (name) VALUES (?)", (name,))
        return jsonify(id=cursor.lastrowid, name=name), 201
    rows = db().execute("SELECT id, name FROM items ORDER BY id").fetchall()
    return jsonify(items=[{"id": row[0], "name": row[1]} for row in rows])


@app.route("/upload", methods=["POST"])
def upload():
    uploaded = request.files.get("file")
    if uploaded is None or not uploaded.filename:
        return jsonify(error="no file"), 400
    UPLOADS.mkdir(parents=True, exist_ok=True)
    name = secure_filename(uploaded.filename)
    path = UPLOADS / name
    uploaded.save(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return jsonify(name=name, size=path.stat().st_size, sha256=digest), 201


@app.route("/files/<name>")
def download(name):
    path = UPLOADS / secure_filename(name)
    if not path.is_file():
        abort(404)
    return send_file(path, as_attachment=True)


@app.route("/echo", methods=["POST"])
def echo():
    data = request.get_data()
    return jsonify(size=len(data), sha256=hashlib.sha256(data).hexdigest())


@app.route("/stream")
def stream():
    @stream_with_context
    def generate():
        for number in range(5):
            yield f"line {number}\n"
            time.sleep(0.05)

    return app.response_class(generate(), mimetype="text/plain")


@app.route("/boom")
def boom():
    raise RuntimeError("deliberate failure for the 500 handler")


@app.errorhandler(404)
def not_found(_error):
    return render_template("error.html", code=404, message="Nothing here."), 404


@app.errorhandler(500)
def server_error(_error):
    return render_template("error.html", code=500, message="Something broke; it has been logged."), 500
