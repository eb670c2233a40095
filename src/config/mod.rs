//! Command-line flags and their validation. Every flag states its default in `--help`.
//! `file` adds the other sources: the TOML file and `WSGIHOST_*` variables.
pub mod file;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::parser::ValueSource;
use clap::{FromArgMatches, Parser};

use crate::http::forwarded::TrustedProxies;
use crate::http::request::HeadLimits;
use crate::server::listeners::BindAddr;

/// What a command line asks for.
pub enum Parsed {
    Run(Box<Config>),
    /// --help, --version, --check-config, --config-reference: print this, exit 0.
    Print(String),
}

/// wsgihost: an HTTP/1.1 server that runs Python WSGI applications in an embedded CPython.
#[derive(Parser, Debug, Clone)]
#[command(name = "wsgihost", version, about)]
pub struct Config {
    /// Address to listen on: HOST:PORT, [IPv6]:PORT, unix:PATH or fd://N (a listening
    /// socket the parent process passed as descriptor N); repeat for several. Sockets
    /// passed by systemd (LISTEN_FDS) are used instead when present.
    #[arg(
        short,
        long = "bind",
        value_name = "ADDR",
        default_value = "127.0.0.1:8000"
    )]
    pub bind: Vec<BindAddr>,

    /// Permissions of unix socket files, in octal.
    #[arg(long, value_name = "MODE", default_value = "660", value_parser = parse_octal_mode)]
    pub unix_mode: u32,

    /// Worker processes; each runs its own interpreter and --threads threads.
    #[arg(short, long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,

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
    #[arg(short, long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: u16,

    /// Largest request body accepted, in bytes (0 = unlimited); larger bodies get 413.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30)]
    pub max_body: u64,

    /// Seconds a client may take to send a complete request head (slowloris guard).
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = parse_seconds, allow_negative_numbers = true)]
    pub header_timeout: f64,

    /// Seconds an idle keep-alive connection is kept open.
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = parse_seconds, allow_negative_numbers = true)]
    pub keep_alive: f64,

    /// Seconds a blocked read or write of a request or response may wait for the client.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = parse_seconds, allow_negative_numbers = true)]
    pub io_timeout: f64,

    /// Longest request line (method, target, version) in bytes; longer gets 414.
    #[arg(long, value_name = "BYTES", default_value_t = HeadLimits::DEFAULT.request_line)]
    pub limit_request_line: usize,

    /// Largest request head (all header lines) in bytes; larger gets 431.
    #[arg(long, value_name = "BYTES", default_value_t = HeadLimits::DEFAULT.header_block)]
    pub limit_request_headers: usize,

    /// Longest header field (name and value) in bytes; longer gets 431 (as gunicorn's
    /// --limit-request-field_size).
    #[arg(long = "limit-request-field-size", value_name = "BYTES",
          default_value_t = HeadLimits::DEFAULT.field_size,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    pub limit_request_field_size: usize,

    /// Most header fields in a request; more gets 431 (as gunicorn's
    /// --limit-request-fields).
    #[arg(long, value_name = "N", default_value_t = HeadLimits::DEFAULT.fields,
          value_parser = clap::value_parser!(u16).range(1..=32768).map(|n| n as usize))]
    pub limit_request_fields: usize,

    /// Open connections per worker; accepting pauses at the limit.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Replace a worker after about this many requests (0 = never), without failing any.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_requests: u64,

    /// Add a random 0..=J to --max-requests per worker, so workers do not restart together.
    #[arg(long, value_name = "J", default_value_t = 0)]
    pub max_requests_jitter: u64,

    /// Replace a worker when an app call has not given control back (returned, yielded a
    /// chunk, read or written) for this many seconds; that request's connection is closed
    /// (0 = never).
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = parse_seconds_or_zero)]
    pub timeout: f64,

    /// Replace a worker, after its current requests, once its RSS passes this many MiB
    /// (0 = never).
    #[arg(long, value_name = "MIB", default_value_t = 0)]
    pub max_rss: u64,

    /// Seconds requests in flight may take to finish on SIGTERM, SIGINT, SIGHUP or recycling.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = parse_seconds)]
    pub graceful_timeout: f64,

    /// Import the app once in the master and fork workers from it: faster starts and
    /// memory shared copy-on-write, but SIGHUP and replaced workers keep the code imported
    /// at start (restart to deploy), and the app must not start threads or open
    /// connections at import time.
    #[arg(long)]
    pub preload: bool,

    /// Access log: a file path, - for stdout, or off.
    #[arg(long, value_name = "FILE|-|off", default_value = "-")]
    pub access_log: String,

    /// Access log line format (atoms in the README); the default is the Combined Log
    /// Format plus the request time in microseconds.
    #[arg(long, value_name = "FORMAT", default_value = crate::logging::DEFAULT_ACCESS_FORMAT)]
    pub access_log_format: String,

    /// Format of the error and access logs.
    #[arg(long, value_name = "FORMAT", value_enum, default_value = "text")]
    pub log_format: crate::logging::Format,

    /// Least important error-log messages shown.
    #[arg(long, value_name = "LEVEL", value_enum, default_value = "info")]
    pub log_level: crate::logging::Level,

    /// Peers whose X-Forwarded-For / X-Forwarded-Proto / Forwarded headers set REMOTE_ADDR
    /// and wsgi.url_scheme: comma-separated IPs, or * for any (unix sockets: always).
    #[arg(long, value_name = "IPS", default_value = "127.0.0.1,::1")]
    pub forwarded_allow_ips: TrustedProxies,

    /// Certificate chain (PEM) for HTTPS: with --keyfile, TCP listeners speak TLS (except
    /// those given as http://HOST:PORT); SIGHUP re-reads both.
    #[arg(long, value_name = "PEM", requires = "keyfile")]
    pub certfile: Option<PathBuf>,

    /// Private key (PEM: RSA, ECDSA or Ed25519) of --certfile.
    #[arg(long, value_name = "PEM", requires = "certfile")]
    pub keyfile: Option<PathBuf>,

    /// CA certificates (PEM) that client certificates must chain to (see --cert-reqs).
    #[arg(long, value_name = "PEM")]
    pub ca_certs: Option<PathBuf>,

    /// Client certificates: none (not asked for), optional (verified when given) or
    /// required; the app sees SSL_CLIENT_S_DN and SSL_CLIENT_CERT.
    #[arg(long, value_name = "WHEN", value_enum, default_value = "none")]
    pub cert_reqs: crate::net::tls::ClientCerts,

    /// Serve Prometheus metrics (per worker and summed) on this address, from the master.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,

    /// Show Python tracebacks on 500 pages (never use in production).
    #[arg(long)]
    pub debug: bool,

    /// Mount a WSGI application at a URL prefix, URL=APP (e.g. /api=api.wsgi:app); repeatable.
    #[arg(long = "mount", value_name = "URL=APP", value_parser = parse_mount)]
    pub mounts: Vec<(String, String)>,

    /// Serve a folder of static files at a URL prefix, URL=DIR (e.g. /static=staticfiles);
    /// repeatable.
    #[arg(long = "static", value_name = "URL=DIR", value_parser = parse_static)]
    pub statics: Vec<(String, PathBuf)>,

    /// Change to this directory before loading anything (it is then first on sys.path).
    #[arg(long, value_name = "DIR")]
    pub chdir: Option<PathBuf>,

    /// Add a directory to sys.path (after the working directory); repeatable.
    #[arg(long, value_name = "DIR")]
    pub pythonpath: Vec<PathBuf>,

    /// Set an environment variable before the app is imported, KEY=VALUE; repeatable
    /// (e.g. DJANGO_SETTINGS_MODULE=mysite.settings).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env_vars: Vec<(String, String)>,

    /// Virtualenv whose packages the app uses (its Python version must match the embedded
    /// one); defaults to $VIRTUAL_ENV.
    #[arg(long, value_name = "DIR", env = "VIRTUAL_ENV")]
    pub venv: Option<PathBuf>,

    /// Restart the workers when a .py file under the working directory or --pythonpath
    /// changes (for development); a change that breaks the import keeps the old workers.
    #[arg(long)]
    pub reload: bool,

    /// WSGI application mounted at `/`: `module:callable`, `module` (its `application`,
    /// else `app`) or a factory `module:create_app()` / `module:create_app('arg')`, imported
    /// from the working directory. Static files and scripts are then served only when
    /// --html or --scripts are given.
    #[arg(value_name = "APP", value_parser = parse_app_spec)]
    pub app: Option<String>,

    /// A TOML file with any of these options (keys are the long flag names); ./wsgihost.toml
    /// is read when present. Command line > WSGIHOST_<OPTION> environment > file > defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Validate the configuration, print the effective settings and exit.
    #[arg(long)]
    pub check_config: bool,

    /// Print the configuration reference as Markdown (for the README) and exit.
    #[arg(long, hide = true)]
    pub config_reference: bool,

    /// Whether --html / --scripts were given on the command line (they then serve beside APP).
    #[arg(skip)]
    pub html_given: bool,
    #[arg(skip)]
    pub scripts_given: bool,
    /// Whether --venv came from $VIRTUAL_ENV rather than a flag or the file.
    #[arg(skip)]
    pub venv_from_environment: bool,
}

