//! huatuo-otel configuration.
//!
//! Layers, lowest to highest precedence: built-in defaults < TOML file < `HUATUO_*` environment
//! (`__` separates nesting levels: `HUATUO_EXPORTERS__FILE__DIRECTORY`) < command-line flags.
//! Unknown keys and wrong types are errors that name the key and where it came from.

mod attribution;
mod collectors;
mod error;
mod prometheus;
mod schema;
mod tracers;

pub use attribution::{AttributionConfig, KubeletConfig};
pub use collectors::*;
pub use error::ConfigError;
pub use prometheus::*;
pub use schema::*;
pub use tracers::*;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use std::path::Path;

/// The environment prefix; `HUATUO_AGENT__REGION=eu` sets `agent.region`.
pub const ENV_PREFIX: &str = "HUATUO_";

/// The commented default configuration, as printed by `huatuo-otel config default`.
/// It is the single source of the documented defaults: a test checks it loads into `Config::default()`.
pub const DEFAULT_TOML: &str = include_str!("../huatuo-otel.default.toml");

/// The command-line flags the user set: the highest-precedence layer. Each flag is its own
/// provider so that an error names the flag, not just the key it sets.
#[derive(Default)]
pub struct CommandLine(Vec<Flag>);

struct Flag {
    flag: String,
    key: String,
    value: Value,
}

impl CommandLine {
    /// Records that `flag` (e.g. `--disable-tracer`) sets the dotted `key` to `value`.
    pub fn set(&mut self, flag: &str, key: &str, value: Value) {
        self.0.push(Flag {
            flag: flag.to_string(),
            key: key.to_string(),
            value,
        });
    }
}

impl Provider for Flag {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("command-line flag {}", self.flag))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Serialized::default(&self.key, &self.value).data()
    }
}

/// Loads the configuration from all layers. `file` is optional: without it only defaults,
/// environment and `flags` apply.
pub fn load(file: Option<&Path>, flags: CommandLine) -> Result<Config, ConfigError> {
    load_with_env(file, flags, Env::prefixed(ENV_PREFIX).split("__"))
}

fn load_with_env(file: Option<&Path>, flags: CommandLine, env: Env) -> Result<Config, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = file {
        if !path.is_file() {
            return Err(ConfigError::MissingFile(path.to_path_buf()));
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    let figment = figment.merge(env.lowercase(true));
    let figment = flags.0.into_iter().fold(figment, Figment::merge);
    let config: Config = figment.extract().map_err(ConfigError::from_figment)?;
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests;
