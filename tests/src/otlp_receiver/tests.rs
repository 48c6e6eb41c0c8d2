use super::*;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use std::io::Write as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

fn logs(event_name: &str) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    event_name: event_name.into(),
                    time_unix_nano: 42,
                    attributes: vec![KeyValue {
                        key: "cpu".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::IntValue(1)),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn metrics(name: &str, value: i64) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: name.into(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: vec![NumberDataPoint {
                            time_unix_nano: 1,
                            value: Some(number_data_point::Value::AsInt(value)),
                            ..Default::default()
                        }],
                        aggregation_temporality: 2,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn traces(name: &str) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    name: name.into(),
                    trace_id: vec![1; 16],
                    span_id: vec![2; 8],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

struct HttpReply {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// A deliberately minimal HTTP/1.1 client, so the receiver is tested against bytes on the wire
/// rather than against a second HTTP library's assumptions.
async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpReply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("response within the timeout")
        .unwrap();

    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: BTreeMap<String, String> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if let Some(len) = headers.get("content-length") {
        body.truncate(len.parse().unwrap());
    }
    HttpReply {
        status,
        headers,
        body,
    }
}

async fn post_protobuf(addr: SocketAddr, path: &str, body: &[u8]) -> HttpReply {
    http_request(
        addr,
        "POST",
        path,
        &[("content-type", "application/x-protobuf")],
        body,
    )
    .await
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[tokio::test]
async fn grpc_exports_of_every_signal_are_recorded_with_headers() {
    let rx = OtlpReceiver::start().await.unwrap();
    assert!(rx.grpc_endpoint().starts_with("http://127.0.0.1:"));

    let mut request = tonic::Request::new(logs("kernel.net.drop"));
    request
        .metadata_mut()
        .insert("authorization", "Bearer t0ken".parse().unwrap());
    let mut logs_client = LogsServiceClient::connect(rx.grpc_endpoint())
        .await
        .unwrap();
    logs_client.export(request).await.unwrap();
    MetricsServiceClient::connect(rx.grpc_endpoint())
        .await
        .unwrap()
        .export(metrics("huatuo.drops", 3))
        .await
        .unwrap();
    TraceServiceClient::connect(rx.grpc_endpoint())
        .await
        .unwrap()
        // Compressed, as the agent sends with `compression = "gzip"`.
        .send_compressed(CompressionEncoding::Gzip)
        .export(traces("tracer.start"))
        .await
        .unwrap();

    let got = rx
        .wait_for(WAIT, "one request per signal", |r| {
            !r.logs.is_empty() && !r.metrics.is_empty() && !r.traces.is_empty()
        })
        .await
        .unwrap();
    assert_eq!(got.logs, vec![logs("kernel.net.drop")]);
    assert_eq!(got.latest_sum("huatuo.drops", &[]), Some(3.0));
    assert_eq!(
        got.span_names().into_iter().collect::<Vec<_>>(),
        ["tracer.start"]
    );

    let requests = rx.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.transport == Transport::Grpc));
    assert!(requests.iter().all(|r| r.outcome == Outcome::Accepted));
    assert_eq!(
        requests[0].headers.get("authorization").map(String::as_str),
        Some("Bearer t0ken")
    );
    assert_eq!(
        requests
            .iter()
            .map(|r| (r.signal, r.gzip))
            .collect::<Vec<_>>(),
        [
            (Some(Signal::Logs), false),
            (Some(Signal::Metrics), false),
            (Some(Signal::Traces), true)
        ]
    );
    rx.stop().await;
}

#[tokio::test]
async fn http_protobuf_posts_are_recorded() {
    let rx = OtlpReceiver::start().await.unwrap();
    let addr = rx.http_addr().unwrap();
    assert_eq!(rx.http_endpoint(), format!("http://{addr}"));

    let reply = post_protobuf(addr, "/v1/logs", &logs("a").encode_to_vec()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.headers.get("content-type").map(String::as_str),
        Some("application/x-protobuf")
    );
    // An empty ExportLogsServiceResponse: no partial success.
    assert!(reply.body.is_empty());

    let reply = http_request(
        addr,
        "POST",
        "/v1/metrics",
        &[
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "gzip"),
            ("x-tenant", "t1"),
        ],
        &gzip(&metrics("m", 9).encode_to_vec()),
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );

    let json = serde_json::to_vec(&traces("s")).unwrap();
    let reply = http_request(
        addr,
        "POST",
        "/v1/traces",
        &[("content-type", "application/json; charset=utf-8")],
        &json,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"{}");

    let got = rx.received();
    assert_eq!(got.logs, vec![logs("a")]);
    assert_eq!(got.metrics, vec![metrics("m", 9)]);
    assert_eq!(got.traces, vec![traces("s")]);
    let requests = rx.requests();
    assert!(requests.iter().all(|r| r.transport == Transport::Http));
    assert!(requests[1].gzip);
    assert_eq!(
        requests[1].headers.get("x-tenant").map(String::as_str),
        Some("t1")
    );
    rx.stop().await;
}

