//! The configuration: wsgihost's options (the flags below, each stating its default in
//! `--help`), where else they come from (`sources`: a gunicorn-style Python file or a TOML
//! file, `WSGIHOST_*` variables and `GUNICORN_CMD_ARGS`) and what each gunicorn setting
//! becomes (`gunicorn`).
pub mod bind;
pub mod gunicorn;
pub mod parse;
pub mod python_file;
pub mod sources;
pub mod toml_file;
pub mod value;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

pub use bind::{BindAddr, Scheme};
pub use parse::{StatsdAddr, WorkerClass};
pub use sources::{Effective, Parsed, Source};

use crate::http::forwarded::{SchemeHeaders, TrustedProxies};
use crate::http::request::HeadLimits;

/// wsgihost: an HTTP/1.1 server that runs Python WSGI applications in an embedded CPython.
#[derive(Parser, Debug, Clone)]
#[command(name = "wsgihost", version, about)]
pub struct Config {
    /// Address to listen on: HOST:PORT (an IP address or a name such as localhost), HOST
    /// (port 8000), [IPv6]:PORT, unix:PATH or fd://N (a listening socket the parent
    /// process passed as descriptor N); repeat for several. Sockets passed by systemd
    /// (LISTEN_FDS) are used instead when present.
    #[arg(
        short,
        long = "bind",
        value_name = "ADDR",
        default_value = "127.0.0.1:8000"
    )]
    pub bind: Vec<BindAddr>,

    /// Connections each listener's kernel queue holds while the workers are busy.
    #[arg(long, value_name = "N", default_value_t = 2048,
          value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub backlog: u32,

    /// Set SO_REUSEPORT on TCP listeners, so another server (a new release, say) can
    /// listen on the same port beside this one.
    #[arg(long)]
    pub reuse_port: bool,

    /// Permissions of unix socket files, in octal.
    #[arg(long, value_name = "MODE", default_value = "660", value_parser = parse::octal_mode)]
    pub unix_mode: u32,

    /// Worker processes; each runs its own interpreter and --threads threads.
    #[arg(short, long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,

    /// gunicorn's worker class: sync (one request at a time per worker, as --threads 1) or
    /// gthread (--threads threads). Either way without --threads, gunicorn's default of 1
    /// thread applies; without this option wsgihost's threads do (see --threads).
    #[arg(short = 'k', long, value_name = "CLASS", value_parser = parse::worker_class)]
    pub worker_class: Option<WorkerClass>,

    /// Directory served as static files at `/` (index.html for directories).
    #[arg(long, value_name = "DIR", default_value = "html")]
    pub html: PathBuf,

    /// Directory of drop-in WSGI scripts: `/NAME.py/...` runs `application` from DIR/NAME.py.
    #[arg(long, value_name = "DIR", default_value = "wsgipython")]
    pub scripts: PathBuf,

    /// Threads per worker for requests that wait (5 ms or more: sleeps, databases, remote
    /// calls). With N of 2 or more, one more thread serves quick requests while all N wait;
    /// with 1, the worker answers one request at a time (for apps that are not thread-safe;
    /// wsgi.multithread is then False). Idle threads sleep.
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: u16,

    /// Largest request body accepted, in bytes (0 = unlimited); larger bodies get 413.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30)]
    pub max_body: u64,

    /// Seconds a client may take to send a complete request head (slowloris guard).
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = parse::seconds, allow_negative_numbers = true)]
    pub header_timeout: f64,

    /// Seconds an idle keep-alive connection is kept open (0: every response closes its
    /// connection).
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = parse::seconds_or_zero, allow_negative_numbers = true)]
    pub keep_alive: f64,

    /// Seconds a blocked read or write of a request or response may wait for the client.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = parse::seconds, allow_negative_numbers = true)]
    pub io_timeout: f64,

    /// Longest request line (method, target, version) in bytes (0 = only the head's
    /// limit); longer gets 414.
    #[arg(long, value_name = "BYTES", default_value_t = HeadLimits::DEFAULT.request_line, value_parser = parse::limit)]
    pub limit_request_line: usize,

    /// Largest request head (all header lines) in bytes; larger gets 431.
    #[arg(long, value_name = "BYTES", default_value_t = HeadLimits::DEFAULT.header_block)]
    pub limit_request_headers: usize,

    /// Longest header field (name and value) in bytes (0 = only the head's limit); longer
    /// gets 431.
    #[arg(long = "limit-request-field-size", visible_alias = "limit-request-field_size",
          value_name = "BYTES", default_value_t = HeadLimits::DEFAULT.field_size,
          value_parser = parse::limit)]
    pub limit_request_field_size: usize,

    /// Most header fields in a request (0 = 32768); more gets 431.
    #[arg(long, value_name = "N", default_value_t = HeadLimits::DEFAULT.fields,
          value_parser = parse::field_count)]
    pub limit_request_fields: usize,

    /// Open connections per worker; accepting pauses at the limit.
    #[arg(
        long,
        visible_alias = "worker-connections",
        value_name = "N",
        default_value_t = 10_000
    )]
    pub max_connections: usize,

    /// Replace a worker after about this many requests (0 = never), without failing any.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_requests: u64,

    /// Add a random 0..=J to --max-requests per worker, so workers do not restart together.
    #[arg(long, value_name = "J", default_value_t = 0)]
    pub max_requests_jitter: u64,

    /// Replace a worker when an app call (or a hook) has not given control back (returned,
    /// yielded a chunk, read or written) for this many seconds; the Python stack of every
    /// request it is serving is logged first, and that request's connection is closed
    /// (0 = never).
    #[arg(short = 't', long, value_name = "SECS", default_value_t = 30.0, value_parser = parse::seconds_or_zero)]
    pub timeout: f64,

    /// Replace a worker, after its current requests, once its RSS passes this many MiB
    /// (0 = never).
    #[arg(long, value_name = "MIB", default_value_t = 0)]
    pub max_rss: u64,

    /// Seconds requests in flight may take to finish on SIGTERM, SIGINT, SIGHUP or recycling.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = parse::seconds_or_zero)]
    pub graceful_timeout: f64,

    /// On SIGTERM, answer readiness probes 503 at once but keep accepting and serving for
    /// this many seconds before draining: the time a load balancer needs to notice.
    #[arg(long, value_name = "SECS", default_value_t = 0.0, value_parser = parse::seconds_or_zero)]
    pub shutdown_delay: f64,

    /// Answer health probes at PREFIX/livez (200 while the master and a worker live) and
    /// PREFIX/readyz (200 while every worker serves, 503 while starting or draining),
    /// in the server itself, without the app; `/` gives /livez and /readyz.
    #[arg(long, value_name = "PREFIX", value_parser = parse::health_prefix)]
    pub health_path: Option<String>,

    /// Write health probes to the access log too (they are left out by default).
    #[arg(long)]
    pub health_access_log: bool,

    /// Import the app once in the master and fork workers from it: faster starts and
    /// memory shared copy-on-write, but SIGHUP and replaced workers keep the code imported
    /// at start (restart to deploy), and the app must not start threads or open
    /// connections at import time.
    #[arg(long)]
    pub preload: bool,

    /// Access log: a file path, - for stdout, or off.
    #[arg(
        long,
        visible_alias = "access-logfile",
        value_name = "FILE|-|off",
        default_value = "-"
    )]
    pub access_log: String,

    /// Access log line format: Apache-style atoms (%h %r %s ...) or gunicorn's (%(h)s
    /// %(r)s %(s)s ...), listed in the README; the default is the Combined Log Format plus
    /// the request time in microseconds.
    #[arg(long, visible_alias = "access-logformat", value_name = "FORMAT",
          default_value = crate::logging::DEFAULT_ACCESS_FORMAT)]
    pub access_log_format: String,

    /// Error log (tracebacks, lifecycle messages): a file path, or - for stderr.
    #[arg(long, visible_aliases = ["error-logfile", "log-file"], value_name = "FILE|-", default_value = "-")]
    pub error_log: String,

    /// Send the app's stdout and stderr (print, sys.stderr) to --error-log too, when that
    /// is a file.
    #[arg(long)]
    pub capture_output: bool,

    /// Format of the error and access logs.
    #[arg(long, value_name = "FORMAT", value_enum, default_value = "text")]
    pub log_format: crate::logging::Format,

    /// Least important error-log messages shown (any case).
    #[arg(
        long,
        value_name = "LEVEL",
        value_enum,
        ignore_case = true,
        default_value = "info"
    )]
    pub log_level: crate::logging::Level,

    /// A logging.config.fileConfig file for the app's Python loggers, applied in the master
    /// before the workers fork.
    #[arg(long, value_name = "FILE")]
    pub log_config: Option<PathBuf>,

    /// A JSON logging.config.dictConfig file for the app's Python loggers, applied like
    /// --log-config.
    #[arg(long, value_name = "FILE")]
    pub log_config_json: Option<PathBuf>,

    /// Send gunicorn's statsd metrics (and wsgihost's saturation gauges) over UDP to
    /// HOST:PORT (port 8125 when left out), or to unix:PATH.
    #[arg(long, value_name = "ADDR", value_parser = parse::statsd_addr)]
    pub statsd_host: Option<StatsdAddr>,

    /// Prefix of every statsd metric name (a '.' is added).
    #[arg(long, value_name = "PREFIX", default_value = "")]
    pub statsd_prefix: String,

    /// Datadog tags appended to every statsd metric, e.g. env:prod,service:web.
    #[arg(long, value_name = "TAGS", default_value = "")]
    pub dogstatsd_tags: String,

    /// Also send the listeners' accept-queue depth to statsd as gunicorn.backlog.
    #[arg(long)]
    pub enable_backlog_metric: bool,

    /// Peers whose X-Forwarded-For / X-Forwarded-Proto / Forwarded headers set REMOTE_ADDR
    /// and wsgi.url_scheme: comma-separated IP addresses or networks (10.0.0.0/8), or *
    /// for any (unix sockets: always).
    #[arg(long, value_name = "IPS", default_value = "127.0.0.1,::1")]
    pub forwarded_allow_ips: TrustedProxies,

    /// Read the PROXY protocol header (HAProxy's; v1, v2 or auto for either; the flag
    /// alone is auto) that a TCP balancer sends first: it sets REMOTE_ADDR, REMOTE_PORT
    /// and, from v2's SSL field, wsgi.url_scheme. Peers in --proxy-allow-from must send
    /// one; from others a header is refused. A refused, malformed or missing header closes
    /// the connection before any request.
    #[arg(long, value_name = "VERSION", default_value = "off", num_args = 0..=1,
          default_missing_value = "auto", value_parser = parse::proxy_protocol)]
    pub proxy_protocol: parse::ProxyProtocol,

    /// Peers that send the PROXY protocol header (with --proxy-protocol): comma-separated
    /// IP addresses or networks, or * for any (unix sockets: always).
    #[arg(long, value_name = "IPS", default_value = "127.0.0.1,::1")]
    pub proxy_allow_from: TrustedProxies,

    /// Headers (HEADER=VALUE, comma-separated) with which a trusted proxy says the client
    /// used HTTPS, as gunicorn's secure_scheme_headers.
    #[arg(
        long,
        value_name = "HEADERS",
        default_value = "X-FORWARDED-PROTOCOL=ssl,X-FORWARDED-PROTO=https,X-FORWARDED-SSL=on"
    )]
    pub secure_scheme_headers: SchemeHeaders,

    /// Certificate chain (PEM) for HTTPS: with --keyfile, TCP listeners speak TLS (except
    /// those given as http://HOST:PORT); SIGHUP re-reads both.
    #[arg(long, value_name = "PEM")]
    pub certfile: Option<PathBuf>,

    /// Private key (PEM: RSA, ECDSA or Ed25519) of --certfile.
    #[arg(long, value_name = "PEM")]
    pub keyfile: Option<PathBuf>,

    /// CA certificates (PEM) that client certificates must chain to (see --cert-reqs).
    #[arg(long, value_name = "PEM")]
    pub ca_certs: Option<PathBuf>,

    /// Client certificates: none (not asked for), optional (verified when given) or
    /// required (or gunicorn's 0, 1, 2); the app sees SSL_CLIENT_S_DN and SSL_CLIENT_CERT.
    #[arg(long, value_name = "WHEN", value_enum, default_value = "none")]
    pub cert_reqs: crate::net::tls::ClientCerts,

    /// Serve Prometheus metrics (per worker and summed) on this address, from the master.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,

    /// Show Python tracebacks on 500 pages (never use in production).
    #[arg(long)]
    pub debug: bool,

    /// Mount a WSGI application at a URL prefix, URL=APP (e.g. /api=api.wsgi:app); repeatable.
    #[arg(long = "mount", value_name = "URL=APP", value_parser = parse::mount)]
    pub mounts: Vec<(String, String)>,

    /// Serve a folder of static files at a URL prefix, URL=DIR (e.g. /static=staticfiles);
    /// repeatable.
    #[arg(long = "static", value_name = "URL=DIR", value_parser = parse::static_dir)]
    pub statics: Vec<(String, PathBuf)>,

    /// Change to this directory before loading anything (it is then first on sys.path).
    #[arg(long, value_name = "DIR")]
    pub chdir: Option<PathBuf>,

    /// Add directories to sys.path (after the working directory): repeatable, or
    /// comma-separated as gunicorn takes them.
    #[arg(long, value_name = "DIR", value_delimiter = ',')]
    pub pythonpath: Vec<PathBuf>,

    /// Set an environment variable before the app is imported, KEY=VALUE; repeatable
    /// (e.g. DJANGO_SETTINGS_MODULE=mysite.settings).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = parse::env)]
    pub env_vars: Vec<(String, String)>,

    /// Virtualenv whose packages the app uses (its Python version must match the embedded
    /// one); defaults to $VIRTUAL_ENV.
    #[arg(long, value_name = "DIR", env = "VIRTUAL_ENV")]
    pub venv: Option<PathBuf>,

    /// Restart the workers when a .py file under the working directory or --pythonpath
    /// changes (for development); a change that breaks the import keeps the old workers.
    #[arg(long)]
    pub reload: bool,

    /// With --reload, also restart the workers when this file changes (templates,
    /// settings); repeatable.
    #[arg(long = "reload-extra-file", value_name = "FILE")]
    pub reload_extra_files: Vec<PathBuf>,

    /// The name in process titles (ps, top): `wsgihost: master [NAME]`, `wsgihost: worker
    /// [NAME]`.
    #[arg(short = 'n', long, value_name = "NAME")]
    pub name: Option<String>,

    /// Write the master's PID to this file (removed when it stops).
    #[arg(short = 'p', long = "pid", value_name = "FILE")]
    pub pidfile: Option<PathBuf>,

    /// Run the workers as this user (a name or a uid), after the master has bound the
    /// listeners; the master keeps its own user (to re-read certificates on SIGHUP).
    #[arg(short = 'u', long, value_name = "USER", value_parser = parse::user)]
    pub user: Option<parse::Account>,

    /// Run the workers with this group (a name or a gid); with --user alone, that user's
    /// group.
    #[arg(short = 'g', long, value_name = "GROUP", value_parser = parse::group)]
    pub group: Option<u32>,

    /// Also give the workers every group --user belongs to.
    #[arg(long)]
    pub initgroups: bool,

    /// File mode creation mask of the server and its workers (log, pid and socket files,
    /// and what the app writes), as gunicorn reads it: 022 is octal, 18 decimal. Without
    /// --unix-mode, unix sockets get 777 minus it, as in gunicorn.
    #[arg(short = 'm', long, value_name = "MASK", value_parser = parse::umask)]
    pub umask: Option<u32>,

    /// WSGI application mounted at `/`: `module:callable`, `module` (its `application`,
    /// else `app`) or a factory `module:create_app()` / `module:create_app('arg')`, imported
    /// from the working directory. Static files and scripts are then served only when
    /// --html or --scripts are given.
    #[arg(value_name = "APP", value_parser = parse::app_spec)]
    pub app: Option<String>,

    /// A configuration file: gunicorn's Python format (settings as module-level names,
    /// server hooks as functions; gunicorn.conf.py) or TOML (keys are the long flag names;
    /// wsgihost.toml). ./gunicorn.conf.py or ./wsgihost.toml is read when present.
    /// Precedence: command line > environment (WSGIHOST_<OPTION>, GUNICORN_CMD_ARGS) > file
    /// > defaults.
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Check the configuration: import the app in a child process, report what is wrong
    /// (exit 1) or would have no effect, and exit.
    #[arg(long)]
    pub check_config: bool,

    /// Print the effective configuration as TOML (each value's source in a comment), then
    /// check it as --check-config does.
    #[arg(long)]
    pub print_config: bool,

    /// Print the option reference as Markdown (for the README) and exit.
    #[arg(long, hide = true)]
    pub config_reference: bool,

    /// Print the table of gunicorn's settings as Markdown (for the README) and exit.
    #[arg(long, hide = true)]
    pub gunicorn_reference: bool,

    /// Where the configuration came from: what was read and how each option was set.
    #[arg(skip)]
    pub origin: Origin,
}

