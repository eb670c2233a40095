//! A gunicorn-style Python configuration file (`-c gunicorn.conf.py`, `-c python:module`, or
//! ./gunicorn.conf.py): run in the master's interpreter, which is started for it (the
//! binary) or is the host's (the pip command). Its module-level names are settings and
//! its functions hooks; `python_file.py` runs it and keeps its namespace for the hooks.
use std::path::Path;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString, PyTuple};

use super::sources::Files;
use super::value::SettingValue;
use crate::wsgi::interpreter;

/// The public names of a configuration file.
pub struct Namespace {
    pub entries: Vec<NamespaceEntry>,
}

pub struct NamespaceEntry {
    pub name: String,
    /// Where the name is assigned or defined (0 when unknown).
    pub line: usize,
    pub value: SettingValue,
    /// For a callable (or a string naming one, for a hook): its positional parameters.
    pub arity: Option<usize>,
}

/// The files on disk, and Python files run for real.
pub struct Disk;

impl Files for Disk {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn exists(&self, path: &Path) -> bool {
        path.is_file()
    }

    fn run_python(&self, location: &str, venv: Option<&Path>) -> Result<Namespace, String> {
        // The pip command's interpreter is the venv's already (a --venv is checked later).
        let venv = venv.filter(|_| interpreter::host().is_none());
        interpreter::start(&[], venv).map_err(|err| format!("{location}: {err:#}"))?;
        let source = std::fs::read_to_string(location).unwrap_or_default();
        Python::attach(|py| run(py, location, &source))
    }
}

/// The embedded runner module (src/config/python_file.py), made once per interpreter.
pub fn module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    static MODULE: pyo3::sync::PyOnceLock<Py<PyModule>> = pyo3::sync::PyOnceLock::new();
    let module = MODULE.get_or_try_init(py, || {
        PyModule::from_code(
            py,
            c_str(include_str!("python_file.py")).as_c_str(),
            c"wsgihost_config.py",
            c"wsgihost_config",
        )
        .map(Bound::unbind)
    })?;
    Ok(module.bind(py).clone())
}

fn c_str(text: &str) -> std::ffi::CString {
    std::ffi::CString::new(text).expect("no NUL in the embedded module")
}

fn run(py: Python<'_>, location: &str, source: &str) -> Result<Namespace, String> {
    let runner = module(py).map_err(|err| err.to_string())?;
    let names = match runner.call_method1("run", (location,)) {
        Ok(names) => names,
        Err(err) => return Err(failure(py, location, &err)),
    };
    let names: Vec<(String, Bound<'_, PyAny>)> =
        names.extract().map_err(|e: PyErr| e.to_string())?;
    names
        .into_iter()
        .map(|(name, value)| {
            let is_hook = super::gunicorn::find(&name)
                .is_some_and(|s| matches!(s.treatment, super::gunicorn::Treatment::Hook(_)));
            let arity = if value.is_callable() || (is_hook && value.is_instance_of::<PyString>()) {
                runner
                    .call_method1("arity", (&value,))
                    .and_then(|a| a.extract::<Option<usize>>())
                    .map_err(|err| {
                        format!("{location}:{}: {name}: {err}", line_of(source, &name))
                    })?
            } else {
                None
            };
            Ok(NamespaceEntry {
                line: line_of(source, &name),
                value: setting_value(&value),
                arity,
                name,
            })
        })
        .collect::<Result<_, String>>()
        .map(|entries| Namespace { entries })
}

/// The message for a file that raised: file and line, the exception, then the traceback.
fn failure(py: Python<'_>, location: &str, err: &PyErr) -> String {
    let value = err.value(py);
    let field = |name: &str| value.getattr(name).ok();
    match (field("line"), field("summary"), field("text")) {
        (Some(line), Some(summary), Some(text)) => format!(
            "{location}:{}: {}\n{}",
            line.extract::<usize>().unwrap_or(0),
            summary.extract::<String>().unwrap_or_default(),
            text.extract::<String>().unwrap_or_default().trim_end()
        ),
        _ => format!("{location}: {err}"),
    }
}

/// The first line that assigns or defines `name` at the top level.
fn line_of(source: &str, name: &str) -> usize {
    source
        .lines()
        .position(|line| {
            let Some(rest) = line.strip_prefix("def ").unwrap_or(line).strip_prefix(name) else {
                return false;
            };
            let rest = rest.trim_start();
            (rest.starts_with('=') && !rest.starts_with("=="))
                || rest.starts_with('(')
                || rest.starts_with(':')
        })
        .map_or(0, |n| n + 1)
}

/// A Python value as a setting value (lists, tuples and sets as lists; dicts with their
/// keys as text; anything else by its repr).
pub fn setting_value(value: &Bound<'_, PyAny>) -> SettingValue {
    let repr = || {
        value
            .repr()
            .map_or_else(|_| "?".to_string(), |r| r.to_string())
    };
    if value.is_none() {
        SettingValue::None
    } else if let Ok(flag) = value.cast::<PyBool>() {
        SettingValue::Bool(flag.is_true())
    } else if value.is_instance_of::<PyInt>() {
        value
            .extract::<i64>()
            .map_or_else(|_| SettingValue::Other(repr()), SettingValue::Int)
    } else if let Ok(number) = value.cast::<PyFloat>() {
        SettingValue::Float(number.value())
    } else if let Ok(text) = value.cast::<PyString>() {
        SettingValue::Str(text.to_string_lossy().into_owned())
    } else if value.is_instance_of::<PyList>()
        || value.is_instance_of::<PyTuple>()
        || value.is_instance_of::<PySet>()
        || value.is_instance_of::<PyFrozenSet>()
    {
        match value.try_iter() {
            Ok(items) => SettingValue::List(
                items
                    .filter_map(Result::ok)
                    .map(|item| setting_value(&item))
                    .collect(),
            ),
            Err(_) => SettingValue::Other(repr()),
        }
    } else if let Ok(dict) = value.cast::<PyDict>() {
        SettingValue::Dict(
            dict.iter()
                .map(|(key, value)| {
                    let key = key
                        .str()
                        .map_or_else(|_| "?".to_string(), |k| k.to_string());
                    (key, setting_value(&value))
                })
                .collect(),
        )
    } else {
        SettingValue::Other(repr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_names() {
        let source = "import os\nworkers = 4\nworkers_x = 1\ndef post_fork(server, worker):\n    pass\nbind: list = []\n";
        assert_eq!(line_of(source, "workers"), 2);
        assert_eq!(line_of(source, "post_fork"), 4);
        assert_eq!(line_of(source, "bind"), 6);
        assert_eq!(line_of(source, "timeout"), 0);
    }
}