#[tokio::test]
async fn http_base_path_moves_the_signal_paths() {
    let rx = OtlpReceiver::start().await.unwrap();
    let addr = rx.http_addr().unwrap();
    rx.set_http_base_path("/otlp/");
    let body = logs("a").encode_to_vec();

    assert_eq!(
        post_protobuf(addr, "/otlp/v1/logs", &body).await.status,
        200
    );
    assert_eq!(post_protobuf(addr, "/v1/logs", &body).await.status, 404);
    assert_eq!(
        post_protobuf(addr, "/otlp//v1/logs", &body).await.status,
        404
    );

    assert_eq!(rx.received().logs, vec![logs("a")]);
    let requests = rx.requests();
    assert_eq!(
        requests
            .iter()
            .map(|r| (r.path.as_deref(), r.signal))
            .collect::<Vec<_>>(),
        [
            (Some("/otlp/v1/logs"), Some(Signal::Logs)),
            (Some("/v1/logs"), None),
            (Some("/otlp//v1/logs"), None),
        ]
    );
    rx.stop().await;
}

/// Method, path, headers, body, expected status.
type BadRequest<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a [u8], u16);

#[tokio::test]
async fn bad_http_requests_are_answered_and_listed_as_invalid() {
    let rx = OtlpReceiver::start().await.unwrap();
    let addr = rx.http_addr().unwrap();
    let body = logs("a").encode_to_vec();

    let cases: [BadRequest; 5] = [
        (
            "POST",
            "/v1/log",
            &[("content-type", "application/x-protobuf")],
            &body,
            404,
        ),
        (
            "GET",
            "/v1/logs",
            &[("content-type", "application/x-protobuf")],
            b"",
            405,
        ),
        (
            "POST",
            "/v1/logs",
            &[("content-type", "text/plain")],
            &body,
            415,
        ),
        (
            "POST",
            "/v1/logs",
            &[("content-type", "application/x-protobuf")],
            b"\xff\xff\xff",
            400,
        ),
        (
            "POST",
            "/v1/logs",
            &[
                ("content-type", "application/x-protobuf"),
                ("content-encoding", "gzip"),
            ],
            &body,
            400,
        ),
    ];
    for (method, path, headers, body, want) in cases {
        let reply = http_request(addr, method, path, headers, body).await;
        assert_eq!(reply.status, want, "{method} {path} {headers:?}");
    }
    assert!(rx.received().is_empty());
    let requests = rx.requests();
    assert_eq!(requests.len(), cases.len());
    assert!(requests
        .iter()
        .all(|r| matches!(r.outcome, Outcome::Invalid(_))));
    rx.stop().await;
}

#[tokio::test]
async fn injected_grpc_failures_carry_code_and_retry_info() {
    let rx = OtlpReceiver::start().await.unwrap();
    let mut client = LogsServiceClient::connect(rx.grpc_endpoint())
        .await
        .unwrap();

    rx.set_failure(2, Failure::unavailable());
    assert_eq!(rx.pending_failures(), 2);
    for _ in 0..2 {
        let status = client.export(logs("x")).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);
    }
    assert_eq!(rx.pending_failures(), 0);
    client.export(logs("x")).await.unwrap();

    rx.set_failure(1, Failure::throttled(Duration::from_millis(1500)));
    let status = client.export(logs("y")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    let retry = status
        .get_details_retry_info()
        .expect("RetryInfo in the status details");
    assert_eq!(retry.retry_delay, Some(Duration::from_millis(1500)));

    client.export(logs("z")).await.unwrap();
    let got = rx.received();
    assert_eq!(got.logs, vec![logs("x"), logs("z")]);
    let outcomes: Vec<_> = rx.requests().into_iter().map(|r| r.outcome).collect();
    assert!(matches!(
        outcomes[..],
        [
            Outcome::Injected(_),
            Outcome::Injected(_),
            Outcome::Accepted,
            Outcome::Injected(_),
            Outcome::Accepted
        ]
    ));
    rx.stop().await;
}

