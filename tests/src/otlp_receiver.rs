//! An in-process OTLP receiver for end-to-end tests: gRPC (tonic) and HTTP (protobuf or JSON)
//! on loopback, recording every accepted export request, with injectable failures for retry
//! tests.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::{JoinHandle, JoinSet};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::codec::CompressionEncoding;
use tonic_types::{ErrorDetails, StatusExt as _};

pub use crate::signals::Received;

/// Agent batches are far below this; the cap only stops a runaway request from eating memory.
const MAX_REQUEST_BYTES: usize = 64 << 20;
/// How long `stop` lets connections drain before cutting them.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// Upper bound between checks in `wait_for`, in case a wake-up is missed.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Grpc,
    Http,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Logs,
    Metrics,
    Traces,
}

/// How to answer a request that should fail.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub grpc_code: tonic::Code,
    pub http_status: u16,
    /// Sent as gRPC `RetryInfo` and as HTTP `Retry-After` (whole seconds, rounded up).
    /// opentelemetry-otlp only retries `RESOURCE_EXHAUSTED` when `RetryInfo` is present.
    pub retry_after: Option<Duration>,
}

impl Failure {
    /// A transient outage: gRPC UNAVAILABLE / HTTP 503. Both are retryable per the OTLP spec.
    pub fn unavailable() -> Self {
        Self {
            grpc_code: tonic::Code::Unavailable,
            http_status: 503,
            retry_after: None,
        }
    }

    /// Throttling: gRPC RESOURCE_EXHAUSTED with RetryInfo / HTTP 429 with Retry-After.
    pub fn throttled(retry_after: Duration) -> Self {
        Self {
            grpc_code: tonic::Code::ResourceExhausted,
            http_status: 429,
            retry_after: Some(retry_after),
        }
    }

    /// A permanent rejection the exporter must not retry: INVALID_ARGUMENT / HTTP 400.
    pub fn permanent() -> Self {
        Self {
            grpc_code: tonic::Code::InvalidArgument,
            http_status: 400,
            retry_after: None,
        }
    }

    fn message(&self) -> String {
        "failure injected by the test OTLP receiver".into()
    }

    fn to_status(&self) -> tonic::Status {
        match self.retry_after {
            Some(delay) => tonic::Status::with_error_details(
                self.grpc_code,
                self.message(),
                ErrorDetails::with_retry_info(Some(delay)),
            ),
            None => tonic::Status::new(self.grpc_code, self.message()),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Accepted,
    /// Failed on purpose, see [`OtlpReceiver::set_failure`].
    Injected(Failure),
    /// The request itself was wrong (HTTP only: bad path, content type, encoding or body).
    /// gRPC decoding errors never reach the receiver's code and so are not listed.
    Invalid(String),
}

/// One request as it arrived, whatever became of it.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestInfo {
    pub transport: Transport,
    /// `None` for an HTTP request to an unknown path.
    pub signal: Option<Signal>,
    /// The HTTP request path; `None` for gRPC, whose method path tonic does not hand over.
    pub path: Option<String>,
    /// Lower-case header (gRPC metadata) names; repeated headers are joined with ", ".
    pub headers: BTreeMap<String, String>,
    /// The body was gzip-compressed on the wire.
    pub gzip: bool,
    pub outcome: Outcome,
    /// When the request reached the receiver's code, for checks of retry spacing.
    pub at: std::time::Instant,
}

#[derive(Default)]
struct State {
    received: Received,
    requests: Vec<RequestInfo>,
    failure: Option<(usize, Failure)>,
    /// Prefix of the OTLP/HTTP signal paths, without a trailing slash; empty by default.
    http_base_path: String,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated in a way that matters
        // to tests, so keep serving instead of poisoning every later request.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the request and either stores its payload or returns the failure to answer with.
    fn admit(
        &self,
        mut info: RequestInfo,
        store: impl FnOnce(&mut Received),
    ) -> Result<(), Failure> {
        let mut state = self.lock();
        let injected = match &mut state.failure {
            Some((remaining, failure)) if *remaining > 0 => {
                *remaining -= 1;
                Some(failure.clone())
            }
            _ => None,
        };
        if matches!(state.failure, Some((0, _))) {
            state.failure = None;
        }
        let result = match injected {
            Some(failure) => {
                info.outcome = Outcome::Injected(failure.clone());
                Err(failure)
            }
            None => {
                info.outcome = Outcome::Accepted;
                store(&mut state.received);
                Ok(())
            }
        };
        state.requests.push(info);
        drop(state);
        self.changed.notify_waiters();
        result
    }

