//! The Prometheus pull endpoint, as the agent builds it: served next to the file exporter,
//! checked by Prometheus's own parser (`promtool check metrics`).

use huatuo_config::{ExportersConfig, FileExporterConfig, PrometheusExporterConfig};
use huatuo_exporters::build_providers;
use huatuo_otel_tests::prometheus::{http, promtool_check_metrics};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

fn config(dir: &std::path::Path, listen: SocketAddr) -> ExportersConfig {
    ExportersConfig {
        file: FileExporterConfig {
            directory: dir.to_path_buf(),
            ..FileExporterConfig::default()
        },
        prometheus: PrometheusExporterConfig {
            enabled: true,
            listen,
        },
        ..ExportersConfig::default()
    }
}

fn resource() -> Resource {
    Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", "huatuo-otel"),
            KeyValue::new("host.name", "node-1"),
        ])
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_in_prometheus_text_format() {
    let dir = tempfile::tempdir().unwrap();
    let providers = build_providers(
        &config(dir.path(), "127.0.0.1:0".parse().unwrap()),
        resource(),
    )
    .unwrap();
    let address = providers.prometheus.as_ref().unwrap().address();
    let meter = providers.metrics.meter("huatuo-otel");
    meter
        .u64_counter("huatuo.test.drops")
        .with_unit("{drop}")
        .with_description("Drops, by reason")
        .build()
        .add(3, &[KeyValue::new("huatuo.drop.reason", "NO_SOCKET")]);
    meter
        .f64_histogram("huatuo.test.latency")
        .with_unit("s")
        .with_description("Latency")
        .with_boundaries(vec![0.001, 0.002, 0.004])
        .build()
        .record(0.003, &[KeyValue::new("system.device", "loop0")]);
    meter
        .i64_up_down_counter("huatuo.test.queue.usage")
        .with_unit("By")
        .with_description("Queue usage")
        .build()
        .add(-5, &[]);

    let (head, text) = tokio::task::spawn_blocking(move || http(address, "GET", "/metrics"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    for line in [
        // Dots become underscores; monotonic counters get `_total`; labels are sanitised.
        r#"huatuo_test_drops_total{huatuo_drop_reason="NO_SOCKET"} 3"#,
        // Histograms: buckets, sum and count, with the unit as a suffix.
        r#"huatuo_test_latency_seconds_bucket{system_device="loop0",le="0.004"} 1"#,
        r#"huatuo_test_latency_seconds_bucket{system_device="loop0",le="+Inf"} 1"#,
        r#"huatuo_test_latency_seconds_count{system_device="loop0"} 1"#,
        "# TYPE huatuo_test_queue_usage_bytes gauge",
        "huatuo_test_queue_usage_bytes -5",
        // The resource, once.
        r#"target_info{host_name="node-1",service_name="huatuo-otel"} 1"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in\n{text}"
        );
    }
    promtool_check_metrics(&text).unwrap_or_else(|e| panic!("{e:#}\n{text}"));

    let (head, _) = tokio::task::spawn_blocking(move || http(address, "GET", "/"))
        .await
        .unwrap()
        .unwrap();
    assert!(head.contains(" 404 "), "{head}");
    let (head, _) = tokio::task::spawn_blocking(move || http(address, "POST", "/metrics"))
        .await
        .unwrap()
        .unwrap();
    assert!(head.contains(" 405 "), "{head}");

    providers.shutdown(Duration::from_secs(5)).unwrap();
    // The listener closes with the providers.
    let closed = async {
        while TcpStream::connect(address).is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), closed)
        .await
        .expect("the endpoint still accepts connections after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_use_is_an_error_naming_the_key() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err =
        build_providers(&config(dir.path(), taken.local_addr().unwrap()), resource()).unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("exporters.prometheus.listen"), "{text}");
    assert!(text.contains("in use"), "{text}");
}