/// What reading the configuration found out besides the options' values.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The configuration file read, if any, and whether it was Python.
    pub file: Option<PathBuf>,
    pub python_file: bool,
    /// Every option's value as text and where it came from.
    pub effective: Vec<Effective>,
    /// Warnings about settings that have no effect, to log at start.
    pub warnings: Vec<String>,
    /// Server hooks the Python file defines.
    pub hooks: Vec<String>,
    /// Whether --html / --scripts / --threads were given (not defaults).
    pub html_given: bool,
    pub scripts_given: bool,
    /// Whether --venv came from $VIRTUAL_ENV rather than a flag or the file.
    pub venv_from_environment: bool,
}

impl Config {
    /// Parses arguments (the first is the program name), reading configuration files from
    /// disk. Err: a bad flag or setting, named in one line.
    pub fn parse_args(args: Vec<OsString>) -> Result<Parsed, UsageError> {
        sources::load(args, &python_file::Disk).map_err(UsageError)
    }

    /// The configuration these arguments give; for tests, which pass valid ones.
    #[cfg(test)]
    pub fn parse_from_iter<const N: usize>(args: [&str; N]) -> Config {
        let args = args.into_iter().map(OsString::from).collect();
        match Config::parse_args(args) {
            Ok(Parsed::Run(config)) => *config,
            Ok(Parsed::Print(text)) => panic!("printed instead of running: {text}"),
            Err(err) => panic!("{err}"),
        }
    }