    fn record_invalid(&self, info: RequestInfo) {
        self.lock().requests.push(info);
        self.changed.notify_waiters();
    }
}

fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        out.entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    out
}

#[derive(Clone)]
struct GrpcCollector {
    shared: Arc<Shared>,
}

impl GrpcCollector {
    fn admit<T>(
        &self,
        signal: Signal,
        request: tonic::Request<T>,
        store: impl FnOnce(&mut Received, T),
    ) -> Result<(), tonic::Status> {
        let headers = header_map(&request.metadata().clone().into_headers());
        let gzip = headers.get("grpc-encoding").is_some_and(|e| e == "gzip");
        let info = RequestInfo {
            transport: Transport::Grpc,
            signal: Some(signal),
            path: None,
            headers,
            gzip,
            outcome: Outcome::Accepted,
            at: std::time::Instant::now(),
        };
        let payload = request.into_inner();
        self.shared
            .admit(info, |r| store(r, payload))
            .map_err(|f| f.to_status())
    }
}

#[tonic::async_trait]
impl LogsService for GrpcCollector {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.admit(Signal::Logs, request, |r, p| r.logs.push(p))?;
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for GrpcCollector {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.admit(Signal::Metrics, request, |r, p| r.metrics.push(p))?;
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl TraceService for GrpcCollector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.admit(Signal::Traces, request, |r, p| r.traces.push(p))?;
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// SO_REUSEADDR so a restart test can rebind a port whose old connections sit in TIME_WAIT.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// A running server task and the means to stop it.
struct ServerTask {
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl ServerTask {
    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(STOP_GRACE, &mut self.task)
            .await
            .is_err()
        {
            // Dropping the aborted future closes the listener and any connections it owns.
            self.task.abort();
            let _ = (&mut self.task).await;
        }
    }
}

/// Without `stop`, the server still shuts down gracefully, just in the background: aborting
/// would leave tonic's per-connection tasks serving the agent.
impl Drop for ServerTask {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub struct OtlpReceiver {
    shared: Arc<Shared>,
    grpc_addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    grpc: Option<ServerTask>,
    http: Option<ServerTask>,
    tls: bool,
}

/// A PEM certificate (chain) and private key for a TLS receiver.
#[derive(Clone, Debug)]
pub struct TlsIdentity {
    pub cert_pem: String,
    pub key_pem: String,
}

impl OtlpReceiver {
    /// gRPC and HTTP on ephemeral loopback ports.
    pub async fn start() -> anyhow::Result<Self> {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::start_on(any, Some(any)).await
    }

    /// Fixed addresses, e.g. to restart a receiver where an agent already points.
    pub async fn start_on(grpc: SocketAddr, http: Option<SocketAddr>) -> anyhow::Result<Self> {
        Self::start_with(grpc, http, None).await
    }

    /// Both servers on ephemeral loopback ports behind TLS with `identity`: the endpoints are
    /// then `https://`.
    pub async fn start_tls(identity: TlsIdentity) -> anyhow::Result<Self> {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::start_with(any, Some(any), Some(identity)).await
    }

    async fn start_with(
        grpc: SocketAddr,
        http: Option<SocketAddr>,
        tls: Option<TlsIdentity>,
    ) -> anyhow::Result<Self> {
        // Bind both before spawning anything so that a taken port fails `start_on` cleanly.
        let grpc_listener =
            bind(grpc).with_context(|| format!("binding the OTLP/gRPC receiver on {grpc}"))?;
        let http_listener = http
            .map(|addr| {
                bind(addr).with_context(|| format!("binding the OTLP/HTTP receiver on {addr}"))
            })
            .transpose()?;
        let grpc_addr = grpc_listener.local_addr()?;
        let http_addr = http_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;

        let shared = Arc::new(Shared::default());
        let acceptor = tls.as_ref().map(tls_acceptor).transpose()?;
        let grpc = spawn_grpc(grpc_listener, shared.clone(), tls.as_ref())?;
        let http = http_listener.map(|l| spawn_http(l, shared.clone(), acceptor));
        Ok(Self {
            shared,
            grpc_addr,
            http_addr,
            grpc: Some(grpc),
            http,
            tls: tls.is_some(),
        })
    }

    fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// `None` when started without HTTP.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS), the form the agent's gRPC endpoint
    /// setting takes.
    pub fn grpc_endpoint(&self) -> String {
        format!("{}://{}", self.scheme(), self.grpc_addr)
    }

    /// `http://127.0.0.1:PORT` without a signal path (the exporter appends `/v1/logs` etc.).
    ///
    /// # Panics
    /// When the receiver was started without HTTP: that is a bug in the test.
    pub fn http_endpoint(&self) -> String {
        let addr = self
            .http_addr
            .expect("this OtlpReceiver was started without an HTTP endpoint");
        format!("{}://{addr}", self.scheme())
    }

    /// A snapshot of every accepted export request so far.
    pub fn received(&self) -> Received {
        self.shared.lock().received.clone()
    }

    /// Every request so far, including rejected ones, in arrival order.
    pub fn requests(&self) -> Vec<RequestInfo> {
        self.shared.lock().requests.clone()
    }

    /// Forgets what was received, e.g. between the phases of a test.
    pub fn clear(&self) {
        let mut state = self.shared.lock();
        state.received = Received::default();
        state.requests.clear();
    }

    /// Makes the next `count` requests (any signal, any transport) fail with `failure`.
    /// Replaces any failures still pending; `count == 0` clears them.
    pub fn set_failure(&self, count: usize, failure: Failure) {
        self.shared.lock().failure = (count > 0).then_some((count, failure));
    }

    /// Serves the OTLP/HTTP signals under `base` (`/otlp` gives `/otlp/v1/logs`), as a collector
    /// with custom paths does, so a test can check that an exporter appends the signal paths to a
    /// base endpoint exactly once. Other paths, including the default `/v1/...`, get a 404.
    pub fn set_http_base_path(&self, base: &str) {
        self.shared.lock().http_base_path = base.trim_end_matches('/').to_owned();
    }

    /// Injected failures not used up yet.
    pub fn pending_failures(&self) -> usize {
        self.shared.lock().failure.as_ref().map_or(0, |(n, _)| *n)
    }

    /// Waits until `f` holds for what was received, checking on every request and at least every
    /// 100 ms. On timeout the error names `what` and summarizes what did arrive, so a failing
    /// test says more than "timed out".
    pub async fn wait_for<F: Fn(&Received) -> bool>(
        &self,
        timeout: Duration,
        what: &str,
        f: F,
    ) -> anyhow::Result<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Created before the check so that a request landing in between still wakes us.
            let changed = self.shared.changed.notified();
            let snapshot = self.received();
            if f(&snapshot) {
                return Ok(snapshot);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                anyhow::bail!(
                    "timed out after {timeout:?} waiting for {what}; received: {}; requests: {}",
                    snapshot.summary(),
                    summarize_requests(&self.requests())
                );
            }
            let _ = tokio::time::timeout((deadline - now).min(POLL_INTERVAL), changed).await;
        }
    }

    /// Stops both servers and waits (bounded) until their ports are released and connections
    /// closed, so that the agent sees the receiver go away.
    pub async fn stop(mut self) {
        if let Some(grpc) = self.grpc.take() {
            grpc.stop().await;
        }
        if let Some(http) = self.http.take() {
            http.stop().await;
        }
    }
}

fn summarize_requests(requests: &[RequestInfo]) -> String {
    let count = |f: &dyn Fn(&RequestInfo) -> bool| requests.iter().filter(|r| f(r)).count();
    let mut s = format!(
        "{} total ({} gRPC, {} HTTP), {} accepted, {} failed on purpose, {} invalid",
        requests.len(),
        count(&|r| r.transport == Transport::Grpc),
        count(&|r| r.transport == Transport::Http),
        count(&|r| r.outcome == Outcome::Accepted),
        count(&|r| matches!(r.outcome, Outcome::Injected(_))),
        count(&|r| matches!(r.outcome, Outcome::Invalid(_))),
    );
    if let Some(Outcome::Invalid(why)) = requests
        .iter()
        .rev()
        .map(|r| &r.outcome)
        .find(|o| matches!(o, Outcome::Invalid(_)))
    {
        s.push_str(&format!(" (last invalid: {why})"));
    }
    s
}

fn tls_acceptor(identity: &TlsIdentity) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(identity.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("the test receiver's certificate")?;
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
        .context("the test receiver's key")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

fn spawn_grpc(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<&TlsIdentity>,
) -> anyhow::Result<ServerTask> {
    let collector = GrpcCollector { shared };
    let (tx, rx) = oneshot::channel::<()>();
    let mut server = tonic::transport::Server::builder();
    if let Some(identity) = tls {
        let identity = tonic::transport::Identity::from_pem(&identity.cert_pem, &identity.key_pem);
        server = server
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .context("the test receiver's gRPC TLS configuration")?;
    }
    let router = server
        .add_service(
            LogsServiceServer::new(collector.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            MetricsServiceServer::new(collector.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            TraceServiceServer::new(collector)
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        );
    let task = tokio::spawn(async move {
        let incoming = TcpListenerStream::new(listener);
        // tonic drops the listener as soon as the signal fires, then drains connections.
        let shutdown = async {
            let _ = rx.await;
        };
        if let Err(e) = router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
        {
            eprintln!("test OTLP/gRPC receiver failed: {e}");
        }
    });
    Ok(ServerTask {
        shutdown: Some(tx),
        task,
    })
}

fn spawn_http(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> ServerTask {
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_http(listener, shared, rx, tls));
    ServerTask {
        shutdown: Some(tx),
        task,
    }
}

async fn serve_http(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: oneshot::Receiver<()>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    // Connections watch this to finish their current request and close.
    let (closing_tx, closing_rx) = watch::channel(());
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // E.g. EMFILE: back off instead of spinning on the error.
                        eprintln!("test OTLP/HTTP receiver: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let shared = shared.clone();
                let closing = closing_rx.clone();
                let tls = tls.clone();
                connections.spawn(async move {
                    match tls {
                        None => serve_http_connection(stream, shared, closing).await,
                        // A client that distrusts our certificate fails the handshake: that is
                        // the client's error to report.
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve_http_connection(stream, shared, closing).await;
                            }
                        }
                    }
                });
            }
            // Reap finished connections so the set does not grow over a long test.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = closing_tx.send(());
    let drained = tokio::time::timeout(STOP_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.shutdown().await;
    }
}

async fn serve_http_connection<S>(stream: S, shared: Arc<Shared>, mut closing: watch::Receiver<()>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle_http(&shared, req).await) }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = closing.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

fn signal_for_path(base: &str, path: &str) -> Option<Signal> {
    match path.strip_prefix(base)? {
        "/v1/logs" => Some(Signal::Logs),
        "/v1/metrics" => Some(Signal::Metrics),
        "/v1/traces" => Some(Signal::Traces),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

fn decode<T: prost::Message + Default + serde::de::DeserializeOwned>(
    encoding: Encoding,
    body: &[u8],
) -> Result<T, String> {
    match encoding {
        Encoding::Protobuf => T::decode(body).map_err(|e| format!("invalid protobuf body: {e}")),
        Encoding::Json => {
            let text = std::str::from_utf8(body).map_err(|e| format!("body is not UTF-8: {e}"))?;
            crate::jsonl::parse_otlp_json(text)
                .map_err(|e| format!("invalid OTLP/JSON body: {e:#}"))
        }
    }
}

fn plain_response(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(message)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

async fn handle_http(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let signal = signal_for_path(&shared.lock().http_base_path, &path);
    let mut info = RequestInfo {
        transport: Transport::Http,
        signal,
        path: Some(path),
        headers: header_map(req.headers()),
        gzip: false,
        outcome: Outcome::Accepted,
        at: std::time::Instant::now(),
    };
    match handle_valid_http(shared, req, signal, &mut info).await {
        Ok(response) => response,
        Err((status, why)) => {
            info.outcome = Outcome::Invalid(why.clone());
            shared.record_invalid(info);
            plain_response(status, why)
        }
    }
}

async fn handle_valid_http(
    shared: &Shared,
    req: Request<Incoming>,
    signal: Option<Signal>,
    info: &mut RequestInfo,
) -> Result<Response<Full<Bytes>>, (StatusCode, String)> {
    let path = req.uri().path().to_owned();
    let Some(signal) = signal else {
        return Err((StatusCode::NOT_FOUND, format!("unknown OTLP path {path}")));
    };
    if req.method() != Method::POST {
        return Err((
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} {path}: OTLP/HTTP requires POST", req.method()),
        ));
    }
    let header = |name| {
        req.headers()
            .get(name)
            .map(|v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase())
    };
    // Parameters such as "; charset=utf-8" do not change the encoding.
    let content_type = header(CONTENT_TYPE).unwrap_or_default();
    let encoding = match content_type.split(';').next().unwrap_or("").trim() {
        "application/x-protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        other => {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "content-type {other:?} is neither application/x-protobuf nor application/json"
                ),
            ))
        }
    };
    let gzip = match header(CONTENT_ENCODING).as_deref().map(str::trim) {
        None | Some("") | Some("identity") => false,
        Some("gzip") => true,
        Some(other) => {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content-encoding {other:?} is not supported"),
            ))
        }
    };
    info.gzip = gzip;

    let body = Limited::new(req.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
        .map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("reading the body failed: {e}"),
            )
        })?
        .to_bytes();
    let body = if gzip { gunzip(&body)? } else { body.to_vec() };

    let decode_err = |e: String| (StatusCode::BAD_REQUEST, e);
    let admitted = match signal {
        Signal::Logs => {
            let p: ExportLogsServiceRequest = decode(encoding, &body).map_err(decode_err)?;
            shared.admit(info.clone(), |r| r.logs.push(p))
        }
        Signal::Metrics => {
            let p: ExportMetricsServiceRequest = decode(encoding, &body).map_err(decode_err)?;
            shared.admit(info.clone(), |r| r.metrics.push(p))
        }
        Signal::Traces => {
            let p: ExportTraceServiceRequest = decode(encoding, &body).map_err(decode_err)?;
            shared.admit(info.clone(), |r| r.traces.push(p))
        }
    };

    let response = match admitted {
        // Every Export*ServiceResponse without partial_success encodes as zero protobuf bytes.
        Ok(()) => {
            let body = match encoding {
                Encoding::Protobuf => Bytes::new(),
                Encoding::Json => Bytes::from_static(b"{}"),
            };
            let mut response = Response::new(Full::new(body));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(encoding.content_type()),
            );
            response
        }
        Err(failure) => failure_response(&failure),
    };
    Ok(response)
}

/// The OTLP spec wants a protobuf `google.rpc.Status` body on 4xx/5xx responses.
fn failure_response(failure: &Failure) -> Response<Full<Bytes>> {
    let status = tonic_types::Status {
        code: failure.grpc_code as i32,
        message: failure.message(),
        details: Vec::new(),
    };
    let mut response = Response::new(Full::new(Bytes::from(status.encode_to_vec())));
    *response.status_mut() =
        StatusCode::from_u16(failure.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-protobuf"),
    );
    if let Some(delay) = failure.retry_after {
        // Retry-After has whole-second resolution; rounding down would invite an early retry.
        let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
        headers.insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn gunzip(body: &[u8]) -> Result<Vec<u8>, (StatusCode, String)> {
    use std::io::Read as _;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(MAX_REQUEST_BYTES as u64)
        .read_to_end(&mut out)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("invalid gzip body: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests;
