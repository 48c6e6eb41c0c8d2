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
use figment::Figment;
use std::path::Path;

/// The environment prefix; `HUATUO_AGENT__REGION=eu` sets `agent.region`.
pub const ENV_PREFIX: &str = "HUATUO_";

/// The commented default configuration, as printed by `huatuo-otel config default`.
/// It is the single source of the documented defaults: a test checks it loads into `Config::default()`.
pub const DEFAULT_TOML: &str = include_str!("../huatuo-otel.default.toml");

/// Loads the configuration from all layers. `file` is optional: without it only defaults,
/// environment and `overrides` apply. `overrides` are the command-line flags the user set.
pub fn load(file: Option<&Path>, overrides: Figment) -> Result<Config, ConfigError> {
    load_with_env(file, overrides, Env::prefixed(ENV_PREFIX).split("__"))
}

fn load_with_env(file: Option<&Path>, overrides: Figment, env: Env) -> Result<Config, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = file {
        if !path.is_file() {
            return Err(ConfigError::MissingFile(path.to_path_buf()));
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    let figment = figment.merge(env.lowercase(true)).merge(overrides);
    let config: Config = figment.extract().map_err(ConfigError::from_figment)?;
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests;
