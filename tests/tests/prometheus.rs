//! End to end: the agent's Prometheus endpoint scraped by a real Prometheus server, with a BPF
//! histogram (runqlat) among the series, and the exposition accepted by `promtool`.

use huatuo_otel_tests::prometheus::{
    free_local_address, http_get, promtool_check_metrics, PrometheusServer,
};
use huatuo_otel_tests::{require_root_and_bpf, AgentCommand};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_agent() {
    if !require_root_and_bpf() {
        return;
    }
    let endpoint = free_local_address().unwrap();
    let files = tempfile::tempdir().unwrap();
    let _agent = AgentCommand::run_fast()
        .unwrap()
        .only_tracers(&["runqlat"])
        .arg("--file-dir")
        .arg(files.path())
        .env("HUATUO_EXPORTERS__PROMETHEUS__ENABLED", "true")
        .env("HUATUO_EXPORTERS__PROMETHEUS__LISTEN", endpoint.to_string())
        .start_tracer("runqlat")
        .await
        .unwrap();

    let server = PrometheusServer::scrape(endpoint).unwrap();
    // The scrape succeeded and the agent's resource is there, joined on job and instance.
    let up = server.wait_for_series("up == 1", WAIT).await.unwrap();
    assert_eq!(up[0]["metric"]["job"], "huatuo-otel", "{up:?}");
    let info = server
        .wait_for_series("target_info{service_name=\"huatuo-otel\"}", WAIT)
        .await
        .unwrap();
    assert!(info[0]["metric"]["host_name"].is_string(), "{info:?}");
    // A kernel histogram, with Prometheus's naming: unit suffix, _bucket/_count.
    server
        .wait_for_series("huatuo_sched_runqueue_latency_seconds_count > 0", WAIT)
        .await
        .unwrap();
    server
        .wait_for_series(
            "histogram_quantile(0.99, huatuo_sched_runqueue_latency_seconds_bucket)",
            WAIT,
        )
        .await
        .unwrap();
    // Counters end in _total; tracer status is a gauge per state.
    server
        .wait_for_series(
            "huatuo_tracer_records_total{huatuo_tracer_name=\"runqlat\"}",
            WAIT,
        )
        .await
        .unwrap();
    server
        .wait_for_series(
            "huatuo_tracer_status{huatuo_tracer_name=\"runqlat\",huatuo_tracer_state=\"running\"} == 1",
            WAIT,
        )
        .await
        .unwrap();

    let text = tokio::task::block_in_place(|| http_get(endpoint, "/metrics")).unwrap();
    promtool_check_metrics(&text).unwrap_or_else(|e| panic!("{e:#}\n{text}"));
}
