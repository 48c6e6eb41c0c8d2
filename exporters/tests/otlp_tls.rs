//! OTLP over TLS against the in-process receiver serving a self-signed certificate: export works
//! with that certificate as CA (gRPC and HTTP/protobuf); with a wrong CA it fails with an error
//! that says why, and the batch is spooled rather than lost. Unreadable PEM files are startup
//! errors naming the key and the file.

use huatuo_config::{ExportersConfig, OtlpProtocol};
use huatuo_exporters::build_providers;
use huatuo_otel_tests::{OtlpReceiver, TlsIdentity};
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry_sdk::Resource;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The SDK exports on threads of its own, so the agent's log lines are captured process-wide.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        std::io::stderr().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn captured_logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .with_env_filter("warn,opentelemetry=off")
            .init();
        captured
    })
}

fn self_signed() -> TlsIdentity {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    TlsIdentity {
        cert_pem: cert.cert.pem(),
        key_pem: cert.signing_key.serialize_pem(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn config(protocol: OtlpProtocol, endpoint: String, ca: PathBuf, spool: &Path) -> ExportersConfig {
    let mut config = ExportersConfig::default();
    config.file.enabled = false;
    config.otlp.enabled = true;
    config.otlp.protocol = protocol;
    config.otlp.endpoint = endpoint;
    config.otlp.timeout_secs = 3;
    config.otlp.tls.ca_file = Some(ca);
    config.otlp.spool.directory = spool.to_path_buf();
    config.batch_interval_ms = 50;
    config.metrics_interval_secs = 3600;
    config
}

fn emit(providers: &huatuo_exporters::Providers) {
    let logger = providers.logs.logger("huatuo.test");
    let mut record = logger.create_log_record();
    record.set_event_name("huatuo.skb.drop");
    record.set_severity_number(Severity::Info);
    logger.emit(record);
}

fn endpoint(receiver: &OtlpReceiver, protocol: OtlpProtocol) -> String {
    match protocol {
        OtlpProtocol::Grpc => receiver.grpc_endpoint(),
        OtlpProtocol::HttpProtobuf => receiver.http_endpoint(),
    }
}

async fn tls_with_the_right_and_a_wrong_ca(protocol: OtlpProtocol) {
    let logs = captured_logs();
    let dir = tempfile::tempdir().unwrap();
    let identity = self_signed();
    let receiver = OtlpReceiver::start_tls(identity.clone()).await.unwrap();
    assert!(endpoint(&receiver, protocol).starts_with("https://"));

    let ca = write(dir.path(), "ca.pem", &identity.cert_pem);
    let spool = dir.path().join("spool-ok");
    let cfg = config(protocol, endpoint(&receiver, protocol), ca, &spool);
    let providers = build_providers(&cfg, Resource::builder_empty().build()).unwrap();
    emit(&providers);
    receiver
        .wait_for(Duration::from_secs(10), "a log over TLS", |r| {
            r.log_record_count() == 1
        })
        .await
        .unwrap();
    providers.shutdown(Duration::from_secs(5)).unwrap();

    // Another self-signed certificate as CA: the collector cannot be trusted.
    let wrong = write(dir.path(), "wrong-ca.pem", &self_signed().cert_pem);
    let spool = dir.path().join("spool-wrong");
    let cfg = config(protocol, endpoint(&receiver, protocol), wrong, &spool);
    let providers = build_providers(&cfg, Resource::builder_empty().build()).unwrap();
    emit(&providers);
    // The SDK's HTTP exporter only says "network error"; the replay, which tries the spooled
    // batch right away, names the cause (the gRPC exporter does too).
    let port = match protocol {
        OtlpProtocol::Grpc => receiver.grpc_addr().port(),
        OtlpProtocol::HttpProtobuf => receiver.http_addr().unwrap().port(),
    };
    let logged = || {
        let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
        let line = text
            .lines()
            .find(|l| l.contains(&format!(":{port}")) && l.contains("invalid peer certificate"))
            .map(str::to_owned);
        (line, text)
    };
    let give_up = std::time::Instant::now() + Duration::from_secs(15);
    let line = loop {
        match logged() {
            (Some(line), _) => break line,
            (None, text) if std::time::Instant::now() > give_up => {
                panic!("no clear TLS error was logged:\n{text}")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let _ = providers.shutdown(Duration::from_secs(5));
    assert_eq!(receiver.received().log_record_count(), 1);
    let spooled = std::fs::read_dir(&spool).unwrap().count();
    assert_eq!(spooled, 1, "the batch refused by TLS was not spooled");
    eprintln!("logged: {line}");
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_tls() {
    tls_with_the_right_and_a_wrong_ca(OtlpProtocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_over_tls() {
    tls_with_the_right_and_a_wrong_ca(OtlpProtocol::HttpProtobuf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_pem_names_the_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = write(dir.path(), "garbage.pem", "not a certificate\n");
    let missing = dir.path().join("missing.pem");
    for (ca, what) in [(&garbage, "no PEM certificate"), (&missing, "cannot read")] {
        let cfg = config(
            OtlpProtocol::Grpc,
            "https://127.0.0.1:4317".into(),
            ca.clone(),
            dir.path(),
        );
        let err = format!(
            "{:#}",
            build_providers(&cfg, Resource::builder_empty().build()).unwrap_err()
        );
        assert!(err.contains("exporters.otlp.tls.ca_file"), "{err}");
        assert!(err.contains(&ca.display().to_string()), "{err}");
        assert!(err.contains(what), "{err}");
    }
    let mut cfg = config(
        OtlpProtocol::HttpProtobuf,
        "https://127.0.0.1:4318".into(),
        write(dir.path(), "ca.pem", &self_signed().cert_pem),
        dir.path(),
    );
    cfg.otlp.tls.cert_file = Some(write(dir.path(), "client.pem", &self_signed().cert_pem));
    cfg.otlp.tls.key_file = Some(garbage.clone());
    let err = format!(
        "{:#}",
        build_providers(&cfg, Resource::builder_empty().build()).unwrap_err()
    );
    assert!(err.contains("exporters.otlp.tls.key_file"), "{err}");
    assert!(err.contains(&garbage.display().to_string()), "{err}");
}
