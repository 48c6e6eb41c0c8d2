//! Delivery that loses nothing: retries against a throttling or failing collector, the on-disk
//! spool across a collector outage, a shutdown and a restart, and the spool's size bound.
//! Against the in-process OTLP receiver, over gRPC and HTTP/protobuf.

use huatuo_config::{ExportersConfig, OtlpProtocol};
use huatuo_exporters::{build_providers, Providers};
use huatuo_otel_tests::{Failure, OtlpReceiver, Outcome, Received, RequestInfo, Signal};
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// Numbers every event of a test, to check that each arrives once and in order.
const SEQ: &str = "huatuo.test.seq";

fn config(protocol: OtlpProtocol, endpoint: String, spool: &Path) -> ExportersConfig {
    let mut config = ExportersConfig::default();
    config.file.enabled = false;
    config.otlp.enabled = true;
    config.otlp.protocol = protocol;
    config.otlp.endpoint = endpoint;
    config.otlp.timeout_secs = 5;
    config.otlp.spool.directory = spool.to_path_buf();
    config.otlp.spool.max_backoff_secs = 1;
    config.batch_interval_ms = 50;
    config.metrics_interval_secs = 3600;
    config
}

fn endpoint(receiver: &OtlpReceiver, protocol: OtlpProtocol) -> String {
    match protocol {
        OtlpProtocol::Grpc => receiver.grpc_endpoint(),
        OtlpProtocol::HttpProtobuf => receiver.http_endpoint(),
    }
}

fn resource() -> Resource {
    Resource::builder_empty()
        .with_attributes([KeyValue::new("service.name", "huatuo-otel")])
        .build()
}

fn emit_log(providers: &Providers, seq: i64) {
    let logger = providers.logs.logger("huatuo.test");
    let mut record = logger.create_log_record();
    record.set_event_name("huatuo.skb.drop");
    record.set_severity_number(Severity::Info);
    record.add_attribute(SEQ, seq);
    logger.emit(record);
}

fn emit(providers: &Providers, seq: i64) {
    emit_log(providers, seq);
    let mut span = providers
        .traces
        .tracer("huatuo.test")
        .start("linux.test.span");
    span.set_attribute(KeyValue::new(SEQ, seq));
    span.end();
}

/// Emits `range` at a steady pace, as a tracer would.
async fn produce(providers: &Providers, range: std::ops::Range<i64>, every: Duration) {
    for seq in range {
        emit(providers, seq);
        tokio::time::sleep(every).await;
    }
}

fn log_seqs(received: &Received) -> Vec<i64> {
    received
        .log_records()
        .iter()
        .filter_map(|l| l.attr_i64(SEQ))
        .collect()
}

fn span_seqs(received: &Received) -> Vec<i64> {
    received
        .spans()
        .iter()
        .filter_map(|s| s.attr_i64(SEQ))
        .collect()
}

fn spool_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

/// A port nothing listens on (bound, then released).
fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn assert_once_in_order(what: &str, seqs: &[i64], expected: std::ops::Range<i64>) {
    let expected: Vec<i64> = expected.collect();
    assert_eq!(
        seqs,
        expected.as_slice(),
        "{what}: every event once, in order"
    );
}

