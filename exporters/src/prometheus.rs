//! The Prometheus pull endpoint: `GET /metrics` in the text exposition format.
//!
//! A second reader on the same meter provider (`opentelemetry-prometheus`, which follows the
//! OTel→Prometheus compatibility specification: `.` becomes `_`, unit suffixes such as
//! `_seconds`, `_total` on monotonic counters, histograms as `_bucket{le}`/`_sum`/`_count`, the
//! resource as `target_info`), so a scrape sees every metric the OTLP and file exporters send,
//! cumulative. The listener is bound while the providers are built, so a port already in use is
//! a startup error naming the configuration key; the server stops when the providers shut down.

use ::prometheus::{Encoder, Registry, TextEncoder};
use anyhow::Context as _;
use http_body_util::Full;
use huatuo_config::PrometheusExporterConfig;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use opentelemetry_prometheus::PrometheusExporter;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub const METRICS_PATH: &str = "/metrics";

/// A client that has not sent its request headers by then is disconnected, so idle or stuck
/// connections cannot pile up.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for scrapes in progress.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The bound, not yet serving, endpoint.
pub(crate) struct Server {
    registry: Registry,
    listener: std::net::TcpListener,
}

/// Binds `config.listen` and builds the reader to add to the meter provider; nothing is served
/// until [`Server::serve`].
pub(crate) fn prepare(
    config: &PrometheusExporterConfig,
) -> anyhow::Result<(PrometheusExporter, Server)> {
    let registry = Registry::new();
    let reader = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        // One instrumentation scope (the agent): an otel_scope_name label on every series
        // would only add bytes.
        .scope_info_enabled(false)
        .build()
        .context("exporters.prometheus: building the Prometheus reader")?;
    let listener = std::net::TcpListener::bind(config.listen)
        .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
        .with_context(|| {
            format!(
                "exporters.prometheus.listen: cannot listen on {}",
                config.listen
            )
        })?;
    Ok((reader, Server { registry, listener }))
}

impl Server {
    /// Starts serving on the current tokio runtime.
    pub(crate) fn serve(self) -> anyhow::Result<Endpoint> {
        let runtime = tokio::runtime::Handle::try_current()
            .context("exporters.prometheus: the endpoint needs a tokio runtime")?;
        let _entered = runtime.enter();
        let listener = TcpListener::from_std(self.listener)
            .context("exporters.prometheus: registering the listener")?;
        let address = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let task = runtime.spawn(accept_loop(listener, self.registry, cancel.clone()));
        tracing::info!(%address, path = METRICS_PATH, "serving Prometheus metrics");
        // Detached: it ends by itself once cancelled.
        drop(task);
        Ok(Endpoint { address, cancel })
    }
}

/// The running endpoint.
#[derive(Debug)]
pub struct Endpoint {
    address: SocketAddr,
    cancel: CancellationToken,
}

impl Endpoint {
    /// Where it listens (the configured port, or the one the kernel chose for port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting and closes the listener; scrapes in progress get a moment to finish.
    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

async fn accept_loop(listener: TcpListener, registry: Registry, cancel: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // E.g. EMFILE: back off instead of spinning on the error.
                        tracing::warn!(error = %e, "Prometheus endpoint: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let registry = registry.clone();
                let cancel = cancel.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let registry = registry.clone();
                        async move { Ok::<_, Infallible>(respond(&registry, request).await) }
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEADER_READ_TIMEOUT)
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(connection);
                    tokio::select! {
                        _ = connection.as_mut() => {}
                        _ = cancel.cancelled() => {
                            connection.as_mut().graceful_shutdown();
                            let _ = connection.await;
                        }
                    }
                });
            }
            // Reap finished connections so the set does not grow with every scrape.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(STOP_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.shutdown().await;
    }
}

async fn respond(registry: &Registry, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if request.uri().path() != METRICS_PATH {
        return plain(
            StatusCode::NOT_FOUND,
            format!("not found: metrics are at {METRICS_PATH}\n"),
        );
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n".into());
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    // Collecting runs every observable callback and walks every series: keep it off the
    // runtime's workers.
    let registry = registry.clone();
    match tokio::task::spawn_blocking(move || encode(&registry)).await {
        Ok(Ok(text)) => {
            let mut response = Response::new(Full::new(Bytes::from(text)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(::prometheus::TEXT_FORMAT),
            );
            response
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "Prometheus endpoint: encoding failed");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("encoding failed: {e}\n"),
            )
        }
        Err(e) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("collection failed: {e}\n"),
        ),
    }
}

fn encode(registry: &Registry) -> ::prometheus::Result<Vec<u8>> {
    let mut text = Vec::with_capacity(64 * 1024);
    TextEncoder::new().encode(&registry.gather(), &mut text)?;
    Ok(text)
}

fn plain(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