    /// Parses arguments, reading configuration files through `files`. Err: the one line
    /// that names what is wrong (for a Python file that raised, the traceback follows it).
    pub fn try_parse(args: Vec<OsString>, files: &dyn sources::Files) -> Result<Parsed, String> {
        sources::load(args, files)
    }

    /// Checks what clap cannot: values that depend on each other and on the machine.
    fn checked(mut self) -> Result<Config, String> {
        if let Some(host) = crate::wsgi::interpreter::host() {
            self.venv = match self.venv.take() {
                Some(venv) => host_venv(host, venv, self.origin.venv_from_environment)?,
                None => None,
            };
        }
        if let Some(dir) = &self.chdir
            && !dir.is_dir()
        {
            return Err(format!("--chdir {}: no such directory", dir.display()));
        }
        match (&self.certfile, &self.keyfile) {
            (Some(_), None) => return Err("--certfile needs --keyfile".into()),
            (None, Some(_)) => return Err("--keyfile needs --certfile".into()),
            _ => {}
        }
        let https = self
            .bind
            .iter()
            .find(|addr| addr.scheme() == Some(Scheme::Https));
        if let (Some(addr), None) = (https, &self.certfile) {
            return Err(format!("--bind {addr} needs --certfile and --keyfile"));
        }
        if let Some(venv) = &self.venv
            && !venv.join("pyvenv.cfg").is_file()
        {
            return Err(format!(
                "--venv {}: not a virtualenv (no pyvenv.cfg); create one with python3 -m venv",
                venv.display()
            ));
        }
        if let Some(mask) = self.umask
            && !self.given("unix-mode")
        {
            self.unix_mode = 0o777 & !mask;
        }
        if self.worker_class.is_some() && !self.given("threads") {
            // gunicorn's default: one thread per worker.
            self.threads = 1;
        }
        if self.worker_class == Some(WorkerClass::Sync) && self.threads > 1 {
            self.origin.warnings.push(format!(
                "worker class sync with --threads {}: gunicorn then runs gthread, and so does wsgihost",
                self.threads
            ));
        }
        Ok(self)
    }

