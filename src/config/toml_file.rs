//! A TOML configuration file (`--config wsgihost.toml`, or ./wsgihost.toml when present):
//! keys are the long flag names (`max-requests`, or `max_requests`), lists for repeatable
//! options. Each key becomes a setting with the line it is on, for messages.
use super::value::SettingValue;

#[derive(Debug)]
pub struct TomlEntry {
    /// The key as written.
    pub name: String,
    /// The option's long name (`_` read as `-`).
    pub key: String,
    pub line: usize,
    pub value: SettingValue,
}

/// The file's settings. Err: the syntax error, naming the file.
pub fn entries(shown: &str, text: &str) -> Result<Vec<TomlEntry>, String> {
    let table: toml::Table = text
        .parse()
        .map_err(|err: toml::de::Error| format!("{shown}: {}", err.message()))?;
    let line_of = |name: &str| {
        text.lines()
            .position(|line| line.trim_start().starts_with(name) && line.contains('='))
            .map_or(0, |n| n + 1)
    };
    Ok(table
        .iter()
        .map(|(name, value)| TomlEntry {
            name: name.clone(),
            key: name.replace('_', "-"),
            line: line_of(name),
            value: setting_value(value),
        })
        .collect())
}

fn setting_value(value: &toml::Value) -> SettingValue {
    match value {
        toml::Value::String(s) => SettingValue::Str(s.clone()),
        toml::Value::Integer(i) => SettingValue::Int(*i),
        toml::Value::Float(f) => SettingValue::Float(*f),
        toml::Value::Boolean(b) => SettingValue::Bool(*b),
        toml::Value::Array(items) => SettingValue::List(items.iter().map(setting_value).collect()),
        other => SettingValue::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_lines_and_values() {
        let found = entries(
            "f.toml",
            "# c\nmax_requests = 5\nbind = [\"a:1\", \"b:2\"]\n",
        )
        .unwrap();
        assert_eq!(found[0].key, "bind");
        assert_eq!(found[0].line, 3);
        assert_eq!(found[1].key, "max-requests");
        assert_eq!(found[1].value, SettingValue::Int(5));
        assert!(
            entries("f.toml", "x = ")
                .unwrap_err()
                .starts_with("f.toml: ")
        );
    }
}
