//! gunicorn's logconfig_dict, logconfig_json (`--log-config-json`) and logconfig
//! (`--log-config`): Python's logging.config, applied in the master before the workers
//! fork, so the app's loggers in every worker have those handlers and formats. As in
//! gunicorn, the dict wins over the JSON file, which wins over the fileConfig file.
//! wsgihost's own access and error lines are not Python logging: they follow --error-log.
use anyhow::Result;
use pyo3::prelude::*;

use crate::config::{Config, python_file};
use crate::wsgi::interpreter;

pub fn apply(config: &Config) -> Result<()> {
    let from_file = config.origin.python_file;
    if !from_file && config.log_config.is_none() && config.log_config_json.is_none() {
        return Ok(());
    }
    interpreter::start(&[], config.venv.as_deref())?;
    Python::attach(|py| -> PyResult<()> {
        let dict = match from_file {
            true => python_file::module(py)?.call_method1("setting", ("logconfig_dict",))?,
            false => py.None().into_bound(py),
        };
        // Imported only when used: logging.config costs ~19 ms of every start.
        let logging_config = || py.import("logging.config");
        if dict.is_truthy()? {
            logging_config()?.call_method1("dictConfig", (dict,))?;
        } else if let Some(path) = &config.log_config_json {
            let text = std::fs::read_to_string(path)?;
            let parsed = py.import("json")?.call_method1("loads", (text,))?;
            logging_config()?.call_method1("dictConfig", (parsed,))?;
        } else if let Some(path) = &config.log_config {
            let kwargs = pyo3::types::PyDict::new(py);
            kwargs.set_item("disable_existing_loggers", false)?;
            logging_config()?.call_method("fileConfig", (path,), Some(&kwargs))?;
        }
        Ok(())
    })
    .map_err(|err| {
        let traceback = Python::attach(|py| crate::wsgi::errors::format_traceback(py, &err));
        anyhow::anyhow!("configuring Python's logging (logconfig):\n{traceback}")
    })
}