    /// Whether the option with this long name was set (not its default).
    pub fn given(&self, long: &str) -> bool {
        self.origin
            .effective
            .iter()
            .any(|e| e.key == long && e.source != Source::Default)
    }

    /// The TLS files, when --certfile and --keyfile are given.
    pub fn tls_files(&self) -> Option<crate::net::tls::TlsFiles> {
        Some(crate::net::tls::TlsFiles {
            certfile: self.certfile.clone()?,
            keyfile: self.keyfile.clone()?,
            ca_certs: self.ca_certs.clone(),
            client_certs: self.cert_reqs,
        })
    }

    /// Static folders to serve: (URL prefix, folder); --html at the root unless an APP
    /// took it and --html was not given.
    pub fn static_rows(&self) -> Vec<(String, PathBuf)> {
        let mut rows = self.statics.clone();
        if self.app.is_none() || self.origin.html_given {
            rows.push((String::new(), self.html.clone()));
        }
        rows
    }

    /// Whether `/NAME.py` runs drop-in scripts (by default, or when --scripts is given).
    pub fn serves_scripts(&self) -> bool {
        self.app.is_none() || self.origin.scripts_given
    }

    /// The mount table in words, for the start-up banner.
    pub fn describe_mounts(&self) -> String {
        let show = |prefix: &str| {
            if prefix.is_empty() {
                "/".to_string()
            } else {
                prefix.to_string()
            }
        };
        let mut rows: Vec<String> = self
            .app_mounts()
            .iter()
            .map(|(prefix, spec)| format!("{} -> app {spec}", show(prefix)))
            .collect();
        rows.extend(
            self.static_rows()
                .iter()
                .map(|(prefix, dir)| format!("{} -> static {}", show(prefix), dir.display())),
        );
        if self.serves_scripts() {
            rows.push(format!("/NAME.py -> scripts {}", self.scripts.display()));
        }
        rows.join("; ")
    }