#[tokio::test]
async fn injected_http_failures_carry_status_and_retry_after() {
    let rx = OtlpReceiver::start().await.unwrap();
    let addr = rx.http_addr().unwrap();
    let body = logs("a").encode_to_vec();

    rx.set_failure(1, Failure::throttled(Duration::from_millis(1500)));
    let reply = post_protobuf(addr, "/v1/logs", &body).await;
    assert_eq!(reply.status, 429);
    assert_eq!(
        reply.headers.get("retry-after").map(String::as_str),
        Some("2")
    );
    let status = tonic_types::Status::decode(reply.body.as_slice()).unwrap();
    assert_eq!(status.code, tonic::Code::ResourceExhausted as i32);

    rx.set_failure(1, Failure::unavailable());
    let reply = post_protobuf(addr, "/v1/logs", &body).await;
    assert_eq!(reply.status, 503);
    assert!(!reply.headers.contains_key("retry-after"));

    rx.set_failure(3, Failure::permanent());
    rx.set_failure(0, Failure::permanent());
    assert_eq!(post_protobuf(addr, "/v1/logs", &body).await.status, 200);
    assert_eq!(rx.received().logs.len(), 1);
    rx.stop().await;
}

#[tokio::test]
async fn wait_for_timeout_says_what_was_expected_and_what_arrived() {
    let rx = OtlpReceiver::start().await.unwrap();
    let mut client = LogsServiceClient::connect(rx.grpc_endpoint())
        .await
        .unwrap();
    client.export(logs("kernel.net.drop")).await.unwrap();
    rx.set_failure(1, Failure::unavailable());
    let _ = client.export(logs("kernel.net.drop")).await;

    let started = tokio::time::Instant::now();
    let err = rx
        .wait_for(Duration::from_millis(300), "a dropwatch metric", |r| {
            r.latest_sum("huatuo.drops", &[]).is_some()
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(err.contains("waiting for a dropwatch metric"), "{err}");
    assert!(err.contains("logs: 1 requests, 1 records"), "{err}");
    assert!(err.contains("kernel.net.drop"), "{err}");
    assert!(err.contains("metrics: 0 requests"), "{err}");
    assert!(err.contains("1 failed on purpose"), "{err}");
    rx.stop().await;
}

#[tokio::test]
async fn wait_for_wakes_up_on_arrival() {
    let rx = OtlpReceiver::start().await.unwrap();
    let endpoint = rx.grpc_endpoint();
    let sender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut c = MetricsServiceClient::connect(endpoint).await.unwrap();
        c.export(metrics("late", 1)).await.unwrap();
        c.export(metrics("late", 5)).await.unwrap();
    });
    let got = rx
        .wait_for(WAIT, "late = 5", |r| r.latest_sum("late", &[]) == Some(5.0))
        .await
        .unwrap();
    assert_eq!(got.metrics.len(), 2);
    sender.await.unwrap();
    rx.clear();
    assert!(rx.received().is_empty() && rx.requests().is_empty());
    rx.stop().await;
}

#[tokio::test]
async fn stop_frees_the_ports_for_a_restart() {
    let rx = OtlpReceiver::start().await.unwrap();
    let (grpc, http) = (rx.grpc_addr(), rx.http_addr().unwrap());
    let mut client = LogsServiceClient::connect(rx.grpc_endpoint())
        .await
        .unwrap();
    client.export(logs("before")).await.unwrap();
    post_protobuf(http, "/v1/logs", &logs("before").encode_to_vec()).await;
    rx.stop().await;

    // The old connection must not reach a stopped receiver.
    assert!(client.export(logs("lost")).await.is_err());

    let rx = OtlpReceiver::start_on(grpc, Some(http)).await.unwrap();
    assert_eq!(rx.grpc_addr(), grpc);
    // tonic's channel reconnects by itself, as the agent's exporter would.
    let mut delivered = false;
    for _ in 0..50 {
        if client.export(logs("after")).await.is_ok() {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(delivered, "the restarted receiver never accepted an export");
    assert_eq!(
        post_protobuf(http, "/v1/logs", &logs("after").encode_to_vec())
            .await
            .status,
        200
    );
    let got = rx.received();
    assert_eq!(got.event_names().into_iter().collect::<Vec<_>>(), ["after"]);
    rx.stop().await;
}

#[tokio::test]
async fn start_on_a_taken_port_fails_with_the_address() {
    let rx = OtlpReceiver::start().await.unwrap();
    let err = OtlpReceiver::start_on(rx.grpc_addr(), None)
        .await
        .err()
        .expect("binding a port in use must fail");
    assert!(
        format!("{err:#}").contains(&rx.grpc_addr().to_string()),
        "{err:#}"
    );
    rx.stop().await;
}

#[tokio::test]
async fn grpc_only_receiver_has_no_http_endpoint() {
    let rx = OtlpReceiver::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), None)
        .await
        .unwrap();
    assert_eq!(rx.http_addr(), None);
    rx.stop().await;
}
