//! Every gunicorn setting (gunicorn 27.0.1, and `tolerate_dangerous_framing` of 22) and what
//! wsgihost does with it. Exactly one of: honoured by a wsgihost option of the same meaning;
//! a server hook; accepted with one warning when set to anything but gunicorn's default,
//! because it has no effect here (and why); or refused at start with the nearest
//! equivalent. Nothing is silently ignored. The README's table is generated from this one
//! (`wsgihost --gunicorn-reference`; a test keeps it in sync).
use super::value::SettingValue;

/// What wsgihost does with a gunicorn setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// The wsgihost option with this long name (`app` for the positional APP) takes it.
    Option(&'static str),
    /// A server hook, called with gunicorn's arguments (config file only).
    Hook(Arity),
    /// Applied by Python's logging.config in the master before the workers fork.
    PythonLogging,
    /// Accepted; set to anything but gunicorn's default, it is warned about once: why it
    /// has no effect here.
    NoEffect(&'static str),
    /// Refused at start when set to anything but gunicorn's default: what to do instead.
    Refused(&'static str),
}

/// The positional parameters a hook must take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arity {
    pub least: usize,
    pub most: usize,
    /// gunicorn's call, for messages: `post_fork(server, worker)`.
    pub call: &'static str,
}

/// gunicorn's default, to tell whether a setting was set to something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GunicornDefault {
    /// None, False, 0, '' or an empty list or dict: anything "falsy".
    Unset,
    /// None only (False means something else, as for sendfile).
    NoneOnly,
    True,
    Int(i64),
    Text(&'static str),
    /// A hook, or a value not worth comparing.
    Any,
}

/// How gunicorn's command-line flag for the setting is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// store_true (or store_const): the flag alone.
    Nothing,
    Value,
    /// nargs='?': a value may follow.
    MaybeValue,
    /// action=append: repeatable, a value each time.
    Values,
}

#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub name: &'static str,
    pub flags: &'static [&'static str],
    pub takes: Takes,
    pub default: GunicornDefault,
    pub treatment: Treatment,
}

const fn set(
    name: &'static str,
    flags: &'static [&'static str],
    takes: Takes,
    default: GunicornDefault,
    treatment: Treatment,
) -> Setting {
    Setting {
        name,
        flags,
        takes,
        default,
        treatment,
    }
}

const fn hook(name: &'static str, least: usize, most: usize, call: &'static str) -> Setting {
    set(
        name,
        &[],
        Takes::Nothing,
        GunicornDefault::Any,
        Treatment::Hook(Arity { least, most, call }),
    )
}

use GunicornDefault::{Any, Int, NoneOnly, Text, True, Unset};
use Takes::{MaybeValue, Nothing, Value, Values};
use Treatment::{NoEffect, Option as Opt, PythonLogging, Refused};

const NO_CONTROL_SOCKET: &str = "there is no control socket (gunicornc): signals do its work (HUP reload, TTIN/TTOU workers, TERM stop) and --metrics shows the workers";
const NO_DIRTY: &str = "only used with dirty_apps, which is refused";
const NO_HTTP2: &str = "HTTP/2 is not served yet: clients get HTTP/1.1";
const ASGI_ONLY: &str = "for ASGI workers; wsgihost serves WSGI";
const NO_SYSLOG: &str = "only used with syslog, which is refused";

