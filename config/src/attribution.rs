//! `[attribution]`: from the cgroup (or network namespace) of a record to its container and pod.

use crate::ConfigError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttributionConfig {
    /// Cgroups remembered, resolved or found unknown (least recently used go first).
    pub cache_size: usize,
    /// Follow cgroup creation and removal in the kernel (`cgroup:cgroup_mkdir` /
    /// `cgroup:cgroup_rmdir`), so new containers resolve without a search of the hierarchy and
    /// removed ones leave the cache.
    pub watch_cgroups: bool,
    pub kubelet: KubeletConfig,
}

impl Default for AttributionConfig {
    fn default() -> Self {
        Self {
            cache_size: 16384,
            watch_cgroups: true,
            kubelet: KubeletConfig::default(),
        }
    }
}

/// Pod and container names from the local kubelet's `/pods`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubeletConfig {
    pub enabled: bool,
    /// Read-only port `http://127.0.0.1:10255/pods`, or the authenticated one
    /// `https://127.0.0.1:10250/pods` (with a client certificate or a token).
    pub url: String,
    /// PEM client certificate and its key, for the authenticated port; both or neither.
    pub client_cert_file: PathBuf,
    pub client_key_file: PathBuf,
    /// PEM CA that signed the kubelet's serving certificate.
    pub ca_file: PathBuf,
    /// Bearer token (e.g. a service account token) sent instead of, or with, the certificate.
    pub token_file: PathBuf,
    /// Accept any kubelet serving certificate (self-signed ones are common); only with https.
    pub insecure_skip_tls_verify: bool,
    pub refresh_interval_secs: u64,
    pub timeout_secs: u64,
}

impl Default for KubeletConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            url: "http://127.0.0.1:10255/pods".into(),
            client_cert_file: PathBuf::new(),
            client_key_file: PathBuf::new(),
            ca_file: PathBuf::new(),
            token_file: PathBuf::new(),
            insecure_skip_tls_verify: false,
            refresh_interval_secs: 30,
            timeout_secs: 5,
        }
    }
}

impl AttributionConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| {
            Err(ConfigError::Invalid {
                key: format!("attribution.{key}"),
                reason,
            })
        };
        if self.cache_size == 0 {
            return invalid("cache_size", "must be at least 1".into());
        }
        let k = &self.kubelet;
        if !k.enabled {
            return Ok(());
        }
        let https = k.url.starts_with("https://");
        if !https && !k.url.starts_with("http://") {
            return invalid(
                "kubelet.url",
                format!("{:?} must start with http:// or https://", k.url),
            );
        }
        let set = |p: &PathBuf| !p.as_os_str().is_empty();
        if set(&k.client_cert_file) != set(&k.client_key_file) {
            return invalid(
                "kubelet.client_cert_file",
                "client_cert_file and client_key_file go together".into(),
            );
        }
        if https && !set(&k.ca_file) && !k.insecure_skip_tls_verify {
            return invalid(
                "kubelet.ca_file",
                "https needs the CA of the kubelet's serving certificate, or insecure_skip_tls_verify = true".into(),
            );
        }
        if !https && (set(&k.client_cert_file) || set(&k.ca_file)) {
            return invalid(
                "kubelet.url",
                format!("{:?}: certificates need an https:// url", k.url),
            );
        }
        if k.refresh_interval_secs == 0 || k.timeout_secs == 0 {
            return invalid(
                "kubelet.refresh_interval_secs",
                "refresh_interval_secs and timeout_secs must be at least 1".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubelet(url: &str) -> AttributionConfig {
        let mut config = AttributionConfig::default();
        config.kubelet.enabled = true;
        config.kubelet.url = url.into();
        config
    }

    fn error_of(config: &AttributionConfig) -> String {
        config.validate().unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_valid_and_the_kubelet_is_off() {
        let config = AttributionConfig::default();
        assert!(config.validate().is_ok());
        assert!(!config.kubelet.enabled);
        assert!(kubelet("http://127.0.0.1:10255/pods").validate().is_ok());
    }

    #[test]
    fn bad_settings_name_their_key() {
        let config = AttributionConfig {
            cache_size: 0,
            ..AttributionConfig::default()
        };
        assert!(error_of(&config).contains("attribution.cache_size"));

        assert!(error_of(&kubelet("127.0.0.1:10250")).contains("attribution.kubelet.url"));
        // https without a CA and without opting out of verification.
        assert!(error_of(&kubelet("https://127.0.0.1:10250/pods"))
            .contains("attribution.kubelet.ca_file"));
        let mut insecure = kubelet("https://127.0.0.1:10250/pods");
        insecure.kubelet.insecure_skip_tls_verify = true;
        assert!(insecure.validate().is_ok());

        let mut half = insecure.clone();
        half.kubelet.client_cert_file = "/etc/kubelet.crt".into();
        assert!(error_of(&half).contains("client_cert_file and client_key_file"));

        let mut plain_with_cert = kubelet("http://127.0.0.1:10255/pods");
        plain_with_cert.kubelet.ca_file = "/etc/ca.crt".into();
        assert!(error_of(&plain_with_cert).contains("need an https:// url"));

        let mut no_timeout = kubelet("http://127.0.0.1:10255/pods");
        no_timeout.kubelet.timeout_secs = 0;
        assert!(error_of(&no_timeout).contains("at least 1"));
    }
}
