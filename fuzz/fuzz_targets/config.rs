//! The configuration: flags and a TOML file, as text. The input is the file, then a NUL,
//! then the arguments separated by NULs (gunicorn's flags among them). Never a panic and
//! never an exit: a bad value is an error message of one line.
#![no_main]
use std::ffi::OsString;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use wsgihost::config::python_file::Namespace;
use wsgihost::config::sources::Files;
use wsgihost::config::{Config, Parsed};

/// The fuzzed file, and no Python.
struct Input(String);

impl Files for Input {
    fn read(&self, _: &Path) -> std::io::Result<String> {
        Ok(self.0.clone())
    }
    fn exists(&self, path: &Path) -> bool {
        path == Path::new("fuzz.toml")
    }
    fn run_python(&self, _: &str, _: Option<&Path>) -> Result<Namespace, String> {
        Err("no Python here".into())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0);
    let file = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let mut args = vec![
        OsString::from("wsgihost"),
        "--config".into(),
        "fuzz.toml".into(),
    ];
    args.extend(parts.map(|arg| OsString::from(String::from_utf8_lossy(arg).into_owned())));
    match Config::try_parse(args, &Input(file)) {
        Ok(Parsed::Run(config)) => assert!(config.threads >= 1 && config.workers >= 1),
        Ok(Parsed::Print(_)) => {}
        Err(message) => assert!(!message.contains('\n'), "{message:?}"),
    }
});