/// Every gunicorn setting, in gunicorn's order of sections.
#[rustfmt::skip]
pub const SETTINGS: &[Setting] = &[
    // Config File
    set("config", &["-c", "--config"], Value, Any, Opt("config")),
    set("wsgi_app", &[], Value, Unset, Opt("app")),
    // Control
    set("control_socket", &["--control-socket"], Value, Any, NoEffect(NO_CONTROL_SOCKET)),
    set("control_socket_mode", &["--control-socket-mode"], Value, Int(384), NoEffect(NO_CONTROL_SOCKET)),
    set("control_socket_disable", &["--no-control-socket"], Nothing, True, NoEffect(NO_CONTROL_SOCKET)),
    // Debugging
    set("reload", &["--reload"], Nothing, Unset, Opt("reload")),
    set("reload_engine", &["--reload-engine"], Value, Text("auto"), NoEffect("--reload compares modification times once a second; there is no engine to choose")),
    set("reload_extra_files", &["--reload-extra-file"], Values, Unset, Opt("reload-extra-file")),
    set("spew", &["--spew"], Nothing, Unset, NoEffect("no line tracing; run the app under a debugger or profiler for that")),
    set("check_config", &["--check-config"], Nothing, Unset, Opt("check-config")),
    set("print_config", &["--print-config"], Nothing, Unset, Opt("print-config")),
    // Dirty Arbiters
    set("dirty_apps", &["--dirty-app"], Values, Unset, Refused("there are no dirty arbiters: run such work in a task queue or a service of its own")),
    set("dirty_workers", &["--dirty-workers"], Value, Unset, Refused("there are no dirty arbiters: run such work in a task queue or a service of its own")),
    set("dirty_timeout", &["--dirty-timeout"], Value, Int(300), NoEffect(NO_DIRTY)),
    set("dirty_threads", &["--dirty-threads"], Value, Int(1), NoEffect(NO_DIRTY)),
    set("dirty_graceful_timeout", &["--dirty-graceful-timeout"], Value, Int(30), NoEffect(NO_DIRTY)),
    hook("on_dirty_starting", 1, 1, "on_dirty_starting(arbiter)"),
    hook("dirty_post_fork", 2, 2, "dirty_post_fork(arbiter, worker)"),
    hook("dirty_worker_init", 1, 1, "dirty_worker_init(worker)"),
    hook("dirty_worker_exit", 2, 2, "dirty_worker_exit(arbiter, worker)"),
    // HTTP/2
    set("http_protocols", &["--http-protocols"], Value, Text("h1"), NoEffect(NO_HTTP2)),
    set("http2_cleartext", &["--http2-cleartext"], Value, Text("off"), Refused("h2c is not served yet: have the proxy or balancer speak HTTP/1.1 to wsgihost")),
    set("http2_max_concurrent_streams", &["--http2-max-concurrent-streams"], Value, Int(100), NoEffect(NO_HTTP2)),
    set("http2_initial_window_size", &["--http2-initial-window-size"], Value, Int(65535), NoEffect(NO_HTTP2)),
    set("http2_max_frame_size", &["--http2-max-frame-size"], Value, Int(16384), NoEffect(NO_HTTP2)),
    set("http2_max_header_list_size", &["--http2-max-header-list-size"], Value, Int(65536), NoEffect(NO_HTTP2)),
    // Logging
    set("accesslog", &["--access-logfile"], Value, Unset, Opt("access-log")),
    set("disable_redirect_access_to_syslog", &["--disable-redirect-access-to-syslog"], Nothing, Unset, NoEffect(NO_SYSLOG)),
    set("access_log_format", &["--access-logformat"], Value, Any, Opt("access-log-format")),
    set("errorlog", &["--error-logfile", "--log-file"], Value, Text("-"), Opt("error-log")),
    set("loglevel", &["--log-level"], Value, Text("info"), Opt("log-level")),
    set("capture_output", &["--capture-output"], Nothing, Unset, Opt("capture-output")),
    set("logger_class", &["--logger-class"], Value, Text("gunicorn.glogging.Logger"), Refused("wsgihost writes its own logs: use --log-format json, logconfig_dict for the app's loggers, or --statsd-host")),
    set("logconfig", &["--log-config"], Value, Unset, Opt("log-config")),
    set("logconfig_dict", &[], Value, Unset, PythonLogging),
    set("logconfig_json", &["--log-config-json"], Value, Unset, Opt("log-config-json")),
    set("syslog_addr", &["--log-syslog-to"], Value, Text("udp://localhost:514"), NoEffect(NO_SYSLOG)),
    set("syslog", &["--log-syslog"], Nothing, Unset, Refused("no syslog: log to stderr, which journald (deploy/systemd) or the container runtime collects")),
    set("syslog_prefix", &["--log-syslog-prefix"], Value, Unset, NoEffect(NO_SYSLOG)),
    set("syslog_facility", &["--log-syslog-facility"], Value, Text("user"), NoEffect(NO_SYSLOG)),
    set("enable_stdio_inheritance", &["-R", "--enable-stdio-inheritance"], Nothing, Unset, NoEffect("only matters with --daemon, which is refused")),
    set("statsd_host", &["--statsd-host"], Value, Unset, Opt("statsd-host")),
    set("dogstatsd_tags", &["--dogstatsd-tags"], Value, Unset, Opt("dogstatsd-tags")),
    set("statsd_prefix", &["--statsd-prefix"], Value, Unset, Opt("statsd-prefix")),
    set("enable_backlog_metric", &["--enable-backlog-metric"], Nothing, Unset, Opt("enable-backlog-metric")),
    // Process Naming
    set("proc_name", &["-n", "--name"], Value, Unset, Opt("name")),
    set("default_proc_name", &[], Value, Text("gunicorn"), NoEffect("processes are named after wsgihost unless --name is given")),
    // SSL
    set("keyfile", &["--keyfile"], Value, Unset, Opt("keyfile")),
    set("certfile", &["--certfile"], Value, Unset, Opt("certfile")),
    set("ssl_version", &["--ssl-version"], Value, Any, NoEffect("gunicorn ignores it too; rustls speaks TLS 1.2 and 1.3")),
    set("cert_reqs", &["--cert-reqs"], Value, Unset, Opt("cert-reqs")),
    set("ca_certs", &["--ca-certs"], Value, Unset, Opt("ca-certs")),
    set("suppress_ragged_eofs", &["--suppress-ragged-eofs"], Nothing, True, NoEffect("a TLS connection closed without close_notify ends like any closed connection")),
    set("do_handshake_on_connect", &["--do-handshake-on-connect"], Nothing, Unset, NoEffect("handshakes run on the event loop as the first bytes arrive")),
    set("ciphers", &["--ciphers"], Value, Unset, NoEffect("rustls offers only its modern AEAD suites (TLS 1.3; TLS 1.2 with ECDHE); an OpenSSL cipher string cannot change them")),
    // Security
    set("limit_request_line", &["--limit-request-line"], Value, Int(4094), Opt("limit-request-line")),
    set("limit_request_fields", &["--limit-request-fields"], Value, Int(100), Opt("limit-request-fields")),
    set("limit_request_field_size", &["--limit-request-field_size"], Value, Int(8190), Opt("limit-request-field-size")),
    // Server Hooks
    hook("on_starting", 1, 1, "on_starting(server)"),
    hook("on_reload", 1, 1, "on_reload(server)"),
    hook("when_ready", 1, 1, "when_ready(server)"),
    hook("pre_fork", 2, 2, "pre_fork(server, worker)"),
    hook("post_fork", 2, 2, "post_fork(server, worker)"),
    hook("post_worker_init", 1, 1, "post_worker_init(worker)"),
    hook("worker_int", 1, 1, "worker_int(worker)"),
    hook("worker_abort", 1, 1, "worker_abort(worker)"),
    hook("pre_exec", 1, 1, "pre_exec(server)"),
    hook("pre_request", 2, 2, "pre_request(worker, req)"),
    hook("post_request", 2, 4, "post_request(worker, req, environ, resp)"),
    hook("child_exit", 2, 2, "child_exit(server, worker)"),
    hook("worker_exit", 2, 2, "worker_exit(server, worker)"),
    hook("nworkers_changed", 3, 3, "nworkers_changed(server, new_value, old_value)"),
    hook("on_exit", 1, 1, "on_exit(server)"),
    set("ssl_context", &[], Value, Any, Refused("rustls, not Python's ssl, serves TLS: use certfile, keyfile, ca_certs and cert_reqs (nothing below TLS 1.2 is ever offered)")),
    // Server Mechanics
    set("preload_app", &["--preload"], Nothing, Unset, Opt("preload")),
    set("sendfile", &["--no-sendfile"], Nothing, NoneOnly, NoEffect("static files and wsgi.file_wrapper use sendfile on plain sockets (never through TLS); it cannot be turned off")),
    set("reuse_port", &["--reuse-port"], Nothing, Unset, Opt("reuse-port")),
    set("chdir", &["--chdir"], Value, Any, Opt("chdir")),
    set("daemon", &["-D", "--daemon"], Nothing, Unset, Refused("wsgihost does not daemonize: run it under systemd (deploy/systemd/, Type=notify), supervisord or a container")),
    set("raw_env", &["-e", "--env"], Values, Unset, Opt("env")),
    set("pidfile", &["-p", "--pid"], Value, Unset, Opt("pid")),
    set("worker_tmp_dir", &["--worker-tmp-dir"], Value, Unset, NoEffect("workers report to the master over a pipe; there is no heartbeat file")),
    set("user", &["-u", "--user"], Value, Unset, Opt("user")),
    set("group", &["-g", "--group"], Value, Unset, Opt("group")),
    set("umask", &["-m", "--umask"], Value, Unset, Opt("umask")),
    set("initgroups", &["--initgroups"], Nothing, Unset, Opt("initgroups")),
    set("tmp_upload_dir", &[], Value, Unset, NoEffect("request bodies are never spooled to disk: the app reads them from the socket through wsgi.input")),
    set("secure_scheme_headers", &[], Value, Any, Opt("secure-scheme-headers")),
    set("forwarded_allow_ips", &["--forwarded-allow-ips"], Value, Text("127.0.0.1,::1"), Opt("forwarded-allow-ips")),
    set("pythonpath", &["--pythonpath"], Value, Unset, Opt("pythonpath")),
    set("paste", &["--paste", "--paster"], Value, Unset, Refused("PasteDeploy files are not read: make APP a module that calls paste.deploy.loadapp('config:...')")),
    set("proxy_protocol", &["--proxy-protocol"], MaybeValue, Text("off"), Opt("proxy-protocol")),
    set("proxy_allow_ips", &["--proxy-allow-from"], Value, Text("127.0.0.1,::1"), Opt("proxy-allow-from")),
    set("protocol", &["--protocol"], Value, Text("http"), Refused("only HTTP is spoken: use proxy_pass instead of uwsgi_pass in nginx")),
    set("uwsgi_allow_ips", &["--uwsgi-allow-from"], Value, Text("127.0.0.1,::1"), NoEffect("only used with protocol uwsgi, which is refused")),
    set("raw_paste_global_conf", &["--paste-global"], Values, Unset, Refused("PasteDeploy files are not read (see paste)")),
    set("permit_obsolete_folding", &["--permit-obsolete-folding"], Nothing, Unset, NoEffect("obsolete line folding is always refused with 400 (RFC 9112)")),
    set("strip_header_spaces", &["--strip-header-spaces"], Nothing, Unset, NoEffect("a space before a header's colon is always refused with 400: it smuggles requests")),
    set("permit_unconventional_http_method", &["--permit-unconventional-http-method"], Nothing, Unset, NoEffect("any RFC 9110 token is accepted as a method; there is no stricter convention to relax")),
    set("permit_unconventional_http_version", &["--permit-unconventional-http-version"], Nothing, Unset, NoEffect("only HTTP/1.0 and HTTP/1.1 are served")),
    set("casefold_http_method", &["--casefold-http-method"], Nothing, Unset, NoEffect("the method reaches the app exactly as sent")),
    set("forwarder_headers", &["--forwarder-headers"], Value, Text("SCRIPT_NAME,PATH_INFO"), NoEffect("SCRIPT_NAME and PATH_INFO come from the mount table (--mount URL=APP), never from request headers")),
    set("header_map", &["--header-map"], Value, Text("drop"), NoEffect("header names with '_' are always dropped from the environ (gunicorn's default, drop)")),
    set("tolerate_dangerous_framing", &[], Value, Unset, NoEffect("a request with both Content-Length and Transfer-Encoding is always refused with 400")),
    set("root_path", &["--root-path"], Value, Unset, NoEffect(ASGI_ONLY)),
    // Server Socket
    set("bind", &["-b", "--bind"], Values, Any, Opt("bind")),
    set("backlog", &["--backlog"], Value, Int(2048), Opt("backlog")),
    // Worker Processes
    set("workers", &["-w", "--workers"], Value, Int(1), Opt("workers")),
    set("worker_class", &["-k", "--worker-class"], Value, Text("sync"), Opt("worker-class")),
    set("threads", &["--threads"], Value, Int(1), Opt("threads")),
    set("worker_connections", &["--worker-connections"], Value, Int(1000), Opt("max-connections")),
    set("max_requests", &["--max-requests"], Value, Unset, Opt("max-requests")),
    set("max_requests_jitter", &["--max-requests-jitter"], Value, Unset, Opt("max-requests-jitter")),
    set("timeout", &["-t", "--timeout"], Value, Int(30), Opt("timeout")),
    set("graceful_timeout", &["--graceful-timeout"], Value, Int(30), Opt("graceful-timeout")),
    set("keepalive", &["--keep-alive"], Value, Int(2), Opt("keep-alive")),
    set("asgi_loop", &["--asgi-loop"], Value, Text("auto"), NoEffect(ASGI_ONLY)),
    set("asgi_lifespan", &["--asgi-lifespan"], Value, Text("auto"), NoEffect(ASGI_ONLY)),
    set("asgi_disconnect_grace_period", &["--asgi-disconnect-grace-period"], Value, Int(3), NoEffect(ASGI_ONLY)),
    set("websocket_max_message_size", &["--websocket-max-message-size"], Value, Int(16_777_216), NoEffect(ASGI_ONLY)),
    set("http_parser", &["--http-parser"], Value, Text("auto"), NoEffect("the parser is httparse, in Rust")),
];

