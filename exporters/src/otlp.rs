//! OTLP exporters (gRPC via tonic, HTTP/protobuf via the blocking reqwest client) built from
//! `exporters.otlp`.
//!
//! Everything the user wrote is validated here, before the SDK sees it: the SDK silently drops
//! HTTP headers it cannot parse, and its error messages name its own builder fields rather than
//! our configuration keys.

use anyhow::{bail, Context as _};
use huatuo_config::{Compression, OtlpExporterConfig, OtlpProtocol};
use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use opentelemetry_otlp::{
    LogExporter, MetricExporter, Protocol, RetryPolicy, SpanExporter, WithExportConfig,
    WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::metrics::Temporality;
use std::collections::HashMap;
use std::time::Duration;
use tonic::codegen::http::header::{HeaderMap, HeaderName, HeaderValue};
use tonic::codegen::http::Uri;

pub const LOGS_PATH: &str = "/v1/logs";
pub const METRICS_PATH: &str = "/v1/metrics";
pub const TRACES_PATH: &str = "/v1/traces";

/// `exporters.otlp` after validation, in the shapes the SDK builders take.
struct Settings {
    protocol: OtlpProtocol,
    /// Without a trailing slash, so HTTP signal paths can be appended.
    endpoint: String,
    headers: HeaderMap,
    timeout: Duration,
    compression: Option<opentelemetry_otlp::Compression>,
}

impl Settings {
    fn from_config(config: &OtlpExporterConfig) -> anyhow::Result<Self> {
        let endpoint = validate_endpoint(&config.endpoint)?;
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let key = format!("exporters.otlp.headers.{name}");
            let header_name = HeaderName::from_bytes(name.as_bytes())
                .with_context(|| format!("{key}: {name:?} is not a valid header name"))?;
            // The value is left out of the message: it is often a credential.
            let header_value = HeaderValue::from_str(value).with_context(|| {
                format!("{key}: the value is not a valid header value (visible ASCII only)")
            })?;
            headers.insert(header_name, header_value);
        }
        if config.protocol == OtlpProtocol::Grpc {
            require_multi_thread_runtime()?;
        }
        Ok(Self {
            protocol: config.protocol,
            endpoint,
            headers,
            timeout: Duration::from_secs(config.timeout_secs),
            compression: match config.compression {
                Compression::None => None,
                Compression::Gzip => Some(opentelemetry_otlp::Compression::Gzip),
            },
        })
    }

    fn tonic<B: WithExportConfig + WithTonicConfig>(&self, builder: B) -> B {
        let builder = builder
            .with_endpoint(self.endpoint.clone())
            .with_timeout(self.timeout)
            .with_metadata(MetadataMap::from_headers(self.headers.clone()))
            .with_retry_policy(RetryPolicy::recommended());
        match self.compression {
            Some(compression) => builder.with_compression(compression),
            None => builder,
        }
    }

    fn http<B: WithExportConfig + WithHttpConfig>(&self, builder: B, signal_path: &str) -> B {
        let headers: HashMap<String, String> = self
            .headers
            .iter()
            .map(|(name, value)| {
                // The SDK percent-decodes header values (meant for OTEL_EXPORTER_OTLP_HEADERS),
                // which would corrupt a configured value containing `%`; escaping `%` makes the
                // decode an identity. Values were checked to be visible ASCII above.
                let value = value.to_str().unwrap_or_default().replace('%', "%25");
                (name.as_str().to_owned(), value)
            })
            .collect();
        let builder = builder
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{}{signal_path}", self.endpoint))
            .with_timeout(self.timeout)
            .with_headers(headers)
            .with_retry_policy(RetryPolicy::recommended());
        match self.compression {
            Some(compression) => builder.with_compression(compression),
            None => builder,
        }
    }
}

fn validate_endpoint(endpoint: &str) -> anyhow::Result<String> {
    const KEY: &str = "exporters.otlp.endpoint";
    let uri: Uri = endpoint
        .parse()
        .with_context(|| format!("{KEY}: {endpoint:?} is not a valid URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => bail!("{KEY}: {endpoint:?} must start with http:// or https://"),
    }
    if uri.host().is_none_or(str::is_empty) {
        bail!("{KEY}: {endpoint:?} has no host");
    }
    if uri.query().is_some() {
        bail!("{KEY}: {endpoint:?} must not have a query string");
    }
    Ok(endpoint.trim_end_matches('/').to_owned())
}

/// tonic's lazily connected channel spawns its connection task on the current tokio runtime while
/// being built, and the SDK's blocking flush/shutdown starve a single-threaded runtime (see
/// `Providers::shutdown`), so fail early with a clear message instead of panicking or hanging.
fn require_multi_thread_runtime() -> anyhow::Result<()> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => Ok(()),
        Ok(_) => bail!(
            "exporters.otlp.protocol = \"grpc\" needs a multi-thread tokio runtime, \
             but build_providers was called on a current-thread runtime"
        ),
        Err(_) => bail!(
            "exporters.otlp.protocol = \"grpc\" needs a tokio runtime: \
             call build_providers from inside a multi-thread tokio runtime"
        ),
    }
}

