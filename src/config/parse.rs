//! Parsers of single option values; each error names what was expected.
use std::path::PathBuf;

pub fn seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs.is_finite() && secs < 1e7 => Ok(secs),
        _ => Err(format!(
            "expected a positive number of seconds, got '{text}'"
        )),
    }
}

pub fn seconds_or_zero(text: &str) -> Result<f64, String> {
    if text.trim().parse::<f64>() == Ok(0.0) {
        return Ok(0.0);
    }
    seconds(text)
}

/// A health probe prefix: a path (`/`, `/-/health`), kept without its trailing slash.
pub fn health_prefix(text: &str) -> Result<String, String> {
    if !text.starts_with('/') || text.contains(['?', '#', ' ']) {
        return Err(format!("'{text}' is not a path (e.g. / or /-/health)"));
    }
    Ok(text.trim_end_matches('/').to_string())
}

/// `--proxy-protocol`: the header versions read (None: off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyProtocol(pub Option<crate::net::proxy_protocol::Versions>);

pub fn proxy_protocol(text: &str) -> Result<ProxyProtocol, String> {
    use crate::net::proxy_protocol::Versions;
    match text.to_ascii_lowercase().as_str() {
        "off" | "false" => Ok(ProxyProtocol(None)),
        "v1" => Ok(ProxyProtocol(Some(Versions::V1))),
        "v2" => Ok(ProxyProtocol(Some(Versions::V2))),
        "auto" | "true" => Ok(ProxyProtocol(Some(Versions::Any))),
        _ => Err(format!("expected off, v1, v2 or auto, got '{text}'")),
    }
}

pub fn octal_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|mode| *mode <= 0o777)
        .ok_or_else(|| format!("expected an octal mode such as 660, got '{text}'"))
}

/// gunicorn's umask: decimal, `0o22` / `0x12`, or octal with a leading zero (`022`).
pub fn umask(text: &str) -> Result<u32, String> {
    let text = text.trim();
    let parsed = if let Some(hex) = text.strip_prefix("0x").or(text.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16)
    } else if let Some(octal) = text.strip_prefix("0o").or(text.strip_prefix("0O")) {
        u32::from_str_radix(octal, 8)
    } else if text.len() > 1 && text.starts_with('0') {
        u32::from_str_radix(&text[1..], 8)
    } else {
        text.parse()
    };
    parsed
        .ok()
        .filter(|mask| *mask <= 0o777)
        .ok_or_else(|| format!("expected a umask such as 022 (octal) or 18, got '{text}'"))
}

/// A size limit where 0 means none (gunicorn's convention for its request limits).
pub fn limit(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Ok(usize::MAX),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "expected a number of bytes (0 = no limit), got '{text}'"
        )),
    }
}

/// `--limit-request-fields`: 1..=32768, and 0 for gunicorn's most (32768).
pub fn field_count(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Ok(32768),
        Ok(n) if n <= 32768 => Ok(n),
        _ => Err(format!("expected 0 to 32768 header fields, got '{text}'")),
    }
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
pub fn is_app_spec(spec: &str) -> bool {
    let (module, target) = spec.split_once(':').unwrap_or((spec, "application"));
    let name = match target.split_once('(') {
        Some((name, args)) => args.ends_with(')').then_some(name),
        None => Some(target),
    };
    is_dotted_name(module) && name.is_some_and(is_dotted_name)
}

pub fn app_spec(text: &str) -> Result<String, String> {
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

pub fn mount(text: &str) -> Result<(String, String), String> {
    let (url, spec) = text
        .split_once('=')
        .ok_or(format!("'{text}' is not URL=APP (e.g. /api=api:app)"))?;
    Ok((url_prefix(url)?, app_spec(spec)?))
}

pub fn static_dir(text: &str) -> Result<(String, PathBuf), String> {
    let (url, dir) = text.split_once('=').ok_or(format!(
        "'{text}' is not URL=DIR (e.g. /static=staticfiles)"
    ))?;
    if dir.is_empty() {
        return Err(format!("'{text}' names no directory"));
    }
    Ok((url_prefix(url)?, PathBuf::from(dir)))
}

pub fn env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() && !key.contains('\0') && !value.contains('\0') => {
            Ok((key.to_string(), value.to_string()))
        }
        _ => Err(format!("'{text}' is not KEY=VALUE")),
    }
}

/// One of gunicorn's secure_scheme_headers: `NAME=VALUE` (the name in any case).
pub fn scheme_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_ascii_lowercase(), value.trim().to_string()))
        }
        _ => Err(format!(
            "'{text}' is not HEADER=VALUE (e.g. X-Forwarded-Proto=https)"
        )),
    }
}

/// gunicorn's worker classes: the two whose model wsgihost's threads are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerClass {
    /// One request at a time per worker.
    Sync,
    /// --threads threads per worker.
    Gthread,
}