fn parse_seconds_or_zero(text: &str) -> Result<f64, String> {
    if text.parse::<f64>() == Ok(0.0) {
        return Ok(0.0);
    }
    parse_seconds(text)
}

fn parse_octal_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|mode| *mode <= 0o777)
        .ok_or_else(|| format!("expected an octal mode such as 660, got '{text}'"))
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs.is_finite() && secs < 1e7 => Ok(secs),
        _ => Err(format!(
            "expected a positive number of seconds, got '{text}'"
        )),
    }
}

impl Config {
    /// Parses the process arguments; a bad flag prints one line and exits with code 2.
    pub fn from_args() -> Config {
        Self::parse_from_iter(std::env::args_os())
    }

    /// Parses arguments (the first is the program name). A bad flag prints one line and
    /// exits with code 2; --help, --version, --check-config and --config-reference print
    /// and exit with code 0.
    pub fn parse_from_iter<I, T>(args: I) -> Config
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args = args.into_iter().map(Into::into).collect();
        match Config::try_parse(args, &|path| std::fs::read_to_string(path)) {
            Ok(Parsed::Run(config)) => *config,
            Ok(Parsed::Print(text)) => {
                print!("{text}");
                std::process::exit(0)
            }
            Err(message) => usage_error(&message),
        }
    }

    /// Parses arguments, reading a configuration file with `read_file`. Err: the one line
    /// that names what is wrong.
    pub fn try_parse(
        args: Vec<OsString>,
        read_file: &dyn Fn(&Path) -> std::io::Result<String>,
    ) -> Result<Parsed, String> {
        let command = file::command();
        let failed = |err: clap::Error| match err.use_stderr() {
            true => Err(first_line(&err.to_string())),
            false => Ok(Parsed::Print(err.to_string())),
        };
        let mut matches = match command.clone().try_get_matches_from(&args) {
            Ok(matches) => matches,
            Err(err) => return failed(err),
        };
        let file = matches.get_one::<PathBuf>("config").cloned().or_else(|| {
            let default = PathBuf::from("wsgihost.toml");
            default.is_file().then_some(default)
        });
        if let Some(file) = file {
            let text =
                read_file(&file).map_err(|err| format!("--config {}: {err}", file.display()))?;
            let from_file = file::file_arguments(&file, &text, &matches, &command)?;
            let merged = args
                .iter()
                .take(1)
                .cloned()
                .chain(from_file)
                .chain(args.iter().skip(1).cloned());
            matches = match command.clone().try_get_matches_from(merged) {
                Ok(matches) => matches,
                Err(err) => return failed(err),
            };
        }
        let mut config = match Config::from_arg_matches(&matches) {
            Ok(config) => config,
            Err(err) => return failed(err),
        };
        let given = |id| {
            !matches!(
                matches.value_source(id),
                Some(ValueSource::DefaultValue) | None
            )
        };
        config.html_given = given("html");
        config.scripts_given = given("scripts");
        config.venv_from_environment =
            matches.value_source("venv") == Some(ValueSource::EnvVariable);
        if config.config_reference {
            return Ok(Parsed::Print(file::reference(&command)));
        }
        let config = config.checked()?;
        if config.check_config {
            return Ok(Parsed::Print(file::effective(&matches, &command)));
        }
        Ok(Parsed::Run(Box::new(config)))
    }

    fn checked(mut self) -> Result<Config, String> {
        if let Some(host) = crate::wsgi::interpreter::host() {
            self.venv = match self.venv.take() {
                Some(venv) => host_venv(host, venv, self.venv_from_environment)?,
                None => None,
            };
        }
        if let Some(dir) = &self.chdir
            && !dir.is_dir()
        {
            return Err(format!("--chdir {}: no such directory", dir.display()));
        }
        let https = self.bind.iter().find(|addr| {
            matches!(
                addr,
                BindAddr::Tcp(_, crate::server::listeners::Scheme::Https)
            )
        });
        if let (Some(BindAddr::Tcp(addr, _)), None) = (https, &self.certfile) {
            return Err(format!(
                "--bind https://{addr} needs --certfile and --keyfile"
            ));
        }
        if let Some(venv) = &self.venv
            && !venv.join("pyvenv.cfg").is_file()
        {
            return Err(format!(
                "--venv {}: not a virtualenv (no pyvenv.cfg); create one with python3 -m venv",
                venv.display()
            ));
        }
        Ok(self)
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
        if self.app.is_none() || self.html_given {
            rows.push((String::new(), self.html.clone()));
        }
        rows
    }

    /// Whether `/NAME.py` runs drop-in scripts (by default, or when --scripts is given).
    pub fn serves_scripts(&self) -> bool {
        self.app.is_none() || self.scripts_given
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
    /// None when --timeout is 0 (off).
    pub fn app_timeout(&self) -> Option<Duration> {
        (self.timeout > 0.0).then(|| Duration::from_secs_f64(self.timeout))
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

fn is_dotted_name(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|part| {
            part.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_alphanumeric() || c == '_')
        })
}