    /// Every application to load: (URL prefix, spec), the positional APP at "".
    pub fn app_mounts(&self) -> Vec<(String, String)> {
        let root = self.app.iter().map(|spec| (String::new(), spec.clone()));
        root.chain(self.mounts.iter().cloned()).collect()
    }

    /// Whether the master needs an interpreter of its own: to run a Python configuration
    /// file's hooks, to preload the app, or to configure Python's logging for the workers
    /// to inherit.
    pub fn master_runs_python(&self) -> bool {
        self.origin.python_file
            || self.preload
            || self.log_config.is_some()
            || self.log_config_json.is_some()
    }

    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.header_timeout)
    }
    pub fn keep_alive(&self) -> Duration {
        Duration::from_secs_f64(self.keep_alive)
    }
    /// Threads each worker runs: --threads for requests that may wait, plus one kept for
    /// quick requests while all of those wait (none extra with --threads 1).
    pub fn worker_threads(&self) -> usize {
        match self.threads {
            1 => 1,
            n => n as usize + 1,
        }
    }
    pub fn io_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.io_timeout)
    }
    pub fn graceful_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.graceful_timeout)
    }

    pub fn shutdown_delay(&self) -> Duration {
        Duration::from_secs_f64(self.shutdown_delay)
    }
    /// None when --timeout is 0 (off).
    pub fn app_timeout(&self) -> Option<Duration> {
        (self.timeout > 0.0).then(|| Duration::from_secs_f64(self.timeout))
    }
    pub fn head_limits(&self) -> HeadLimits {
        HeadLimits {
            request_line: self.limit_request_line,
            header_block: self.limit_request_headers,
            field_size: self.limit_request_field_size,
            fields: self.limit_request_fields,
        }
    }
}

