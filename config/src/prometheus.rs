use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr};

/// HuaTuo's own metrics port, kept so existing scrape configurations find the agent.
pub const PROMETHEUS_DEFAULT_PORT: u16 = 19704;

/// `[exporters.prometheus]`: a pull endpoint, `GET /metrics` in the Prometheus text format, for
/// users who scrape instead of receiving OTLP. It serves the same metrics the other exporters
/// send (cumulative); logs and spans need the file or OTLP exporter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusExporterConfig {
    pub enabled: bool,
    /// Address and port to listen on.
    pub listen: SocketAddr,
}

impl Default for PrometheusExporterConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, PROMETHEUS_DEFAULT_PORT)),
        }
    }
}