/// Builds the OTLP log exporter. For gRPC, call inside a multi-thread tokio runtime.
pub fn log_exporter(config: &OtlpExporterConfig) -> anyhow::Result<LogExporter> {
    let settings = Settings::from_config(config)?;
    let built = match settings.protocol {
        OtlpProtocol::Grpc => settings.tonic(LogExporter::builder().with_tonic()).build(),
        OtlpProtocol::HttpProtobuf => settings
            .http(LogExporter::builder().with_http(), LOGS_PATH)
            .build(),
    };
    built.context("building the OTLP log exporter (exporters.otlp)")
}

/// Builds the OTLP span exporter. For gRPC, call inside a multi-thread tokio runtime.
pub fn span_exporter(config: &OtlpExporterConfig) -> anyhow::Result<SpanExporter> {
    let settings = Settings::from_config(config)?;
    let built = match settings.protocol {
        OtlpProtocol::Grpc => settings.tonic(SpanExporter::builder().with_tonic()).build(),
        OtlpProtocol::HttpProtobuf => settings
            .http(SpanExporter::builder().with_http(), TRACES_PATH)
            .build(),
    };
    built.context("building the OTLP span exporter (exporters.otlp)")
}

/// Builds the OTLP metric exporter with cumulative temporality, so a collector restart or a lost
/// request never corrupts totals. For gRPC, call inside a multi-thread tokio runtime.
pub fn metric_exporter(config: &OtlpExporterConfig) -> anyhow::Result<MetricExporter> {
    let settings = Settings::from_config(config)?;
    let builder = MetricExporter::builder();
    let built = match settings.protocol {
        OtlpProtocol::Grpc => settings
            .tonic(
                builder
                    .with_tonic()
                    .with_temporality(Temporality::Cumulative),
            )
            .build(),
        OtlpProtocol::HttpProtobuf => settings
            .http(
                builder
                    .with_http()
                    .with_temporality(Temporality::Cumulative),
                METRICS_PATH,
            )
            .build(),
    };
    built.context("building the OTLP metric exporter (exporters.otlp)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: &str) -> OtlpExporterConfig {
        OtlpExporterConfig {
            enabled: true,
            endpoint: endpoint.into(),
            protocol: OtlpProtocol::HttpProtobuf,
            ..Default::default()
        }
    }

    fn error_of<T>(result: anyhow::Result<T>) -> String {
        match result {
            Ok(_) => panic!("expected an error"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn bad_endpoints_name_the_key() {
        for endpoint in [
            "",
            "127.0.0.1:4318",
            "ftp://host:4318",
            "http://",
            "http://h:1?x=1",
        ] {
            let err = error_of(log_exporter(&config(endpoint)));
            assert!(
                err.contains("exporters.otlp.endpoint"),
                "{endpoint:?}: {err}"
            );
        }
    }

    #[test]
    fn bad_headers_name_the_key_but_not_the_value() {
        let mut cfg = config("http://127.0.0.1:4318");
        cfg.headers.insert("bad name".into(), "v".into());
        let err = error_of(log_exporter(&cfg));
        assert!(err.contains("exporters.otlp.headers.bad name"), "{err}");

        let mut cfg = config("http://127.0.0.1:4318");
        cfg.headers
            .insert("authorization".into(), "secret\nvalue".into());
        let err = error_of(metric_exporter(&cfg));
        assert!(
            err.contains("exporters.otlp.headers.authorization"),
            "{err}"
        );
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn grpc_outside_a_runtime_is_an_error_not_a_panic() {
        let mut cfg = config("http://127.0.0.1:4317");
        cfg.protocol = OtlpProtocol::Grpc;
        let err = error_of(span_exporter(&cfg));
        assert!(err.contains("tokio runtime"), "{err}");

        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = rt.block_on(async { error_of(span_exporter(&cfg)) });
        assert!(err.contains("multi-thread"), "{err}");
    }

    /// The blocking reqwest client panics if created inside a runtime; the SDK creates it on a
    /// thread of its own, and dropping it (say, when a later exporter fails to build) is safe.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn http_exporter_builds_and_drops_inside_a_runtime() {
        let exporter = log_exporter(&config("http://127.0.0.1:4318")).unwrap();
        drop(exporter);
    }

    #[test]
    fn endpoint_keeps_path_prefix_without_trailing_slash() {
        assert_eq!(
            validate_endpoint("http://h:4318/otlp/").unwrap(),
            "http://h:4318/otlp"
        );
        assert_eq!(validate_endpoint("https://h").unwrap(), "https://h");
    }
}