/// The pip-installed command runs in the Python environment that installed it: a --venv
/// naming another one is refused (one line, exit 2); an activated venv ($VIRTUAL_ENV) that
/// is not this one is only warned about, as `python` itself ignores it. Ok(None): the
/// environment is the running interpreter's.
fn host_venv(
    host: &crate::wsgi::interpreter::Host,
    venv: PathBuf,
    from_environment: bool,
) -> Result<Option<PathBuf>, String> {
    let same = |a: &Path, b: &Path| {
        a.canonicalize()
            .ok()
            .is_some_and(|a| b.canonicalize().ok() == Some(a))
    };
    if same(&venv, &host.prefix) {
        return Ok(None);
    }
    if from_environment {
        eprintln!(
            "wsgihost: warning: $VIRTUAL_ENV is {}, but this wsgihost runs in {} (its own Python environment)",
            venv.display(),
            host.prefix.display()
        );
        return Ok(None);
    }
    Err(format!(
        "--venv {}: this wsgihost was installed into {} and runs there; install it into the other venv and run its wsgihost instead",
        venv.display(),
        host.prefix.display()
    ))
}

/// A bad flag or setting, found while starting: one line naming it, and exit code 2 (see
/// `report_usage`). Errors inside carry it through anyhow; the command line turns it into
/// that line.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Prints the usage error's line and returns exit code 2 (the convention for usage errors).
pub fn report_usage(err: &UsageError) -> i32 {
    match err.0.split_once('\n') {
        // A Python configuration file that raised: its line, then the traceback.
        Some((line, traceback)) => eprintln!("wsgihost: {line}\n{traceback}"),
        None => eprintln!("wsgihost: {} (see wsgihost --help)", err.0),
    }
    2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let config = Config::parse_from_iter(["wsgihost"]);
        assert_eq!(
            config.bind,
            vec![BindAddr::Tcp(
                "127.0.0.1:8000".parse().unwrap(),
                Scheme::Default
            )]
        );
        assert_eq!(config.workers, 1);
        assert_eq!(config.unix_mode, 0o660);
        assert_eq!(config.threads, 8);
        assert_eq!(config.html, PathBuf::from("html"));
    }
}
