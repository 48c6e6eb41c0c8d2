//! Replays the spool to the collector, oldest batch first, on a thread of its own: with the
//! generated gRPC clients of opentelemetry-proto, or as an HTTP POST of the stored protobuf body,
//! with the same headers and compression as the exporters.
//!
//! A batch is deleted once the collector accepted it; while the collector fails, the replay backs
//! off exponentially from one second to `exporters.otlp.spool.max_backoff_secs`, longer when the
//! collector asks to be left alone (gRPC `RetryInfo`, HTTP `Retry-After`).

use crate::delivery::Signal;
use crate::otlp::{Settings, LOGS_PATH, TRACES_PATH};
use crate::spool::Spool;
use huatuo_config::OtlpProtocol;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// A server's throttling hint is honoured up to this bound.
const MAX_SERVER_DELAY: Duration = Duration::from_secs(300);

enum Failure {
    /// The collector refused the request as invalid: retrying cannot help.
    Rejected(String),
    Retry {
        why: String,
        after: Option<Duration>,
    },
}

// One per process: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Client {
    Grpc {
        logs: LogsServiceClient<Channel>,
        traces: TraceServiceClient<Channel>,
        metadata: MetadataMap,
    },
    Http {
        client: reqwest::Client,
        endpoint: String,
        headers: reqwest::header::HeaderMap,
        gzip: bool,
    },
}

impl Client {
    /// Call inside the replay thread's runtime: tonic's lazy channel spawns its worker there.
    fn new(settings: &Settings) -> anyhow::Result<Self> {
        match settings.protocol {
            OtlpProtocol::Grpc => {
                let channel = settings.grpc_channel()?;
                let mut logs = LogsServiceClient::new(channel.clone());
                let mut traces = TraceServiceClient::new(channel);
                if settings.compression.is_some() {
                    logs = logs.send_compressed(CompressionEncoding::Gzip);
                    traces = traces.send_compressed(CompressionEncoding::Gzip);
                }
                Ok(Client::Grpc {
                    logs,
                    traces,
                    metadata: MetadataMap::from_headers(settings.headers.clone()),
                })
            }
            OtlpProtocol::HttpProtobuf => Ok(Client::Http {
                client: settings.http_client_builder().build()?,
                endpoint: settings.endpoint.clone(),
                headers: settings.headers.clone(),
                gzip: settings.compression.is_some(),
            }),
        }
    }

    async fn send(&mut self, signal: Signal, body: Vec<u8>) -> Result<(), Failure> {
        match self {
            Client::Grpc {
                logs,
                traces,
                metadata,
            } => {
                let decode_failed =
                    |e: prost::DecodeError| Failure::Rejected(format!("cannot decode it: {e}"));
                let result = match signal {
                    Signal::Logs => {
                        let request = ExportLogsServiceRequest::decode(body.as_slice())
                            .map_err(decode_failed)?;
                        logs.export(grpc_request(request, metadata)).await.map(drop)
                    }
                    Signal::Traces => {
                        let request = ExportTraceServiceRequest::decode(body.as_slice())
                            .map_err(decode_failed)?;
                        traces
                            .export(grpc_request(request, metadata))
                            .await
                            .map(drop)
                    }
                };
                result.map_err(|status| classify_grpc(&status))
            }
            Client::Http {
                client,
                endpoint,
                headers,
                gzip,
            } => {
                let path = match signal {
                    Signal::Logs => LOGS_PATH,
                    Signal::Traces => TRACES_PATH,
                };
                let mut request = client
                    .post(format!("{endpoint}{path}"))
                    .headers(headers.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf");
                let body = if *gzip {
                    request = request.header(reqwest::header::CONTENT_ENCODING, "gzip");
                    gzip_body(&body)
                } else {
                    body
                };
                let response = request
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| Failure::Retry {
                        why: error_chain(&e),
                        after: None,
                    })?;
                classify_http(response.status().as_u16(), response.headers())
            }
        }
    }
}

fn grpc_request<T>(message: T, metadata: &MetadataMap) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    *request.metadata_mut() = metadata.clone();
    request
}

fn gzip_body(body: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

/// reqwest's top-level message hides the cause ("error sending request"): show the chain.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn classify_grpc(status: &tonic::Status) -> Failure {
    let why = format!("gRPC {:?}: {}", status.code(), status.message());
    if status.code() == tonic::Code::InvalidArgument {
        return Failure::Rejected(why);
    }
    let after = status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay);
    Failure::Retry { why, after }
}

fn classify_http(status: u16, headers: &reqwest::header::HeaderMap) -> Result<(), Failure> {
    match status {
        200..=299 => Ok(()),
        400 => Err(Failure::Rejected(format!("HTTP {status}"))),
        _ => {
            let after = headers
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok())
                .map(Duration::from_secs);
            Err(Failure::Retry {
                why: format!("HTTP {status}"),
                after,
            })
        }
    }
}

/// The replay thread; [`Replayer::stop`] ends it.
#[derive(Debug)]
pub(crate) struct Replayer {
    spool: Arc<Spool>,
    thread: Option<JoinHandle<()>>,
}

impl Replayer {
    pub fn start(
        spool: Arc<Spool>,
        settings: Settings,
        max_backoff: Duration,
    ) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let replay_spool = spool.clone();
        let thread = std::thread::Builder::new()
            .name("otel-spool-replay".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match Client::new(&settings) {
                        Ok(client) => run(&replay_spool, client, max_backoff).await,
                        Err(e) => tracing::error!(
                            "cannot build the OTLP spool's replay client, spooled batches stay \
                             on disk until the next start: {e:#}"
                        ),
                    }
                });
            })?;
        Ok(Self {
            spool,
            thread: Some(thread),
        })
    }

    /// Stops replaying (an interrupted request stays spooled) and waits up to `limit`.
    pub fn stop(&mut self, limit: Duration) {
        self.spool.stop();
        if let Some(thread) = self.thread.take() {
            let give_up = std::time::Instant::now() + limit;
            while !thread.is_finished() && std::time::Instant::now() < give_up {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

impl Drop for Replayer {
    fn drop(&mut self) {
        self.spool.stop();
    }
}

async fn run(spool: &Spool, mut client: Client, max_backoff: Duration) {
    let mut backoff = INITIAL_BACKOFF;
    let mut failing = false;
    while !spool.stopping() {
        let Some(entry) = spool.oldest() else {
            tokio::select! {
                () = spool.wake.notified() => {}
                () = spool.stopped() => return,
            }
            continue;
        };
        let Some(body) = spool.read(&entry) else {
            continue;
        };
        let result = tokio::select! {
            result = client.send(entry.signal, body) => result,
            // The interrupted batch stays spooled for the next start.
            () = spool.stopped() => return,
        };
        match result {
            Ok(()) => {
                spool.complete(&entry, None);
                backoff = INITIAL_BACKOFF;
                failing = false;
            }
            Err(Failure::Rejected(why)) => {
                tracing::error!(
                    signal = entry.signal.name(),
                    records = entry.records,
                    "the collector rejected a spooled batch ({why}): dropped"
                );
                spool.complete(&entry, Some("rejected"));
            }
            Err(Failure::Retry { why, after }) => {
                if !failing {
                    tracing::warn!(
                        "replaying the OTLP spool failed ({why}): retrying with back-off"
                    );
                    failing = true;
                }
                let wait = after.map_or(backoff, |a| a.min(MAX_SERVER_DELAY).max(backoff));
                // New batches must not cut the back-off short: only shutdown does.
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = spool.stopped() => return,
                }
                backoff = (backoff * 2).min(max_backoff);
            }
        }
    }
}
