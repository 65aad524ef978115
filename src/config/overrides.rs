//! Command-line overrides of a job file: `--input`, `--output`, `--state`, `--set key=value`
//! and `--storage-option KEY=VALUE`.
//!
//! Contract: `--set` settings are applied to the parsed TOML before it is deserialized, so an
//! overridden value meets exactly the checks a value written in the file meets.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};

/// Command-line overrides of the job file. Relative paths here are relative to the working
/// directory; relative paths inside the job file are relative to the job file's directory.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// Replaces `input.path`.
    pub input: Option<PathBuf>,
    /// Replaces `output.path`.
    pub output: Option<PathBuf>,
    /// Replaces `state.dir`.
    pub state: Option<PathBuf>,
    /// `key.path=value` settings, applied over the job file (`--set provider.batch_size=50`).
    pub sets: Vec<String>,
    /// `KEY=VALUE` storage settings, over the job file's `[storage]` (`--storage-option`).
    pub storage_options: Vec<String>,
}

impl Overrides {
    /// Applies every `--set` to the parsed job file, in order.
    pub(super) fn apply_sets(&self, table: &mut toml::Table) -> Result<()> {
        self.sets
            .iter()
            .try_for_each(|setting| apply_set(table, setting))
    }
}

/// Applies one `--set a.b.c=value` to the parsed job. The value is read as TOML (`50`,
/// `"100/60s"`, `["a", "b"]`, `true`) and, failing that, taken as a string.
fn apply_set(table: &mut toml::Table, setting: &str) -> Result<()> {
    let (key, raw) = setting.split_once('=').ok_or_else(|| {
        anyhow!("--set `{setting}`: write KEY=VALUE, e.g. provider.batch_size=50")
    })?;
    let key = key.trim();
    let value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").expect("parsed one key"),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        bail!("--set `{setting}`: `{key}` is not a key path such as provider.batch_size");
    }
    let mut node = table;
    for part in &parts[..parts.len() - 1] {
        let entry = node
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = entry
            .as_table_mut()
            .ok_or_else(|| anyhow!("--set `{setting}`: `{part}` is not a section"))?;
    }
    node.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}
