//! Where options come from, and which wins: the command line, then the environment
//! (`WSGIHOST_<OPTION>` variables, then `GUNICORN_CMD_ARGS` as gunicorn reads it), then a
//! configuration file (`--config FILE`, or ./gunicorn.conf.py or ./wsgihost.toml when
//! present), then the defaults. gunicorn's precedence, and gunicorn's flags and setting
//! names, each honoured, warned about or refused as `gunicorn::SETTINGS` says. Everything
//! here is derived from the clap definitions in config/mod.rs and that table, so options
//! are never described twice.
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, CommandFactory, FromArgMatches};

use super::gunicorn::{self, Setting, Takes, Treatment, Verdict};
use super::python_file::Namespace;
use super::value::SettingValue;
use super::{Config, Origin, toml_file};

/// What a command line asks for.
pub enum Parsed {
    Run(Box<Config>),
    /// --help, --version, --config-reference, --gunicorn-reference: print this, exit 0.
    Print(String),
}

/// Where an option's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    CommandLine,
    /// The variable's name.
    Environment(String),
    GunicornCmdArgs,
    File(PathBuf),
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::CommandLine => write!(f, "command line"),
            Source::Environment(name) => write!(f, "environment {name}"),
            Source::GunicornCmdArgs => write!(f, "GUNICORN_CMD_ARGS"),
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Default => write!(f, "default"),
        }
    }
}

/// One option's effective value (as text, the way it was given) and its source.
#[derive(Debug, Clone)]
pub struct Effective {
    /// The long flag name (`max-requests`), or `app` for APP.
    pub key: String,
    pub values: Vec<String>,
    pub source: Source,
    /// A flag (true or false) or a repeatable option (a list).
    pub flag: bool,
    pub repeatable: bool,
}

/// What reading configuration needs from outside.
pub trait Files {
    fn read(&self, path: &Path) -> std::io::Result<String>;
    fn exists(&self, path: &Path) -> bool;
    /// Runs a Python configuration file (or `python:module`) in the master's interpreter,
    /// started for it with `venv`. Err: the line naming the file and line, then the
    /// traceback.
    fn run_python(&self, location: &str, venv: Option<&Path>) -> Result<Namespace, String>;
}

/// Options that are about the configuration itself, not settings.
const NOT_SETTINGS: [&str; 6] = [
    "help",
    "version",
    "config",
    "config_reference",
    "gunicorn_reference",
    "origin",
];

/// The configuration files read when present and no --config names one.
const DEFAULT_FILES: [&str; 2] = ["gunicorn.conf.py", "wsgihost.toml"];

/// The command line definition: every setting also read from `WSGIHOST_<OPTION>`, and
/// gunicorn's flags that have no wsgihost option (hidden; they are judged, not used).
pub fn command() -> Command {
    static COMMAND: OnceLock<Command> = OnceLock::new();
    COMMAND
        .get_or_init(|| {
            let with_env = Config::command().mut_args(|arg| {
                let id = arg.get_id().as_str().to_string();
                if NOT_SETTINGS.contains(&id.as_str()) || arg.get_env().is_some() {
                    return arg;
                }
                // clap keeps environment names as &'static str: made once, they live for
                // the process.
                let name: &'static str = Box::leak(env_name(&arg).into_boxed_str());
                arg.env(name)
            });
            gunicorn::SETTINGS
                .iter()
                .filter(|s| !s.flags.is_empty() && !matches!(s.treatment, Treatment::Option(_)))
                .fold(with_env, |command, setting| {
                    command.arg(hidden_arg(setting))
                })
        })
        .clone()
}

/// A hidden argument for a gunicorn flag wsgihost has no option for.
fn hidden_arg(setting: &'static Setting) -> Arg {
    let mut arg = Arg::new(setting.name).hide(true);
    for flag in setting.flags {
        arg = match flag.strip_prefix("--") {
            Some(long) if arg.get_long().is_none() => arg.long(long),
            Some(long) => arg.alias(long),
            None => arg.short(flag.chars().nth(1).unwrap_or('?')),
        };
    }
    match setting.takes {
        Takes::Nothing => arg.action(ArgAction::SetTrue),
        Takes::Value => arg.action(ArgAction::Set),
        Takes::MaybeValue => arg
            .action(ArgAction::Set)
            .num_args(0..=1)
            .default_missing_value("auto"),
        Takes::Values => arg.action(ArgAction::Append),
    }
}

