use serde::{Deserialize, Serialize};

/// Network interface link changes (admin up/down, carrier up/down), from rtnetlink. Interfaces
/// are chosen by name: full-match regular expressions, `exclude` winning over `include`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetdevConfig {
    pub enabled: bool,
    /// Wait before restarting the tracer after a failure.
    pub restart_backoff_secs: u64,
    /// Interfaces watched (empty = all).
    pub include: Vec<InterfacePattern>,
    /// Interfaces never watched, even when included.
    pub exclude: Vec<InterfacePattern>,
}

impl Default for NetdevConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            restart_backoff_secs: 10,
            include: Vec::new(),
            // Loopback, and the per-container interfaces that come and go with every pod.
            exclude: ["lo", "veth.*", "docker.*", "cali.*", "lxc.*"]
                .into_iter()
                .map(|p| InterfacePattern(p.into()))
                .collect(),
        }
    }
}

super::tracer_section!(NetdevConfig);

/// A regular expression an interface name must match in full, checked when the configuration
/// is read (the error names the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InterfacePattern(String);

impl InterfacePattern {
    /// The pattern anchored at both ends.
    pub fn full_match(&self) -> String {
        format!("^(?:{})$", self.0)
    }
}

impl TryFrom<String> for InterfacePattern {
    type Error = String;

    fn try_from(pattern: String) -> Result<Self, String> {
        let checked = Self(pattern);
        regex::Regex::new(&checked.full_match())
            .map_err(|e| format!("{:?} is not a regular expression: {e}", checked.0))?;
        Ok(checked)
    }
}

impl From<InterfacePattern> for String {
    fn from(pattern: InterfacePattern) -> String {
        pattern.0
    }
}