pub fn worker_class(text: &str) -> Result<WorkerClass, String> {
    match text.trim() {
        "sync" | "gunicorn.workers.sync.SyncWorker" | "egg:gunicorn#sync" => Ok(WorkerClass::Sync),
        "gthread" | "gunicorn.workers.gthread.ThreadWorker" | "egg:gunicorn#gthread" => {
            Ok(WorkerClass::Gthread)
        }
        other => {
            let lower = other.to_ascii_lowercase();
            let instead = if lower.contains("uvicorn") || lower.contains("asgi") {
                "ASGI apps need an ASGI server (uvicorn, Granian)"
            } else if lower.contains("gevent") || lower.contains("eventlet") {
                "greenlet workers need gunicorn; without monkey-patching, use gthread and --threads"
            } else if lower.contains("tornado") {
                "Tornado apps need Tornado's own server"
            } else {
                "use sync (one request at a time) or gthread (--threads)"
            };
            Err(format!(
                "worker class '{other}' is not supported: wsgihost runs WSGI apps on threads; {instead}"
            ))
        }
    }
}

/// `--statsd-host`: where statsd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsdAddr {
    /// HOST:PORT, looked up when the socket is made.
    Udp(String, u16),
    Unix(PathBuf),
}

/// gunicorn's forms: `HOST:PORT`, `HOST` (port 8125), `[IPv6]:PORT`, `unix:PATH`.
pub fn statsd_addr(text: &str) -> Result<StatsdAddr, String> {
    let text = text.trim();
    if let Some(path) = text.strip_prefix("unix:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        if !path.is_empty() {
            return Ok(StatsdAddr::Unix(PathBuf::from(path)));
        }
    }
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((host, port)) => (host, port.strip_prefix(':').unwrap_or(port)),
            None => ("", ""),
        },
        None => text.rsplit_once(':').unwrap_or((text, "")),
    };
    let port = match port {
        "" => Some(8125),
        port => port.parse().ok(),
    };
    match port {
        Some(port) if !host.is_empty() && !host.contains(char::is_whitespace) => {
            Ok(StatsdAddr::Udp(host.to_string(), port))
        }
        _ => Err(format!(
            "'{text}' is not HOST:PORT or unix:PATH (e.g. 127.0.0.1:8125)"
        )),
    }
}

/// `--user`: the account the workers run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    /// Its primary group.
    pub gid: u32,
}

/// A user name or uid, looked up in the system's user database.
pub fn user(text: &str) -> Result<Account, String> {
    let text = text.trim();
    let found = match text.parse::<u32>() {
        Ok(uid) => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)),
        Err(_) => nix::unistd::User::from_name(text),
    };
    match found {
        Ok(Some(user)) => Ok(Account {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        }),
        Ok(None) => Err(format!("no such user: '{text}'")),
        Err(err) => Err(format!("looking up user '{text}': {err}")),
    }
}

/// A group name or gid.
pub fn group(text: &str) -> Result<u32, String> {
    let text = text.trim();
    if let Ok(gid) = text.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(text) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => Err(format!("no such group: '{text}'")),
        Err(err) => Err(format!("looking up group '{text}': {err}")),
    }
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
        assert_eq!(mount("/api/=a:b"), Ok(("/api".into(), "a:b".into())));
        assert!(mount("api=a:b").is_err());
        assert_eq!(
            static_dir("/static=s"),
            Ok(("/static".into(), PathBuf::from("s")))
        );
        assert_eq!(env("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert!(!is_app_spec("1app:x"));
        assert!(!is_app_spec("a/b:x"));
    }

    #[test]
    fn gunicorn_number_forms() {
        assert_eq!(umask("022"), Ok(0o22));
        assert_eq!(umask("18"), Ok(18));
        assert_eq!(umask("0o27"), Ok(0o27));
        assert_eq!(umask("0x12"), Ok(0x12));
        assert_eq!(umask("0"), Ok(0));
        assert!(umask("999").is_err());
        assert_eq!(limit("0"), Ok(usize::MAX));
        assert_eq!(field_count("0"), Ok(32768));
        assert!(field_count("40000").is_err());
        assert_eq!(worker_class("gthread"), Ok(WorkerClass::Gthread));
        assert!(
            worker_class("uvicorn.workers.UvicornWorker")
                .unwrap_err()
                .contains("ASGI")
        );
        assert!(worker_class("gevent").unwrap_err().contains("greenlet"));
        assert_eq!(
            statsd_addr("localhost"),
            Ok(StatsdAddr::Udp("localhost".into(), 8125))
        );
        assert_eq!(statsd_addr("[::1]:9"), Ok(StatsdAddr::Udp("::1".into(), 9)));
        assert_eq!(
            statsd_addr("unix:/run/s"),
            Ok(StatsdAddr::Unix("/run/s".into()))
        );
        assert!(statsd_addr("a:b").is_err());
        assert_eq!(user("0").map(|a| a.name), Ok("root".into()));
        assert!(user("no-such-user-here").is_err());
    }
}
