//! The mount table: URL prefix → static folder, drop-in scripts folder or WSGI application.
//! The longest matching prefix wins; a scripts row only matches `NAME.py` segments.
use std::path::PathBuf;

use percent_encoding::percent_decode;

#[derive(Debug, Clone)]
pub enum Target {
    Static(PathBuf),
    Scripts,
    /// Index into the worker's application list.
    App(usize),
}

#[derive(Debug, Clone)]
pub struct Mount {
    /// Decoded URL prefix without trailing slash; "" is the root.
    pub prefix: Vec<u8>,
    pub target: Target,
}

/// Where a request goes, with the path split as SCRIPT_NAME / PATH_INFO.
#[derive(Debug, PartialEq, Eq)]
pub enum Route<'m> {
    Static {
        root: &'m PathBuf,
        rest: Vec<u8>,
    },
    Script {
        name: String,
        script_name: Vec<u8>,
        path_info: Vec<u8>,
    },
    App {
        index: usize,
        script_name: Vec<u8>,
        path_info: Vec<u8>,
    },
    NotFound,
}

/// A request target that names the server rather than a path (RFC 9112 §3.2.3-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerWide {
    /// `OPTIONS *`: what the server as a whole supports.
    Options,
    /// `CONNECT host:port`: a tunnel, which only proxies make.
    Connect,
}

/// What a request's target is (RFC 9112 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetForm {
    /// Origin-form (`/a?b`) or absolute-form (`http://host/a`): a path to route.
    Path,
    /// Asterisk-form with OPTIONS, authority-form with CONNECT.
    ServerWide(ServerWide),
    /// A form its method may not use (a 400).
    Invalid,
}

pub fn target_form(method: &[u8], target: &[u8]) -> TargetForm {
    if method == b"CONNECT" {
        let authority = !target.is_empty() && !target.contains(&b'/') && target.contains(&b':');
        return match authority {
            true => TargetForm::ServerWide(ServerWide::Connect),
            false => TargetForm::Invalid,
        };
    }
    if target == b"*" {
        return match method == b"OPTIONS" {
            true => TargetForm::ServerWide(ServerWide::Options),
            false => TargetForm::Invalid,
        };
    }
    match target.first() {
        Some(b'/') => TargetForm::Path,
        _ if strip_scheme_and_authority(target).len() < target.len() => TargetForm::Path,
        _ => TargetForm::Invalid,
    }
}

/// A request target split into its path (still percent-encoded) and query string.
/// Absolute-form targets (`http://host/path`) keep only the path.
pub fn split_target(target: &[u8]) -> (&[u8], &[u8]) {
    let target = strip_scheme_and_authority(target);
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(q) => (&target[..q], &target[q + 1..]),
        None => (target, &b""[..]),
    };
    let path = match path.iter().position(|&b| b == b'#') {
        Some(f) => &path[..f],
        None => path,
    };
    (if path.is_empty() { b"/" } else { path }, query)
}

fn strip_scheme_and_authority(target: &[u8]) -> &[u8] {
    let lower_starts =
        |p: &[u8]| target.len() >= p.len() && target[..p.len()].eq_ignore_ascii_case(p);
    let after_scheme = if lower_starts(b"http://") {
        7
    } else if lower_starts(b"https://") {
        8
    } else {
        return target;
    };
    let rest = &target[after_scheme..];
    match rest.iter().position(|&b| b == b'/' || b == b'?') {
        Some(start) => &rest[start..],
        None => b"",
    }
}

pub fn decode_path(raw: &[u8]) -> Vec<u8> {
    percent_decode(raw).collect()
}

pub struct Router {
    mounts: Vec<Mount>,
}

impl Router {
    /// Rows are tried longest prefix first; for one prefix: scripts, static, app.
    pub fn new(mut mounts: Vec<Mount>) -> Router {
        let rank = |t: &Target| match t {
            Target::Scripts => 0,
            Target::Static(_) => 1,
            Target::App(_) => 2,
        };
        mounts.sort_by(|a, b| {
            b.prefix
                .len()
                .cmp(&a.prefix.len())
                .then(rank(&a.target).cmp(&rank(&b.target)))
        });
        Router { mounts }
    }

    /// The application mounted at `/`, if any: it answers server-wide requests.
    pub fn root_app(&self) -> Option<usize> {
        self.mounts.iter().find_map(|mount| match mount.target {
            Target::App(index) if mount.prefix.is_empty() => Some(index),
            _ => None,
        })
    }

