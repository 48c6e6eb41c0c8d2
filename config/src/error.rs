use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} does not exist or is not a regular file")]
    MissingFile(PathBuf),
    /// One message per problem, each naming the key and the file or variable it came from.
    #[error("invalid configuration:\n{}", .0.join("\n"))]
    Parse(Vec<String>),
    #[error("invalid configuration: {key}: {reason}")]
    Invalid { key: String, reason: String },
}

impl ConfigError {
    pub(crate) fn from_figment(error: figment::Error) -> Self {
        ConfigError::Parse(error.into_iter().map(describe).collect())
    }
}

fn describe(error: figment::Error) -> String {
    let mut path = error.path.clone();
    // Figment puts the unknown field at the end of the path for some providers only.
    if let figment::error::Kind::UnknownField(field, _) = &error.kind {
        if path.last() != Some(field) {
            path.push(field.clone());
        }
    }
    let key = if path.is_empty() {
        "<top level>".to_string()
    } else {
        path.join(".")
    };
    let source = match &error.metadata {
        Some(meta) => match &meta.source {
            Some(source) => format!("{} ({})", meta.name, source),
            None => meta.name.to_string(),
        },
        None => "unknown source".to_string(),
    };
    format!("  - key `{key}` in {source}: {}", error.kind)
}
