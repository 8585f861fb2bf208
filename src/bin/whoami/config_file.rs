//! `--config FILE`: a TOML file whose keys are the long flag names.
//!
//! The file is turned into flags and parsed by the same clap definition as
//! the command line, so every flag has a file equivalent with the same
//! values and checks, and a flag added to [`Cli`](crate::Cli) is a key at
//! once. A flag given on the command line wins: its key in the file is
//! dropped whole (a repeatable flag's list is replaced, not extended).

use std::ffi::OsString;
use std::fmt;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgMatches, Command};

/// Flags that are not settings and have no key.
const NOT_KEYS: [&str; 3] = ["config", "help", "version"];

/// A file that cannot be used; the message names the file and the key.
#[derive(Debug)]
pub(crate) struct FileError(String);

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The flags `path` holds, minus those `cli` (the command line's matches)
/// already sets, as arguments to put before the command line's own.
pub(crate) fn flags_from_file(
    command: &Command,
    cli: &ArgMatches,
    path: &Path,
) -> Result<Vec<OsString>, FileError> {
    let file = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| FileError(format!("cannot read config file {file}: {e}")))?;
    flags_from_toml(command, cli, &text).map_err(|e| FileError(format!("{file}: {e}")))
}

/// [`flags_from_file`] on the file's text; errors name the key.
pub(crate) fn flags_from_toml(
    command: &Command,
    cli: &ArgMatches,
    text: &str,
) -> Result<Vec<OsString>, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut flags = Vec::new();
    for (key, value) in &table {
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()) && !NOT_KEYS.contains(&key.as_str()))
            .ok_or_else(|| {
                format!(
                    "unknown key `{key}`; the keys are the long flag names: {}",
                    keys(command).join(", ")
                )
            })?;
        let key_flags = key_flags(key, value, arg.get_action().takes_values())
            .map_err(|e| format!("key `{key}`: {e}"))?;
        // Checked alone, so a bad value is reported against its key.
        let mut alone = vec![OsString::from(command.get_name())];
        alone.extend(key_flags.iter().cloned());
        if let Err(e) = command.clone().try_get_matches_from(alone) {
            return Err(format!("key `{key}`: {}", clap_message(&e)));
        }
        if cli.value_source(arg.get_id().as_str()) != Some(ValueSource::CommandLine) {
            flags.extend(key_flags);
        }
    }
    Ok(flags)
}

/// Every key a file may hold, in `--help` order.
pub(crate) fn keys(command: &Command) -> Vec<&str> {
    command
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|l| !NOT_KEYS.contains(l))
        .collect()
}

/// `key = value` as flags: a scalar is one `--key=value` (so a value
/// starting with `-` stays a value), an array one per element, `true` on a
/// flag without a value is `--key`, `false` nothing.
fn key_flags(key: &str, value: &toml::Value, takes_value: bool) -> Result<Vec<OsString>, String> {
    if !takes_value {
        return match value {
            toml::Value::Boolean(true) => Ok(vec![format!("--{key}").into()]),
            toml::Value::Boolean(false) => Ok(vec![]),
            other => Err(format!(
                "expected true or false, found {}",
                other.type_str()
            )),
        };
    }
    let scalar = |v: &toml::Value| match v {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        other => Err(format!(
            "expected a string or a number, found {}",
            other.type_str()
        )),
    };
    let values = match value {
        toml::Value::Array(items) => items.iter().map(scalar).collect::<Result<Vec<_>, _>>()?,
        single => vec![scalar(single)?],
    };
    Ok(values
        .into_iter()
        .map(|v| format!("--{key}={v}").into())
        .collect())
}

/// The first paragraph of a clap error, without its `error: ` prefix.
pub(crate) fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.split("\n\n").next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}
