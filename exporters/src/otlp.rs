//! OTLP exporters (gRPC via tonic, HTTP/protobuf via the blocking reqwest client) built from
//! `exporters.otlp`.
//!
//! Everything the user wrote is validated here, before the SDK sees it: the SDK silently drops
//! HTTP headers it cannot parse, and its error messages name its own builder fields rather than
//! our configuration keys.

use crate::tls::{PemFile, TlsFiles};
use anyhow::{bail, Context as _};
use huatuo_config::{Compression, OtlpExporterConfig, OtlpProtocol, OtlpTlsConfig};
use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use opentelemetry_otlp::{
    LogExporter, MetricExporter, Protocol, RetryPolicy, SpanExporter, WithExportConfig,
    WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::metrics::Temporality;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tonic::codegen::http::header::{HeaderMap, HeaderName, HeaderValue};
use tonic::codegen::http::Uri;
use tonic::transport::{Channel, Endpoint};

pub const LOGS_PATH: &str = "/v1/logs";
pub const METRICS_PATH: &str = "/v1/metrics";
pub const TRACES_PATH: &str = "/v1/traces";

/// `exporters.otlp` after validation, in the shapes the SDK builders (and the spool replay) take.
#[derive(Clone)]
pub(crate) struct Settings {
    pub protocol: OtlpProtocol,
    /// Without a trailing slash, so HTTP signal paths can be appended.
    pub endpoint: String,
    pub headers: HeaderMap,
    pub timeout: Duration,
    pub compression: Option<opentelemetry_otlp::Compression>,
    /// For `https://` endpoints.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Settings {
    pub fn from_config(config: &OtlpExporterConfig) -> anyhow::Result<Self> {
        let endpoint = validate_endpoint(&config.endpoint)?;
        // reqwest's rustls backend needs a process-wide provider even for plain http://; an
        // already installed one (the same ring) is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = if endpoint.starts_with("https://") {
            Some(Arc::new(crate::tls::client_config(&tls_files(
                &config.tls,
            ))?))
        } else {
            if config.tls != OtlpTlsConfig::default() {
                tracing::warn!(
                    endpoint = %endpoint,
                    "exporters.otlp.tls is ignored: the endpoint is not https://"
                );
            }
            None
        };
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
            tls,
        })
    }

    /// A lazily connected gRPC channel; TLS, when the endpoint is https://, is ours (rustls
    /// with the configured CA, client certificate and verification), not tonic's, so the same
    /// settings serve every client. Call inside a tokio runtime.
    pub fn grpc_channel(&self) -> anyhow::Result<Channel> {
        let uri: Uri = self.endpoint.parse()?;
        let Some(tls) = &self.tls else {
            return Ok(Endpoint::from_shared(self.endpoint.clone())?
                .timeout(self.timeout)
                .connect_lazy());
        };
        let host = uri.host().unwrap_or_default().to_owned();
        let port = uri.port_u16().unwrap_or(443);
        // tonic refuses https:// URIs without its own TLS: ours is done by the connector.
        let path = uri.path_and_query().map_or("", |p| p.as_str());
        let endpoint =
            Endpoint::from_shared(format!("http://{host}:{port}{path}"))?.timeout(self.timeout);
        let mut config = (**tls).clone();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let bare_host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let server_name = rustls::pki_types::ServerName::try_from(bare_host.clone())
            .with_context(|| format!("exporters.otlp.endpoint: host {host:?}"))?;
        let connect = tower::service_fn(move |_: Uri| {
            let connector = connector.clone();
            let server_name = server_name.clone();
            let target = (bare_host.clone(), port);
            async move {
                let tcp = tokio::net::TcpStream::connect(&target).await?;
                tcp.set_nodelay(true)?;
                let stream = connector.connect(server_name, tcp).await.map_err(|e| {
                    std::io::Error::other(format!(
                        "TLS handshake with {}:{} failed (see exporters.otlp.tls): {e}",
                        target.0, target.1
                    ))
                })?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        });
        Ok(endpoint.connect_with_connector_lazy(connect))
    }

    /// The async HTTP client of the spool replay, with the exporters' TLS settings.
    pub fn http_client_builder(&self) -> reqwest::ClientBuilder {
        let builder = reqwest::Client::builder().timeout(self.timeout);
        match &self.tls {
            Some(tls) => builder.tls_backend_preconfigured((**tls).clone()),
            None => builder,
        }
    }

    /// The SDK's blocking HTTP client with our TLS settings. reqwest's blocking client cannot
    /// be built on a tokio runtime thread, so it is built on a thread of its own.
    fn blocking_http_client(&self) -> anyhow::Result<reqwest::blocking::Client> {
        let timeout = self.timeout;
        let tls = self.tls.clone();
        std::thread::spawn(move || {
            let builder = reqwest::blocking::Client::builder().timeout(timeout);
            match tls {
                Some(tls) => builder.tls_backend_preconfigured((*tls).clone()),
                None => builder,
            }
            .build()
        })
        .join()
        .map_err(|_| anyhow::anyhow!("building the OTLP HTTP client panicked"))?
        .context("building the OTLP HTTP client (exporters.otlp)")
    }

    fn tonic<B: WithExportConfig + WithTonicConfig>(&self, builder: B) -> anyhow::Result<B> {
        let builder = builder
            .with_channel(self.grpc_channel()?)
            .with_timeout(self.timeout)
            .with_metadata(MetadataMap::from_headers(self.headers.clone()))
            .with_retry_policy(RetryPolicy::recommended());
        Ok(match self.compression {
            Some(compression) => builder.with_compression(compression),
            None => builder,
        })
    }

    fn http<B: WithExportConfig + WithHttpConfig>(
        &self,
        builder: B,
        signal_path: &str,
    ) -> anyhow::Result<B> {
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
            .with_http_client(self.blocking_http_client()?)
            .with_retry_policy(RetryPolicy::recommended());
        Ok(match self.compression {
            Some(compression) => builder.with_compression(compression),
            None => builder,
        })
    }
}