fn settings(command: &Command) -> impl Iterator<Item = &Arg> {
    command.get_arguments().filter(|arg| {
        !NOT_SETTINGS.contains(&arg.get_id().as_str()) && gunicorn_only(arg).is_none()
    })
}

/// The gunicorn setting behind a hidden argument.
fn gunicorn_only(arg: &Arg) -> Option<&'static Setting> {
    let setting = gunicorn::find(arg.get_id().as_str())?;
    (!matches!(setting.treatment, Treatment::Option(_))).then_some(setting)
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

fn is_repeatable(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
}

fn find_arg<'c>(command: &'c Command, wanted: &str) -> Option<&'c Arg> {
    settings(command).find(|arg| key(arg) == wanted)
}

/// A value some source gives an option.
struct Given {
    id: String,
    values: Vec<String>,
    source: Source,
}

/// Reads the configuration from `args` (the first is the program name), the environment
/// and the configuration file.
pub fn load(args: Vec<OsString>, files: &dyn Files) -> Result<Parsed, String> {
    let command = command();
    let first = match matches_of(&command, &args)? {
        Ok(matches) => matches,
        Err(text) => return Ok(Parsed::Print(text)),
    };
    if first.get_flag("config_reference") {
        return Ok(Parsed::Print(reference(&command)));
    }
    if first.get_flag("gunicorn_reference") {
        return Ok(Parsed::Print(gunicorn::reference()));
    }
    let mut origin = Origin::default();
    judge_flags(&command, &first, "", &mut origin.warnings)?;
    let taken = |id: &str| {
        matches!(
            first.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    let mut lower: Vec<Given> = Vec::new();
    let gunicorn_env = gunicorn_cmd_args(&command, &mut origin.warnings)?;
    if let Some(matches) = &gunicorn_env {
        for arg in settings(&command) {
            let id = arg.get_id().as_str();
            if matches.value_source(id) == Some(ValueSource::CommandLine) && !taken(id) {
                lower.push(Given {
                    id: id.to_string(),
                    values: raw_values(matches, arg),
                    source: Source::GunicornCmdArgs,
                });
            }
        }
    }
    let location = first
        .get_one::<PathBuf>("config")
        .or_else(|| gunicorn_env.as_ref()?.get_one::<PathBuf>("config"))
        .cloned()
        .map_or_else(|| default_file(files), |file| Ok(Some(file)))?;
    if let Some(location) = &location {
        let venv = first.get_one::<PathBuf>("venv").cloned();
        let from_file = read_file(&command, location, venv.as_deref(), files, &mut origin)?;
        let given_above: Vec<String> = lower.iter().map(|g| g.id.clone()).collect();
        lower.extend(
            from_file
                .into_iter()
                .filter(|g| !taken(&g.id) && !given_above.contains(&g.id)),
        );
        origin.file = Some(location.clone());
    }
    let merged = merged_arguments(&command, &args, &lower);
    let matches = match matches_of(&command, &merged)? {
        Ok(matches) => matches,
        Err(text) => return Ok(Parsed::Print(text)),
    };
    let mut config = Config::from_arg_matches(&matches).map_err(|err| first_line(&err))?;
    let sources: HashMap<&str, &Source> =
        lower.iter().map(|g| (g.id.as_str(), &g.source)).collect();
    origin.effective = effective(&command, &matches, &sources);
    origin.html_given = origin_of(&origin, "html");
    origin.scripts_given = origin_of(&origin, "scripts");
    origin.venv_from_environment = matches.value_source("venv") == Some(ValueSource::EnvVariable);
    config.origin = origin;
    config.checked().map(|config| Parsed::Run(Box::new(config)))
}

fn origin_of(origin: &Origin, key: &str) -> bool {
    origin
        .effective
        .iter()
        .any(|e| e.key == key && e.source != Source::Default)
}

/// Parses `args`. Ok(Err(text)): --help or --version output to print. Err: one line.
fn matches_of(command: &Command, args: &[OsString]) -> Result<Result<ArgMatches, String>, String> {
    match command.clone().try_get_matches_from(args) {
        Ok(matches) => Ok(Ok(matches)),
        Err(err) if !err.use_stderr() => Ok(Err(err.to_string())),
        Err(err) => Err(first_line(&err)),
    }
}

/// The one line of a clap error, with "did you mean" when clap has a suggestion.
fn first_line(err: &clap::Error) -> String {
    let text = err.to_string();
    let line = text.lines().next().unwrap_or("invalid arguments");
    let line = line.trim_start_matches("error: ").to_string();
    if err.kind() == ErrorKind::UnknownArgument
        && let Some(ContextValue::String(suggested)) = err.get(ContextKind::SuggestedArg)
    {
        return format!("{line}; did you mean {suggested}?");
    }
    line
}

/// The values an argument was given, as text.
fn raw_values(matches: &ArgMatches, arg: &Arg) -> Vec<String> {
    let id = arg.get_id().as_str();
    if is_flag(arg) {
        return vec![matches.get_flag(id).to_string()];
    }
    matches
        .get_raw(id)
        .map(|values| values.map(|v| v.to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// gunicorn's flags that have no wsgihost option, given in `matches`: warned about or
/// refused. `place` says where they were given ("" for the command line).
fn judge_flags(
    command: &Command,
    matches: &ArgMatches,
    place: &str,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    for arg in command.get_arguments() {
        let Some(setting) = gunicorn_only(arg) else {
            continue;
        };
        if matches.value_source(setting.name) != Some(ValueSource::CommandLine) {
            continue;
        }
        let values = raw_values(matches, arg);
        let value = match setting.takes {
            Takes::Nothing => SettingValue::Bool(true),
            Takes::Values => {
                SettingValue::List(values.into_iter().map(SettingValue::Str).collect())
            }
            _ => SettingValue::Str(values.concat()),
        };
        let flag = arg.get_long().map_or(String::new(), |l| format!("--{l}"));
        let shown = match &value {
            SettingValue::Bool(_) => format!("{place}{flag}"),
            other => format!("{place}{flag} {}", other.python_repr()),
        };
        judged(setting, &value, &shown, warnings)?;
    }
    Ok(())
}

fn judged(
    setting: &Setting,
    value: &SettingValue,
    shown: &str,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    match setting.judge(value, shown) {
        Verdict::Fine => Ok(()),
        Verdict::Warn(warning) => {
            warnings.push(warning);
            Ok(())
        }
        Verdict::Refuse(message) => Err(message),
    }
}

/// `GUNICORN_CMD_ARGS`, split as a shell would, parsed alone.
fn gunicorn_cmd_args(
    command: &Command,
    warnings: &mut Vec<String>,
) -> Result<Option<ArgMatches>, String> {
    let Ok(text) = std::env::var("GUNICORN_CMD_ARGS") else {
        return Ok(None);
    };
    let words = shlex::split(&text)
        .ok_or("GUNICORN_CMD_ARGS: unbalanced quotes (it is split as a shell would)")?;
    let args: Vec<OsString> = std::iter::once("wsgihost".into())
        .chain(words.into_iter().map(OsString::from))
        .collect();
    let matches = command
        .clone()
        .try_get_matches_from(args)
        .map_err(|err| format!("GUNICORN_CMD_ARGS: {}", first_line(&err)))?;
    judge_flags(command, &matches, "GUNICORN_CMD_ARGS: ", warnings)?;
    Ok(Some(matches))
}

/// ./gunicorn.conf.py or ./wsgihost.toml, when exactly one is present.
fn default_file(files: &dyn Files) -> Result<Option<PathBuf>, String> {
    let present: Vec<PathBuf> = DEFAULT_FILES
        .iter()
        .map(PathBuf::from)
        .filter(|path| files.exists(path))
        .collect();
    match present.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        _ => Err(
            "both ./gunicorn.conf.py and ./wsgihost.toml are here: name the one to read with --config"
                .into(),
        ),
    }
}

/// A file's settings, as option values (TOML, or a Python file's gunicorn settings and
/// `wsgihost` dict); its hooks and warnings go to `origin`.
fn read_file(
    command: &Command,
    location: &Path,
    venv: Option<&Path>,
    files: &dyn Files,
    origin: &mut Origin,
) -> Result<Vec<Given>, String> {
    let shown = location.display().to_string();
    let source = Source::File(location.to_path_buf());
    if location.extension().is_some_and(|e| e == "toml") {
        let text = files
            .read(location)
            .map_err(|err| format!("--config {shown}: {err}"))?;
        let entries = toml_file::entries(&shown, &text)?;
        return entries
            .into_iter()
            .map(|entry| {
                let place = format!("{shown}:{}", entry.line);
                let arg = find_arg(command, &entry.key)
                    .ok_or_else(|| format!("{place}: unknown option '{}'", entry.name))?;
                option_given(arg, &entry.value, &place, &entry.name, &source)
            })
            .filter_map(Result::transpose)
            .collect();
    }
    let text = location.to_string_lossy();
    if !text.starts_with("python:") && !files.exists(location) {
        return Err(format!("--config {shown}: no such file"));
    }
    if !text.starts_with("python:") && location.extension().is_none_or(|e| e != "py") {
        origin.warnings.push(format!(
            "{shown}: read as a Python configuration file (a .toml file is read as TOML)"
        ));
    }
    let namespace = files.run_python(&text, venv)?;
    origin.python_file = true;
    python_settings(command, &namespace, &shown, &source, origin)
}

/// A Python file's names: gunicorn's settings and hooks, the `wsgihost` dict of wsgihost's
/// own options; a name that is neither but looks like a misspelt setting is warned about.
fn python_settings(
    command: &Command,
    namespace: &Namespace,
    shown: &str,
    source: &Source,
    origin: &mut Origin,
) -> Result<Vec<Given>, String> {
    let mut given = Vec::new();
    for entry in &namespace.entries {
        let place = format!("{shown}:{}", entry.line);
        if entry.name == "wsgihost" {
            let SettingValue::Dict(options) = &entry.value else {
                return Err(format!(
                    "{place}: 'wsgihost' must be a dict of wsgihost options (e.g. {{\"max_rss\": 500}})"
                ));
            };
            for (name, value) in options {
                let arg = find_arg(command, &name.replace('_', "-")).ok_or_else(|| {
                    format!("{place}: wsgihost['{name}'] is not a wsgihost option")
                })?;
                given.extend(option_given(arg, value, &place, name, source)?);
            }
            continue;
        }
        let Some(setting) = gunicorn::find(&entry.name) else {
            if let Some(near) = near_setting(&entry.name) {
                origin.warnings.push(format!(
                    "{place}: '{}' is not a gunicorn setting (did you mean {near}?); it is ignored, as gunicorn ignores it",
                    entry.name
                ));
            }
            continue;
        };
        let shown_setting = format!("{place}: {}", entry.name);
        match setting.treatment {
            Treatment::Option(long) => {
                let arg =
                    find_arg(command, long).expect("every gunicorn option is a wsgihost option");
                let value = match (setting.name, &entry.value) {
                    // gunicorn's None is no access log; wsgihost's default is stdout.
                    ("accesslog", SettingValue::None) => SettingValue::Str("off".into()),
                    (_, value) => value.clone(),
                };
                given.extend(option_given(arg, &value, &place, setting.name, source)?);
            }
            Treatment::Hook(arity) => {
                let takes = entry.arity.ok_or_else(|| {
                    format!(
                        "{shown_setting} = {} is not callable; gunicorn calls {}",
                        entry.value.python_repr(),
                        arity.call
                    )
                })?;
                if takes < arity.least || takes > arity.most {
                    return Err(format!(
                        "{shown_setting}: the hook takes {takes} positional parameter{}; gunicorn calls {}",
                        if takes == 1 { "" } else { "s" },
                        arity.call
                    ));
                }
                if setting.name.contains("dirty") {
                    origin.warnings.push(format!(
                        "{shown_setting} is never called here: there are no dirty arbiters"
                    ));
                } else {
                    origin.hooks.push(setting.name.to_string());
                }
            }
            Treatment::PythonLogging => {
                if !matches!(entry.value, SettingValue::Dict(_)) {
                    return Err(format!(
                        "{shown_setting} = {} is not a dict (logging.config.dictConfig's format)",
                        entry.value.python_repr()
                    ));
                }
            }
            Treatment::NoEffect(_) | Treatment::Refused(_) => {
                let shown = format!("{place}: {} = {}", entry.name, entry.value.python_repr());
                judged(setting, &entry.value, &shown, &mut origin.warnings)?;
            }
        }
    }
    Ok(given)
}

/// The gunicorn setting or hook a misspelt name is close to.
fn near_setting(name: &str) -> Option<&'static str> {
    if name.starts_with('_') || name.len() < 4 || name.chars().any(|c| c.is_ascii_uppercase()) {
        return None;
    }
    gunicorn::SETTINGS
        .iter()
        .map(|s| (strsim::levenshtein(name, s.name), s.name))
        .filter(|(distance, _)| *distance <= 2)
        .min()
        .map(|(_, name)| name)
}

/// The option values a file gives `arg`, each checked by the option's own parser so a bad
/// one is reported with its file and line. None: nothing to set (None, or false for a flag).
fn option_given(
    arg: &Arg,
    value: &SettingValue,
    place: &str,
    name: &str,
    source: &Source,
) -> Result<Option<Given>, String> {
    let bad = |what: &str| format!("{place}: {name} = {}: {what}", value.python_repr());
    let values = if is_flag(arg) {
        match value {
            SettingValue::Bool(b) => vec![b.to_string()],
            SettingValue::Str(s)
                if matches!(s.trim().to_lowercase().as_str(), "true" | "false") =>
            {
                vec![s.trim().to_lowercase()]
            }
            SettingValue::None => return Ok(None),
            _ => return Err(bad("takes True or False")),
        }
    } else {
        if matches!(value, SettingValue::Bool(_)) {
            return Err(bad("has a value of the wrong type"));
        }
        value
            .option_values(!is_repeatable(arg))
            .map_err(|what| bad(&what))?
    };
    if values.is_empty() || values == ["false"] {
        return Ok(None);
    }
    let mut check = vec![OsString::from("wsgihost")];
    check.extend(arguments_for(arg, &values));
    if let Err(err) = Command::new("wsgihost")
        .arg(arg.clone().env(None::<&str>).required(false))
        .try_get_matches_from(&check)
    {
        return Err(bad(&first_line(&err)));
    }
    Ok(Some(Given {
        id: arg.get_id().as_str().to_string(),
        values,
        source: source.clone(),
    }))
}

/// Command-line arguments giving `arg` these values.
fn arguments_for(arg: &Arg, values: &[String]) -> Vec<OsString> {
    match arg.get_long() {
        Some(long) if is_flag(arg) => vec![format!("--{long}").into()],
        Some(long) => values
            .iter()
            .map(|value| format!("--{long}={value}").into())
            .collect(),
        None => values.iter().map(OsString::from).collect(),
    }
}

/// The command line with the lower sources' values added in front (a positional one goes
/// last, unless the command line has its own).
fn merged_arguments(command: &Command, args: &[OsString], lower: &[Given]) -> Vec<OsString> {
    let mut merged: Vec<OsString> = args.iter().take(1).cloned().collect();
    let mut positional = Vec::new();
    for given in lower {
        let Some(arg) = command
            .get_arguments()
            .find(|a| a.get_id() == given.id.as_str())
        else {
            continue;
        };
        let words = arguments_for(arg, &given.values);
        match arg.get_long() {
            Some(_) => merged.extend(words),
            None => positional.extend(words),
        }
    }
    merged.extend(args.iter().skip(1).cloned());
    if !positional.is_empty() {
        merged.push("--".into());
        merged.extend(positional);
    }
    merged
}

/// Every setting's effective value and source.
fn effective(
    command: &Command,
    matches: &ArgMatches,
    lower: &HashMap<&str, &Source>,
) -> Vec<super::Effective> {
    settings(command)
        .filter(|arg| !matches!(arg.get_id().as_str(), "check_config" | "print_config"))
        .map(|arg| {
            let id = arg.get_id().as_str();
            let source = match (lower.get(id), matches.value_source(id)) {
                (Some(source), _) => (*source).clone(),
                (None, Some(ValueSource::CommandLine)) => Source::CommandLine,
                (None, Some(ValueSource::EnvVariable)) => Source::Environment(
                    arg.get_env()
                        .map_or(String::new(), |e| e.to_string_lossy().into_owned()),
                ),
                _ => Source::Default,
            };
            Effective {
                key: key(arg),
                values: raw_values(matches, arg),
                source,
                flag: is_flag(arg),
                repeatable: is_repeatable(arg) || arg.get_value_delimiter().is_some(),
            }
        })
        .collect()
}

/// The effective configuration as TOML that starts the same server when read back, each
/// line noting where its value came from.
pub fn effective_toml(config: &Config) -> String {
    let mut out = String::from("# effective wsgihost configuration\n");
    if let Some(file) = &config.origin.file {
        out.push_str(&format!("# read from {}\n", file.display()));
    }
    if !config.origin.hooks.is_empty() {
        out.push_str(&format!(
            "# server hooks ({}) live in the Python file: TOML cannot hold them\n",
            config.origin.hooks.join(", ")
        ));
    }
    for entry in &config.origin.effective {
        let toml_text = |v: &String| toml::Value::String(v.clone()).to_string();
        let value = if entry.flag {
            entry.values.first().map_or("false".into(), |v| v.clone())
        } else if entry.repeatable {
            format!(
                "[{}]",
                entry
                    .values
                    .iter()
                    .map(toml_text)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            match entry.values.first() {
                Some(value) => toml_text(value),
                None => {
                    out.push_str(&format!("# {} is not set\n", entry.key));
                    continue;
                }
            }
        };
        out.push_str(&format!("{} = {value}  # {}\n", entry.key, entry.source));
    }
    out
}

/// The option reference, as a Markdown table: option, file key, environment variable,
/// default, meaning. The README embeds this output.
pub fn reference(command: &Command) -> String {
    let mut out = String::from(
        "| option | file key | environment | default | meaning |\n|---|---|---|---|---|\n",
    );
    for arg in settings(command).filter(|arg| !arg.is_hide_set()) {
        let mut names: Vec<String> = arg
            .get_short()
            .map(|s| format!("-{s}"))
            .into_iter()
            .chain(arg.get_long().map(|l| format!("--{l}")))
            .chain(
                arg.get_visible_aliases()
                    .into_iter()
                    .flatten()
                    .map(|a| format!("--{a}")),
            )
            .collect();
        if names.is_empty() {
            names.push(
                arg.get_value_names()
                    .and_then(|n| n.first())
                    .map_or("APP".into(), |n| n.to_string()),
            );
        }
        let flag = format!("`{}`", names.join("`, `"));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Files that exist only in memory; no Python.
    struct Memory(Vec<(&'static str, &'static str)>);

    impl Files for Memory {
        fn read(&self, path: &Path) -> std::io::Result<String> {
            self.0
                .iter()
                .find(|(name, _)| Path::new(name) == path)
                .map(|(_, text)| text.to_string())
                .ok_or_else(|| std::io::ErrorKind::NotFound.into())
        }
        fn exists(&self, path: &Path) -> bool {
            self.0.iter().any(|(name, _)| Path::new(name) == path)
        }
        fn run_python(&self, _: &str, _: Option<&Path>) -> Result<Namespace, String> {
            Err("no Python in this test".into())
        }
    }

    fn load_with(args: &[&str], files: &[(&'static str, &'static str)]) -> Result<Config, String> {
        let args = args.iter().map(OsString::from).collect();
        match load(args, &Memory(files.to_vec()))? {
            Parsed::Run(config) => Ok(*config),
            Parsed::Print(text) => Err(format!("printed {text}")),
        }
    }

    #[test]
    fn command_line_beats_the_file() {
        let toml = (
            "wsgihost.toml",
            "workers = 3\nthreads = 2\nbind = [\"127.0.0.1:9\"]\n",
        );
        let config = load_with(&["wsgihost", "--threads", "5"], &[toml]).unwrap();
        assert_eq!((config.workers, config.threads), (3, 5));
        assert_eq!(config.bind.len(), 1);
        assert_eq!(config.origin.file, Some(PathBuf::from("wsgihost.toml")));
        let workers = config
            .origin
            .effective
            .iter()
            .find(|e| e.key == "workers")
            .unwrap();
        assert_eq!(workers.source, Source::File("wsgihost.toml".into()));
    }

    #[test]
    fn gunicorn_flags_are_honoured_warned_or_refused() {
        let config = load_with(
            &[
                "wsgihost",
                "-t",
                "120",
                "-w",
                "4",
                "-b",
                "localhost:8001",
                "--worker-tmp-dir",
                "/dev/shm",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(
            (config.timeout, config.workers, config.threads),
            (120.0, 4, 8)
        );
        assert_eq!(
            config.origin.warnings.len(),
            1,
            "{:?}",
            config.origin.warnings
        );
        assert!(
            config.origin.warnings[0].starts_with("--worker-tmp-dir '/dev/shm' has no effect here")
        );
        let refused = load_with(&["wsgihost", "-D"], &[]).unwrap_err();
        assert!(
            refused.starts_with("--daemon is not supported: wsgihost does not daemonize"),
            "{refused}"
        );
        let sync = load_with(&["wsgihost", "-k", "sync"], &[]).unwrap();
        assert_eq!(sync.threads, 1);
        assert!(
            load_with(&["wsgihost", "-k", "gevent"], &[])
                .unwrap_err()
                .contains("greenlet")
        );
    }

    #[test]
    fn a_misspelt_flag_gets_a_suggestion() {
        let message = load_with(&["wsgihost", "--wokers", "2"], &[]).unwrap_err();
        assert!(message.ends_with("did you mean --workers?"), "{message}");
    }

    #[test]
    fn both_default_files_are_ambiguous() {
        let files = [("wsgihost.toml", ""), ("gunicorn.conf.py", "")];
        assert!(
            load_with(&["wsgihost"], &files)
                .unwrap_err()
                .contains("--config")
        );
    }

    #[test]
    fn file_values_are_checked_with_their_line() {
        let toml = ("bad.toml", "workers = 1\n\nthreads = \"many\"\n");
        let message = load_with(&["wsgihost", "-c", "bad.toml"], &[toml]).unwrap_err();
        assert!(
            message.starts_with("bad.toml:3: threads = 'many': invalid value 'many'"),
            "{message}"
        );
    }

    #[test]
    fn the_effective_toml_reads_back_the_same() {
        let config = load_with(
            &[
                "wsgihost", "-w", "2", "--static", "/s=html", "--reload", "app:app",
            ],
            &[],
        )
        .unwrap();
        let text = effective_toml(&config);
        let leaked: &'static str = Box::leak(text.into_boxed_str());
        let again =
            load_with(&["wsgihost", "-c", "again.toml"], &[("again.toml", leaked)]).unwrap();
        assert_eq!(again.workers, 2);
        assert!(again.reload);
        assert_eq!(again.app.as_deref(), Some("app:app"));
        assert_eq!(again.statics, config.statics);
    }
}