/// The setting named `name` (gunicorn's spelling).
pub fn find(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|setting| setting.name == name)
}

/// What a value given for a setting means at start-up.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Honoured, or equal to gunicorn's default: nothing to say.
    Fine,
    /// Accepted with this warning.
    Warn(String),
    /// Refused with this message (exit 2).
    Refuse(String),
}

impl Setting {
    /// Whether `value` is gunicorn's default for this setting.
    pub fn is_default(&self, value: &SettingValue) -> bool {
        match self.default {
            Unset => value.is_falsy(),
            NoneOnly => *value == SettingValue::None,
            True => matches!(value, SettingValue::Bool(true)),
            Int(n) => value.as_int() == Some(n),
            Text(text) => value.as_text().is_some_and(|v| v.trim() == text),
            Any => false,
        }
    }

    /// The verdict on `value`; `shown` is how the user gave it, for the message
    /// (`--daemon`, `gunicorn.conf.py:3: daemon = True`).
    pub fn judge(&self, value: &SettingValue, shown: &str) -> Verdict {
        match self.treatment {
            NoEffect(why) if !self.is_default(value) => {
                Verdict::Warn(format!("{shown} has no effect here: {why}"))
            }
            Refused(instead) if !self.is_default(value) => {
                Verdict::Refuse(format!("{shown} is not supported: {instead}"))
            }
            _ => Verdict::Fine,
        }
    }
}

