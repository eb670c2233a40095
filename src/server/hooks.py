"""The objects gunicorn's server hooks are given, made by wsgihost (embedded, not a public
API): the server (gunicorn's Arbiter), a worker, a request and a response, each with the
attributes real configuration files use, and a logger whose messages go to wsgihost's
error log."""
import os
import traceback

_LEVELS = {"critical": 50, "error": 40, "warning": 30, "warn": 30, "info": 20, "debug": 10}


class Log:
    """gunicorn's logger interface (server.log, worker.log)."""

    def __init__(self, emit):
        self._emit = emit

    def log(self, level, msg, *args, **kwargs):
        if isinstance(level, str):
            level = _LEVELS.get(level.lower(), 20)
        text = str(msg) % args if args else str(msg)
        if kwargs.get("exc_info"):
            text = text + "\n" + traceback.format_exc().rstrip()
        self._emit(int(level), text)

    def critical(self, msg, *args, **kwargs):
        self.log(50, msg, *args, **kwargs)

    def error(self, msg, *args, **kwargs):
        self.log(40, msg, *args, **kwargs)

    def warning(self, msg, *args, **kwargs):
        self.log(30, msg, *args, **kwargs)

    warn = warning

    def info(self, msg, *args, **kwargs):
        self.log(20, msg, *args, **kwargs)

    def debug(self, msg, *args, **kwargs):
        self.log(10, msg, *args, **kwargs)

    def exception(self, msg, *args, **kwargs):
        kwargs.setdefault("exc_info", True)
        self.log(40, msg, *args, **kwargs)

    def reopen_files(self):
        pass

    def close_on_exec(self):
        pass


class Setting:
    """An entry of cfg.settings: gunicorn's Setting, reduced to what is read of it."""

    def __init__(self, name, value):
        self.name = name
        self.value = value

    def get(self):
        return self.value

    def __repr__(self):
        return f"<Setting {self.name}={self.value!r}>"


class Config:
    """server.cfg and worker.cfg: every gunicorn setting's effective value, by name."""

    def __init__(self, values):
        self.__dict__.update(values)
        self.settings = {name: Setting(name, value) for name, value in values.items()}

    @property
    def worker_class_str(self):
        return self.worker_class

    @property
    def address(self):
        return list(self.bind)

    @property
    def is_ssl(self):
        return bool(self.certfile or self.keyfile)

    @property
    def env(self):
        return dict(item.split("=", 1) for item in self.raw_env)

    def __repr__(self):
        return "<wsgihost Config: %s>" % ", ".join(f"{k}={v!r}" for k, v in sorted(self.__dict__.items())
                                                  if k != "settings" and not callable(v))


class Server:
    """The master, as hooks see it (gunicorn's Arbiter)."""

    def __init__(self, cfg, log, pid, proc_name):
        self.cfg = cfg
        self.log = log
        self.pid = pid
        self.master_pid = 0
        self.proc_name = proc_name
        self.master_name = "Master"
        self.num_workers = cfg.workers
        self.timeout = cfg.timeout
        self.WORKERS = {}
        self.worker_age = 0
        self.reexec_pid = 0

    def __repr__(self):
        return f"<wsgihost master {self.pid}>"


class Worker:
    """A worker process, as hooks see it. `age` counts the workers the master has started
    (gunicorn's meaning); `slot` is its place, 0 .. workers-1, which its replacement takes."""

    def __init__(self, server, age, slot):
        self.age = age
        self.slot = slot
        self.pid = None
        self.ppid = server.pid
        self.cfg = server.cfg
        self.log = server.log
        self.timeout = server.timeout
        self.max_requests = server.cfg.max_requests or None
        self.booted = False
        self.aborted = False
        self.alive = True
        self.nr = 0
        self.tmp = None

    def became(self):
        """In the worker process, just forked."""
        self.pid = os.getpid()

    def __repr__(self):
        return f"<wsgihost worker {self.pid} (slot {self.slot}, age {self.age})>"


class Request:
    """pre_request's and post_request's `req` (gunicorn's Request)."""

    def __init__(self, method, uri, version, headers, scheme, peer_addr):
        self.method = method
        self.uri = uri
        path, _, query = uri.partition("?")
        path, _, self.fragment = path.partition("#")
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.trailers = []
        self.scheme = scheme
        self.peer_addr = peer_addr
        self.remote_addr = peer_addr

    def __repr__(self):
        return f"<wsgihost request {self.method} {self.uri}>"


class Response:
    """post_request's `resp` (gunicorn's Response): status line, headers, bytes sent."""

    def __init__(self, status, headers, sent):
        self.status = status
        self.headers = headers
        self.sent = sent
        self.response_length = sent

    @property
    def status_code(self):
        try:
            return int(str(self.status).split(None, 1)[0])
        except (ValueError, IndexError):
            return None

    def __repr__(self):
        return f"<wsgihost response {self.status}>"
