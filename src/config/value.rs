//! A setting's value as a configuration file gave it (a Python config file's objects, a TOML
//! value, a flag's text), before it becomes the text of a wsgihost option.
#[derive(Debug, Clone, PartialEq)]
pub enum SettingValue {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<SettingValue>),
    Dict(Vec<(String, SettingValue)>),
    /// Anything else (a function, an object): its repr.
    Other(String),
}

impl SettingValue {
    /// None, False, 0, '' or empty, as Python's truth test sees it.
    pub fn is_falsy(&self) -> bool {
        match self {
            SettingValue::None => true,
            SettingValue::Bool(b) => !b,
            SettingValue::Int(n) => *n == 0,
            SettingValue::Float(f) => *f == 0.0,
            SettingValue::Str(s) => s.trim().is_empty(),
            SettingValue::List(items) => items.is_empty(),
            SettingValue::Dict(items) => items.is_empty(),
            SettingValue::Other(_) => false,
        }
    }

    /// An integer, as gunicorn's validators read one: a bool is 0 or 1, text is parsed.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            SettingValue::Bool(b) => Some(i64::from(*b)),
            SettingValue::Int(n) => Some(*n),
            SettingValue::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn as_text(&self) -> Option<String> {
        match self {
            SettingValue::Str(s) => Some(s.clone()),
            SettingValue::Int(n) => Some(n.to_string()),
            SettingValue::Float(f) => Some(f.to_string()),
            _ => None,
        }
    }

    /// How Python would print it, for messages that quote the user's setting.
    pub fn python_repr(&self) -> String {
        match self {
            SettingValue::None => "None".into(),
            SettingValue::Bool(true) => "True".into(),
            SettingValue::Bool(false) => "False".into(),
            SettingValue::Int(n) => n.to_string(),
            SettingValue::Float(f) => format!("{f:?}"),
            SettingValue::Str(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
            SettingValue::List(items) => format!(
                "[{}]",
                items
                    .iter()
                    .map(SettingValue::python_repr)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            SettingValue::Dict(items) => format!(
                "{{{}}}",
                items
                    .iter()
                    .map(|(k, v)| format!("'{k}': {}", v.python_repr()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            SettingValue::Other(repr) => repr.clone(),
        }
    }

    /// The option values standing for this one: a list gives one each (a repeatable option)
    /// or is joined with ',' (`join`: an option that takes a comma-separated list); a dict
    /// gives `KEY=VALUE` pairs the same way; None gives none. Err: what is wrong with it.
    pub fn option_values(&self, join: bool) -> Result<Vec<String>, String> {
        let scalar = |value: &SettingValue| match value {
            SettingValue::Str(s) => Ok(s.trim().to_string()),
            SettingValue::Int(n) => Ok(n.to_string()),
            SettingValue::Float(f) => Ok(f.to_string()),
            SettingValue::Bool(b) => Ok(b.to_string()),
            other => Err(format!(
                "{} is not a string or a number",
                other.python_repr()
            )),
        };
        let values: Vec<String> = match self {
            SettingValue::None => Vec::new(),
            SettingValue::List(items) => items.iter().map(scalar).collect::<Result<_, _>>()?,
            SettingValue::Dict(items) => items
                .iter()
                .map(|(key, value)| Ok(format!("{key}={}", scalar(value)?)))
                .collect::<Result<_, String>>()?,
            SettingValue::Other(repr) => {
                return Err(format!("{repr} is not a string, a number or a list"));
            }
            single => vec![scalar(single)?],
        };
        Ok(match join && values.len() > 1 {
            true => vec![values.join(",")],
            false => values,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_become_option_text() {
        let list = SettingValue::List(vec![
            SettingValue::Str("0.0.0.0:80".into()),
            SettingValue::Str(" unix:/x ".into()),
        ]);
        assert_eq!(
            list.option_values(false).unwrap(),
            ["0.0.0.0:80", "unix:/x"]
        );
        assert_eq!(list.option_values(true).unwrap(), ["0.0.0.0:80,unix:/x"]);
        let dict = SettingValue::Dict(vec![("X-PROTO".into(), SettingValue::Str("https".into()))]);
        assert_eq!(dict.option_values(true).unwrap(), ["X-PROTO=https"]);
        assert!(SettingValue::None.option_values(false).unwrap().is_empty());
        assert!(
            SettingValue::Other("<function f>".into())
                .option_values(false)
                .is_err()
        );
        assert_eq!(SettingValue::Str("four".into()).python_repr(), "'four'");
        assert!(SettingValue::Dict(Vec::new()).is_falsy());
        assert_eq!(SettingValue::Bool(true).as_int(), Some(1));
    }
}
