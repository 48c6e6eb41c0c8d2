//! The command line as users meet it: bad configuration exits 2 naming the key and the file,
//! `config default` round-trips, `probe` reports each tracer.

use huatuo_otel_tests::{require_root_and_bpf, AgentCommand};
use std::io::Write;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

async fn run_with_config(text: &str) -> (Option<i32>, String) {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let mut agent = AgentCommand::agent()
        .unwrap()
        .args(["run", "--config"])
        .arg(file.path())
        .spawn()
        .unwrap();
    let status = agent.wait_exit(WAIT).await.unwrap();
    let stderr = agent.stderr();
    assert!(
        stderr.contains(&file.path().display().to_string()),
        "file not named:\n{stderr}"
    );
    (status.code(), stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_key_exits_2_naming_key_and_file() {
    let (code, stderr) = run_with_config("[tracers.dropwatch]\nmax_event_per_second = 5\n").await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("tracers.dropwatch.max_event_per_second"),
        "{stderr}"
    );
    assert!(stderr.contains("unknown field"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_type_exits_2_naming_key_and_file() {
    let (code, stderr) = run_with_config("[exporters.file]\nmax_rotated_files = \"many\"\n").await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("exporters.file.max_rotated_files"),
        "{stderr}"
    );
    assert!(stderr.contains("invalid type"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_environment_value_exits_2_naming_the_variable() {
    let mut agent = AgentCommand::agent()
        .unwrap()
        .arg("run")
        .env("HUATUO_EXPORTERS__OTLP__PROTOCOL", "carrier-pigeon")
        .spawn()
        .unwrap();
    let status = agent.wait_exit(WAIT).await.unwrap();
    let stderr = agent.stderr();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("exporters.otlp.protocol"), "{stderr}");
    assert!(stderr.contains("HUATUO_"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tracer_flag_exits_2_naming_the_flag_and_the_tracers() {
    let mut agent = AgentCommand::agent()
        .unwrap()
        .args(["run", "--disable-tracer", "dropwach"])
        .spawn()
        .unwrap();
    let status = agent.wait_exit(WAIT).await.unwrap();
    let stderr = agent.stderr();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("key `tracers.dropwach` in"), "{stderr}");
    assert!(
        stderr.contains("command-line flag --disable-tracer"),
        "{stderr}"
    );
    assert!(stderr.contains("`dropwatch`"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_config_prints_and_loads_unchanged() {
    let mut printer = AgentCommand::agent()
        .unwrap()
        .args(["config", "default"])
        .spawn()
        .unwrap();
    assert!(printer.wait_exit(WAIT).await.unwrap().success());
    let text = printer.stdout();
    assert!(text.contains("[tracers.dropwatch]"));
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let mut check = AgentCommand::agent()
        .unwrap()
        .args(["config", "check", "--config"])
        .arg(file.path())
        .spawn()
        .unwrap();
    let status = check.wait_exit(WAIT).await.unwrap();
    assert!(status.success(), "{}", check.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_reports_every_tracer_without_starting() {
    if !require_root_and_bpf() {
        return;
    }
    let mut probe = AgentCommand::agent()
        .unwrap()
        .args(["probe", "--disable-tracer", "dropwatch"])
        .spawn()
        .unwrap();
    assert!(
        probe.wait_exit(WAIT).await.unwrap().success(),
        "{}",
        probe.stderr()
    );
    let out = probe.stdout();
    assert!(
        out.contains("dropwatch") && out.contains("disabled"),
        "{out}"
    );

    let mut probe = AgentCommand::agent().unwrap().arg("probe").spawn().unwrap();
    assert!(probe.wait_exit(WAIT).await.unwrap().success());
    let out = probe.stdout();
    let line = out
        .lines()
        .find(|l| l.starts_with("dropwatch"))
        .unwrap_or_default();
    assert!(
        line.contains("event") && line.contains("supported"),
        "{out}"
    );
}