/// `module`, `module:name` or `module:factory(args)`; the arguments are checked by Python.
fn is_app_spec(spec: &str) -> bool {
    let (module, target) = spec.split_once(':').unwrap_or((spec, "application"));
    let name = match target.split_once('(') {
        Some((name, args)) => args.ends_with(')').then_some(name),
        None => Some(target),
    };
    is_dotted_name(module) && name.is_some_and(is_dotted_name)
}

fn parse_app_spec(text: &str) -> Result<String, String> {
    if is_app_spec(text) {
        Ok(text.to_string())
    } else {
        Err(format!(
            "'{text}' is not an application: use module:callable, module or module:factory() (e.g. myapp:application)"
        ))
    }
}

/// A URL prefix: starts with '/', no trailing '/' (the root is "").
fn url_prefix(text: &str) -> Result<String, String> {
    if !text.starts_with('/') {
        return Err(format!("URL prefix '{text}' must start with '/'"));
    }
    Ok(text.trim_end_matches('/').to_string())
}

fn parse_mount(text: &str) -> Result<(String, String), String> {
    let (url, spec) = text
        .split_once('=')
        .ok_or(format!("'{text}' is not URL=APP (e.g. /api=api:app)"))?;
    Ok((url_prefix(url)?, parse_app_spec(spec)?))
}