async fn receiver_restart_loses_nothing(protocol: OtlpProtocol) {
    let spool = tempfile::tempdir().unwrap();
    let receiver = OtlpReceiver::start().await.unwrap();
    let (grpc_addr, http_addr) = (receiver.grpc_addr(), receiver.http_addr());
    let providers = build_providers(
        &config(protocol, endpoint(&receiver, protocol), spool.path()),
        resource(),
    )
    .unwrap();
    let every = Duration::from_millis(10);

    produce(&providers, 0..50, every).await;
    receiver
        .wait_for(Duration::from_secs(10), "the first 50 events", |r| {
            log_seqs(r).len() == 50 && span_seqs(r).len() == 50
        })
        .await
        .unwrap();
    let mut received = receiver.received();
    receiver.stop().await;

    // The collector is down: batches fail after the exporter's retries and are spooled.
    produce(&providers, 50..150, every).await;
    assert!(spool_files(spool.path()) > 0, "nothing was spooled");

    let receiver = OtlpReceiver::start_on(grpc_addr, http_addr).await.unwrap();
    produce(&providers, 150..200, every).await;
    let rest = receiver
        .wait_for(Duration::from_secs(30), "the other 150 events", |r| {
            log_seqs(r).len() >= 150 && span_seqs(r).len() >= 150
        })
        .await
        .unwrap();
    received.extend(rest);
    providers.shutdown(Duration::from_secs(5)).unwrap();
    // Late duplicates would land after the wait: look again.
    let late = receiver.received();
    assert_eq!(log_seqs(&late).len(), 150, "duplicates after the restart");
    assert_once_in_order("logs", &log_seqs(&received), 0..200);
    assert_once_in_order("spans", &span_seqs(&received), 0..200);
    assert_eq!(spool_files(spool.path()), 0, "the spool was not emptied");
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_receiver_restart_loses_nothing() {
    receiver_restart_loses_nothing(OtlpProtocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_receiver_restart_loses_nothing() {
    receiver_restart_loses_nothing(OtlpProtocol::HttpProtobuf).await;
}

/// A collector that accepts connections but never answers: shutdown must not wait for the
/// export timeout (30 s here) but spool within its own deadline; the next run replays it first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_spools_within_its_deadline_and_the_next_run_replays_first() {
    let spool = tempfile::tempdir().unwrap();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let mut cfg = config(OtlpProtocol::Grpc, format!("http://{addr}"), spool.path());
    cfg.otlp.timeout_secs = 30;
    let providers = build_providers(&cfg, resource()).unwrap();
    produce(&providers, 0..20, Duration::from_millis(5)).await;
    let started = Instant::now();
    let result = providers.shutdown(Duration::from_secs(2));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}");
    eprintln!("shutdown with a silent collector: {result:?}");
    assert!(spool_files(spool.path()) > 0, "nothing was spooled");
    drop(providers);
    drop(silent);

    // The next run: the collector is back on the same address.
    let receiver = OtlpReceiver::start_on(addr, None).await.unwrap();
    cfg.otlp.timeout_secs = 5;
    let providers = build_providers(&cfg, resource()).unwrap();
    produce(&providers, 20..30, Duration::from_millis(5)).await;
    let received = receiver
        .wait_for(Duration::from_secs(30), "all 30 events", |r| {
            log_seqs(r).len() >= 30 && span_seqs(r).len() >= 30
        })
        .await
        .unwrap();
    providers.shutdown(Duration::from_secs(5)).unwrap();
    assert_once_in_order("logs", &log_seqs(&received), 0..30);
    assert_once_in_order("spans", &span_seqs(&received), 0..30);
    assert_eq!(spool_files(spool.path()), 0);
    receiver.stop().await;
}

fn log_requests(receiver: &OtlpReceiver) -> Vec<RequestInfo> {
    receiver
        .requests()
        .into_iter()
        .filter(|r| r.signal == Some(Signal::Logs))
        .collect()
}

/// Gaps between consecutive requests.
fn gaps(requests: &[RequestInfo]) -> Vec<Duration> {
    requests
        .windows(2)
        .map(|w| w[1].at.duration_since(w[0].at))
        .collect()
}

/// opentelemetry-otlp's recommended policy: up to 3 retries, 100 ms doubling (plus up to
/// 100 ms jitter), a server's delay (gRPC RetryInfo, HTTP Retry-After) taking precedence.
async fn retries_obey_the_back_off(protocol: OtlpProtocol) {
    let spool = tempfile::tempdir().unwrap();
    let receiver = OtlpReceiver::start().await.unwrap();
    let cfg = config(protocol, endpoint(&receiver, protocol), spool.path());
    let providers = build_providers(&cfg, resource()).unwrap();

    // Retryable failures without a hint: exponential back-off.
    receiver.set_failure(3, Failure::unavailable());
    emit_log(&providers, 0);
    receiver
        .wait_for(Duration::from_secs(10), "the log after 3 failures", |r| {
            log_seqs(r) == [0]
        })
        .await
        .unwrap();
    let requests = log_requests(&receiver);
    let outcomes: Vec<bool> = requests
        .iter()
        .map(|r| r.outcome == Outcome::Accepted)
        .collect();
    assert_eq!(outcomes, [false, false, false, true]);
    for (i, gap) in gaps(&requests).into_iter().enumerate() {
        let base = Duration::from_millis(100 << i);
        assert!(
            gap >= base.mul_f32(0.9) && gap < base + Duration::from_millis(600),
            "retry {i} came after {gap:?}, expected about {base:?}"
        );
    }

    // Throttling: the server's delay is waited out.
    receiver.clear();
    receiver.set_failure(2, Failure::throttled(Duration::from_secs(1)));
    emit_log(&providers, 1);
    receiver
        .wait_for(Duration::from_secs(10), "the log after 2 throttles", |r| {
            log_seqs(r) == [1]
        })
        .await
        .unwrap();
    let requests = log_requests(&receiver);
    assert_eq!(requests.len(), 3, "{requests:?}");
    for gap in gaps(&requests) {
        assert!(
            gap >= Duration::from_millis(950) && gap < Duration::from_millis(2500),
            "a throttled retry came after {gap:?}, expected about 1 s"
        );
    }
    providers.shutdown(Duration::from_secs(5)).unwrap();
    assert_eq!(spool_files(spool.path()), 0, "retried batches were spooled");
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_retries_obey_the_back_off() {
    retries_obey_the_back_off(OtlpProtocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_retries_obey_the_back_off() {
    retries_obey_the_back_off(OtlpProtocol::HttpProtobuf).await;
}

/// The replay honours the collector's throttling too, and keeps the batch until it is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_waits_out_throttling_then_delivers() {
    let spool = tempfile::tempdir().unwrap();
    let receiver = OtlpReceiver::start().await.unwrap();
    // More failures than the exporter retries: the batch goes to the spool, and the replay
    // meets the rest.
    receiver.set_failure(6, Failure::throttled(Duration::from_secs(1)));
    let mut cfg = config(
        OtlpProtocol::HttpProtobuf,
        receiver.http_endpoint(),
        spool.path(),
    );
    cfg.otlp.timeout_secs = 2;
    let providers = build_providers(&cfg, resource()).unwrap();
    emit_log(&providers, 0);
    let received = receiver
        .wait_for(Duration::from_secs(20), "the throttled log", |r| {
            !log_seqs(r).is_empty()
        })
        .await
        .unwrap();
    providers.shutdown(Duration::from_secs(5)).unwrap();
    assert_eq!(log_seqs(&received), [0]);
    let requests = log_requests(&receiver);
    assert_eq!(requests.len(), 7, "{requests:?}");
    assert_eq!(spool_files(spool.path()), 0);
    receiver.stop().await;
}

fn dropped(received: &Received, cause: &str) -> Option<i64> {
    received.latest_sum_i64(
        huatuo_semconv::agent::EXPORT_DROPPED,
        &[
            (huatuo_semconv::agent::EXPORT_SIGNAL, "logs"),
            (huatuo_semconv::agent::DROP_CAUSE, cause),
        ],
    )
}

/// A full spool drops its oldest batches; the drop counter says how many records, and
/// everything not dropped is delivered, in order, once the collector is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_spool_drops_the_oldest_and_counts_them() {
    let spool = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut cfg = config(OtlpProtocol::Grpc, format!("http://{addr}"), spool.path());
    cfg.max_export_batch_size = 10;
    cfg.otlp.spool.max_bytes = 3000;
    // The file exporter shows what the agent's metrics say.
    cfg.file.enabled = true;
    cfg.file.directory = files.path().to_path_buf();
    let providers = build_providers(&cfg, resource()).unwrap();
    for seq in 0..100 {
        emit_log(&providers, seq);
    }
    providers.logs.force_flush().unwrap();
    // The OTLP metric export fails (no collector): only the file's copy matters here.
    let _ = providers.metrics.force_flush();
    let _ = providers.shutdown(Duration::from_secs(5));
    let metrics = huatuo_otel_tests::jsonl::read_dir(files.path()).unwrap();
    let lost = dropped(&metrics, "spool_full").unwrap_or_else(|| {
        panic!(
            "no spool_full drop counted: {:?}",
            metrics.points(huatuo_semconv::agent::EXPORT_DROPPED, &[])
        )
    });
    assert!(lost > 0 && lost < 100, "{lost} dropped");

    let receiver = OtlpReceiver::start_on(addr, None).await.unwrap();
    cfg.file.enabled = false;
    let providers = build_providers(&cfg, resource()).unwrap();
    let received = receiver
        .wait_for(Duration::from_secs(20), "the spooled logs", |r| {
            log_seqs(r).len() as i64 >= 100 - lost
        })
        .await
        .unwrap();
    providers.shutdown(Duration::from_secs(5)).unwrap();
    // Whole batches of the oldest records went: what is left is the newest, in order.
    assert_once_in_order("logs", &log_seqs(&received), lost..100);
    receiver.stop().await;
}

/// A batch processor holds at most `max_queue_size` records until their export returns; what
/// comes beyond is dropped and counted (the SDK's own queue would drop it silently).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_beyond_the_export_queue_are_counted() {
    let spool = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    // A collector that never answers holds the first batch's export until it times out, long
    // after the records below are emitted (the metric flush waits for that timeout too).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let mut cfg = config(OtlpProtocol::Grpc, format!("http://{addr}"), spool.path());
    cfg.otlp.timeout_secs = 3;
    cfg.max_queue_size = 10;
    cfg.max_export_batch_size = 10;
    cfg.file.enabled = true;
    cfg.file.directory = files.path().to_path_buf();
    let providers = build_providers(&cfg, resource()).unwrap();
    for seq in 0..30 {
        emit_log(&providers, seq);
    }
    let _ = providers.metrics.force_flush();
    let metrics = huatuo_otel_tests::jsonl::read_dir(files.path()).unwrap();
    let lost = dropped(&metrics, "queue_full").unwrap_or(0);
    // The OTLP queue keeps the first 10 and drops 20; the file's, exporting as they come, up
    // to as many again.
    assert!((20..=40).contains(&lost), "{lost} counted as queue_full");
    let _ = providers.shutdown(Duration::from_secs(2));
    drop(silent);
}