/// The table for the README: gunicorn setting, its flags, and what wsgihost does.
pub fn reference() -> String {
    let mut out = String::from("| gunicorn setting | flags | in wsgihost |\n|---|---|---|\n");
    for setting in SETTINGS {
        let flags = setting
            .flags
            .iter()
            .map(|flag| format!("`{flag}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let what = match setting.treatment {
            Opt("app") => "honoured: the positional APP".to_string(),
            Opt(option) => format!("honoured: `--{option}`"),
            Treatment::Hook(arity) if setting.name == "pre_exec" => format!(
                "hook `{}`: in the master, before it starts the new master on SIGUSR2",
                arity.call
            ),
            Treatment::Hook(arity) if setting.name.contains("dirty") => {
                format!("hook `{}`, accepted with a warning: {NO_DIRTY}", arity.call)
            }
            Treatment::Hook(arity) => format!("hook: `{}`", arity.call),
            PythonLogging => {
                "honoured: `logging.config.dictConfig` in the master before workers fork (the app's loggers; wsgihost's own lines follow `--error-log`)".to_string()
            }
            NoEffect(why) => format!("no effect, warned when set: {why}"),
            Refused(instead) => format!("refused when set: {instead}"),
        };
        out.push_str(&format!(
            "| `{}` | {flags} | {} |\n",
            setting.name,
            what.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_flags_take_what_gunicorn_gives() {
        for (index, setting) in SETTINGS.iter().enumerate() {
            assert!(
                SETTINGS[index + 1..]
                    .iter()
                    .all(|other| other.name != setting.name),
                "{} twice",
                setting.name
            );
            assert!(setting.flags.iter().all(|f| f.starts_with('-')));
        }
        assert_eq!(SETTINGS.len(), 121);
    }

    #[test]
    fn verdicts_follow_the_default() {
        let daemon = find("daemon").unwrap();
        assert_eq!(daemon.judge(&SettingValue::Bool(false), "f"), Verdict::Fine);
        assert!(matches!(
            daemon.judge(&SettingValue::Bool(true), "f"),
            Verdict::Refuse(message) if message.contains("systemd")
        ));
        let engine = find("reload_engine").unwrap();
        assert_eq!(
            engine.judge(&SettingValue::Str("auto".into()), "f"),
            Verdict::Fine
        );
        assert!(matches!(
            engine.judge(&SettingValue::Str("inotify".into()), "f"),
            Verdict::Warn(message) if message == "f has no effect here: --reload compares modification times once a second; there is no engine to choose"
        ));
        let workers = find("workers").unwrap();
        assert_eq!(workers.judge(&SettingValue::Int(9), "f"), Verdict::Fine);
        assert!(
            find("tmp_upload_dir")
                .unwrap()
                .is_default(&SettingValue::None)
        );
    }
}
