//! Where options come from besides the command line: `WSGIHOST_<OPTION>` environment
//! variables and a TOML file (`--config FILE`, or ./wsgihost.toml when present).
//! Precedence: command line > environment > file > defaults. Everything here is derived
//! from the clap definitions in config/mod.rs, so options are never described twice.
use std::ffi::OsString;
use std::path::Path;
use std::sync::OnceLock;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, CommandFactory};

use crate::config::Config;

/// Options that are about the configuration itself, not settings.
const NOT_SETTINGS: [&str; 5] = [
    "help",
    "version",
    "config",
    "check_config",
    "config_reference",
];

/// The command line definition with an environment variable on every setting.
pub fn command() -> Command {
    static COMMAND: OnceLock<Command> = OnceLock::new();
    COMMAND
        .get_or_init(|| {
            Config::command().mut_args(|arg| {
                let id = arg.get_id().as_str().to_string();
                if NOT_SETTINGS.contains(&id.as_str()) || arg.get_env().is_some() {
                    return arg;
                }
                // clap keeps environment names as &'static str: made once, they live for
                // the process.
                let name: &'static str = Box::leak(env_name(&arg).into_boxed_str());
                arg.env(name)
            })
        })
        .clone()
}

fn settings(command: &Command) -> impl Iterator<Item = &Arg> {
    command
        .get_arguments()
        .filter(|arg| !NOT_SETTINGS.contains(&arg.get_id().as_str()))
}

/// The option's name in files: its long flag (`max-requests`), or `app` for APP.
fn key(arg: &Arg) -> String {
    arg.get_long()
        .map_or_else(|| arg.get_id().as_str().to_string(), str::to_string)
}

fn env_name(arg: &Arg) -> String {
    format!("WSGIHOST_{}", key(arg).to_uppercase().replace('-', "_"))
}

fn is_flag(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue)
}

/// Command-line arguments standing for the file's settings, for every option the command
/// line and environment left at its default. Errors name the key and its line.
pub fn file_arguments(
    path: &Path,
    text: &str,
    matches: &ArgMatches,
    command: &Command,
) -> Result<Vec<OsString>, String> {
    let shown = path.display();
    let table: toml::Table = text
        .parse()
        .map_err(|err: toml::de::Error| format!("{shown}: {}", err.message()))?;
    let line_of = |name: &str| {
        text.lines()
            .position(|line| line.trim_start().starts_with(name) && line.contains('='))
            .map_or(0, |n| n + 1)
    };
    let mut args = Vec::new();
    let mut positional = Vec::new();
    for (name, value) in &table {
        let wanted = name.replace('_', "-");
        let Some(arg) = settings(command).find(|arg| key(arg) == wanted) else {
            return Err(format!(
                "{shown}:{}: unknown option '{name}'",
                line_of(name)
            ));
        };
        if matches.value_source(arg.get_id().as_str()) != Some(ValueSource::DefaultValue)
            && matches.value_source(arg.get_id().as_str()).is_some()
        {
            continue; // the command line or environment wins
        }
        let bad = |what: &str| format!("{shown}:{}: '{name}' {what}", line_of(name));
        let values: Vec<&toml::Value> = match value {
            toml::Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        for value in values {
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) if is_flag(arg) => {
                    if *b {
                        args.push(format!("--{}", key(arg)).into());
                    }
                    continue;
                }
                _ => return Err(bad("has a value of the wrong type")),
            };
            if is_flag(arg) {
                return Err(bad("takes true or false"));
            }
            match arg.get_long() {
                Some(long) => args.extend([format!("--{long}").into(), text.into()]),
                None => positional.push(text.into()),
            }
        }
    }
    args.extend(positional);
    Ok(args)
}

/// The effective configuration as TOML, each line noting where its value came from.
pub fn effective(matches: &ArgMatches, command: &Command) -> String {
    let mut out = String::from("# effective wsgihost configuration\n");
    for arg in settings(command) {
        let id = arg.get_id().as_str();
        let source = match matches.value_source(id) {
            Some(ValueSource::CommandLine) => "command line or config file",
            Some(ValueSource::EnvVariable) => "environment",
            Some(ValueSource::DefaultValue) => "default",
            _ => "unset",
        };
        let raw: Vec<String> = matches
            .get_raw(id)
            .map(|values| values.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let value = if is_flag(arg) {
            matches.get_flag(id).to_string()
        } else if arg.get_num_args().is_some_and(|n| n.max_values() > 1)
            || matches!(arg.get_action(), ArgAction::Append)
        {
            format!(
                "[{}]",
                raw.iter()
                    .map(|v| toml_string(v))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            match raw.first() {
                Some(v) => toml_string(v),
                None => "# (none)".into(),
            }
        };
        out.push_str(&format!("{} = {value}  # {source}\n", key(arg)));
    }
    out
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// The configuration reference, as a Markdown table: option, file key, environment
/// variable, default, meaning. The README embeds this output.
pub fn reference(command: &Command) -> String {
    let mut out = String::from(
        "| option | file key | environment | default | meaning |\n|---|---|---|---|---|\n",
    );
    for arg in settings(command) {
        let flag = match (arg.get_short(), arg.get_long()) {
            (Some(s), Some(l)) => format!("`-{s}, --{l}`"),
            (None, Some(l)) => format!("`--{l}`"),
            _ => format!(
                "`{}`",
                arg.get_value_names()
                    .and_then(|n| n.first())
                    .map_or("APP", |n| n.as_str())
            ),
        };
        let env = arg
            .get_env()
            .map_or(String::new(), |e| format!("`{}`", e.to_string_lossy()));
        let default: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let default = if default.is_empty() {
            String::new()
        } else {
            format!("`{}`", default.join(","))
        };
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map_or(String::new(), |h| h.to_string());
        let help = help.replace('\n', " ").replace('|', "\\|");
        out.push_str(&format!(
            "| {flag} | `{}` | {env} | {default} | {help} |\n",
            key(arg)
        ));
    }
    out
}