fn tls_files(tls: &OtlpTlsConfig) -> TlsFiles<'_> {
    fn file<'a>(key: &'a str, path: &'a Option<std::path::PathBuf>) -> Option<PemFile<'a>> {
        path.as_deref().map(|path| PemFile { key, path })
    }
    TlsFiles {
        ca: file("exporters.otlp.tls.ca_file", &tls.ca_file),
        client: file("exporters.otlp.tls.cert_file", &tls.cert_file)
            .zip(file("exporters.otlp.tls.key_file", &tls.key_file)),
        insecure_skip_verify: tls.insecure_skip_verify,
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
        OtlpProtocol::Grpc => settings.tonic(LogExporter::builder().with_tonic())?.build(),
        OtlpProtocol::HttpProtobuf => settings
            .http(LogExporter::builder().with_http(), LOGS_PATH)?
            .build(),
    };
    built.context("building the OTLP log exporter (exporters.otlp)")
}

/// Builds the OTLP span exporter. For gRPC, call inside a multi-thread tokio runtime.
pub fn span_exporter(config: &OtlpExporterConfig) -> anyhow::Result<SpanExporter> {
    let settings = Settings::from_config(config)?;
    let built = match settings.protocol {
        OtlpProtocol::Grpc => settings
            .tonic(SpanExporter::builder().with_tonic())?
            .build(),
        OtlpProtocol::HttpProtobuf => settings
            .http(SpanExporter::builder().with_http(), TRACES_PATH)?
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
            )?
            .build(),
        OtlpProtocol::HttpProtobuf => settings
            .http(
                builder
                    .with_http()
                    .with_temporality(Temporality::Cumulative),
                METRICS_PATH,
            )?
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