fn parse_static(text: &str) -> Result<(String, PathBuf), String> {
    let (url, dir) = text.split_once('=').ok_or(format!(
        "'{text}' is not URL=DIR (e.g. /static=staticfiles)"
    ))?;
    if dir.is_empty() {
        return Err(format!("'{text}' names no directory"));
    }
    Ok((url_prefix(url)?, PathBuf::from(dir)))
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() && !key.contains('\0') && !value.contains('\0') => {
            Ok((key.to_string(), value.to_string()))
        }
        _ => Err(format!("'{text}' is not KEY=VALUE")),
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("invalid arguments");
    line.trim_start_matches("error: ").to_string()
}

/// One line naming the problem, then exit code 2 (the convention for usage errors).
pub fn usage_error(message: &str) -> ! {
    eprintln!("wsgihost: {message} (see wsgihost --help)");
    std::process::exit(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_spec_shapes() {
        assert!(is_app_spec("app:app"));
        assert!(is_app_spec("mysite.wsgi:application"));
        assert!(is_app_spec("app"));
        assert!(is_app_spec("app:create_app()"));
        assert!(is_app_spec("app:create_app('x', debug=True)"));
        assert!(!is_app_spec("app:create_app("));
        assert!(!is_app_spec("app:"));
        assert_eq!(parse_mount("/api/=a:b"), Ok(("/api".into(), "a:b".into())));
        assert!(parse_mount("api=a:b").is_err());
        assert_eq!(
            parse_static("/static=s"),
            Ok(("/static".into(), PathBuf::from("s")))
        );
        assert_eq!(parse_env("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert!(!is_app_spec("1app:x"));
        assert!(!is_app_spec("a/b:x"));
    }

    #[test]
    fn defaults() {
        let config = Config::parse_from_iter(["wsgihost"]);
        assert_eq!(
            config.bind,
            vec![BindAddr::Tcp(
                "127.0.0.1:8000".parse().unwrap(),
                crate::server::listeners::Scheme::Default
            )]
        );
        assert_eq!(config.workers, 1);
        assert_eq!(config.unix_mode, 0o660);
        assert_eq!(config.threads, 8);
        assert_eq!(config.html, PathBuf::from("html"));
    }
}