    /// Routes a decoded path. `file_exists` lets a static row give way to an app mounted at
    /// the same prefix when no such file exists.
    pub fn route(&self, path: &[u8], file_exists: impl Fn(&PathBuf, &[u8]) -> bool) -> Route<'_> {
        for (index, mount) in self.mounts.iter().enumerate() {
            let Some(rest) = strip_prefix(path, &mount.prefix) else {
                continue;
            };
            match &mount.target {
                Target::Scripts => {
                    let trimmed = rest.strip_prefix(b"/").unwrap_or(rest);
                    let end = trimmed
                        .iter()
                        .position(|&b| b == b'/')
                        .unwrap_or(trimmed.len());
                    let segment = &trimmed[..end];
                    let Ok(name) = std::str::from_utf8(segment) else {
                        continue;
                    };
                    if !name.ends_with(".py") {
                        continue;
                    }
                    let split = mount.prefix.len() + 1 + end;
                    return Route::Script {
                        name: name.to_string(),
                        script_name: path[..split].to_vec(),
                        path_info: path[split..].to_vec(),
                    };
                }
                Target::Static(root) => {
                    let shadowed_app = self.mounts[index + 1..]
                        .iter()
                        .any(|m| m.prefix == mount.prefix && matches!(m.target, Target::App(_)));
                    if shadowed_app && !file_exists(root, rest) {
                        continue;
                    }
                    return Route::Static {
                        root,
                        rest: rest.to_vec(),
                    };
                }
                Target::App(app) => {
                    return Route::App {
                        index: *app,
                        script_name: mount.prefix.clone(),
                        path_info: rest.to_vec(),
                    };
                }
            }
        }
        Route::NotFound
    }
}

/// The part of `path` after `prefix` when the prefix matches whole segments.
fn strip_prefix<'p>(path: &'p [u8], prefix: &[u8]) -> Option<&'p [u8]> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest[0] == b'/').then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_router() -> Router {
        Router::new(vec![
            Mount {
                prefix: b"".to_vec(),
                target: Target::Static(PathBuf::from("html")),
            },
            Mount {
                prefix: b"".to_vec(),
                target: Target::Scripts,
            },
            Mount {
                prefix: b"/api".to_vec(),
                target: Target::App(0),
            },
        ])
    }

    #[test]
    fn target_forms() {
        use TargetForm::*;
        assert_eq!(target_form(b"GET", b"/a?b"), Path);
        assert_eq!(target_form(b"GET", b"http://h/a"), Path);
        assert_eq!(
            target_form(b"OPTIONS", b"*"),
            ServerWide(super::ServerWide::Options)
        );
        assert_eq!(
            target_form(b"CONNECT", b"example.org:443"),
            ServerWide(super::ServerWide::Connect)
        );
        assert_eq!(target_form(b"GET", b"*"), Invalid);
        assert_eq!(target_form(b"GET", b"example.org:443"), Invalid);
        assert_eq!(target_form(b"CONNECT", b"/a"), Invalid);
        assert_eq!(target_form(b"OPTIONS", b"/a"), Path);
    }

    #[test]
    fn scripts_split_script_name_and_path_info() {
        let router = default_router();
        let route = router.route(b"/sayhello.py/x/y", |_, _| true);
        assert_eq!(
            route,
            Route::Script {
                name: "sayhello.py".into(),
                script_name: b"/sayhello.py".to_vec(),
                path_info: b"/x/y".to_vec()
            }
        );
    }

    #[test]
    fn static_and_longest_prefix() {
        let router = default_router();
        assert!(matches!(
            router.route(b"/index.html", |_, _| true),
            Route::Static { .. }
        ));
        assert!(matches!(
            router.route(b"/dir/a.py", |_, _| true),
            Route::Static { .. }
        ));
        let api = router.route(b"/api/users", |_, _| true);
        assert_eq!(
            api,
            Route::App {
                index: 0,
                script_name: b"/api".to_vec(),
                path_info: b"/users".to_vec()
            }
        );
        assert!(matches!(
            router.route(b"/apiary", |_, _| true),
            Route::Static { .. }
        ));
    }

    #[test]
    fn static_gives_way_to_app_at_same_prefix() {
        let router = Router::new(vec![
            Mount {
                prefix: b"".to_vec(),
                target: Target::App(0),
            },
            Mount {
                prefix: b"".to_vec(),
                target: Target::Static(PathBuf::from("html")),
            },
        ]);
        assert!(matches!(
            router.route(b"/x", |_, _| false),
            Route::App { .. }
        ));
        assert!(matches!(
            router.route(b"/x", |_, _| true),
            Route::Static { .. }
        ));
    }

    #[test]
    fn targets_split() {
        assert_eq!(split_target(b"/a/b?x=1"), (&b"/a/b"[..], &b"x=1"[..]));
        assert_eq!(split_target(b"http://host:80/p?q"), (&b"/p"[..], &b"q"[..]));
        assert_eq!(split_target(b"HTTP://host"), (&b"/"[..], &b""[..]));
        assert_eq!(split_target(b"http://host?q=1"), (&b"/"[..], &b"q=1"[..]));
        assert_eq!(decode_path(b"/a%2Fb%20c"), b"/a/b c");
    }
}
