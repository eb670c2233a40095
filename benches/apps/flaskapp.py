"""A Flask JSON route, for the framework-overhead scenario."""
from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/json")
def json_route():
    return jsonify(message="Hello, World!", items=[1, 2, 3])
