//! The real Prometheus (Debian package `prometheus`, installed by scripts/install-deps): its
//! exposition parser (`promtool check metrics`) and a server scraping the agent's `/metrics`.

use anyhow::{bail, Context as _};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (free when this returns; good enough for tests).
pub fn free_local_address() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// (status line with headers, body) of one `method path` HTTP/1.0 request.
pub fn http(address: SocketAddr, method: &str, path: &str) -> anyhow::Result<(String, String)> {
    let mut stream =
        TcpStream::connect(address).with_context(|| format!("connecting {address}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {address}\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .with_context(|| format!("no end of headers in {response:?}"))?;
    Ok((head.to_string(), body.to_string()))
}

/// The body of a successful `GET path`.
pub fn http_get(address: SocketAddr, path: &str) -> anyhow::Result<String> {
    let (head, body) = http(address, "GET", path)?;
    if head.split_whitespace().nth(1) != Some("200") {
        bail!("GET {path}: {head}\n{body}");
    }
    Ok(body)
}

/// Runs Prometheus's own parser and linter on an exposition.
pub fn promtool_check_metrics(text: &str) -> anyhow::Result<()> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context(
            "running promtool (Debian package prometheus; scripts/install-deps installs it)",
        )?;
    child
        .stdin
        .take()
        .context("promtool stdin")?
        .write_all(text.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "promtool check metrics rejects the exposition:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// A Prometheus server scraping one target every second, with its data in a temporary
/// directory; killed on drop.
pub struct PrometheusServer {
    child: Child,
    web: SocketAddr,
    _dir: tempfile::TempDir,
}

impl PrometheusServer {
    pub fn scrape(target: SocketAddr) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("huatuo-prometheus")
            .tempdir()?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
                 scrape_configs:\n  - job_name: huatuo-otel\n    static_configs:\n      \
                 - targets: [\"{target}\"]\n"
            ),
        )?;
        let web = free_local_address()?;
        let data: PathBuf = dir.path().join("data");
        let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
        let mut command = Command::new("prometheus");
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address={web}"))
            .stdout(log.try_clone()?)
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; the server dies with the test if it is killed.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command
            .spawn()
            .context("running prometheus (Debian package prometheus)")?;
        Ok(Self {
            child,
            web,
            _dir: dir,
        })
    }

    /// The log of the server so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The result vector of an instant query (`/api/v1/query`).
    pub fn query(&self, expr: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let body = http_get(
            self.web,
            &format!("/api/v1/query?query={}", url_encode(expr)),
        )?;
        let value: serde_json::Value = serde_json::from_str(&body)?;
        if value["status"] != "success" {
            bail!("query {expr}: {body}");
        }
        Ok(value["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Polls `expr` until it returns at least one series, for at most `timeout`.
    pub async fn wait_for_series(
        &self,
        expr: &str,
        timeout: Duration,
    ) -> anyhow::Result<Vec<serde_json::Value>> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            match self.query(expr) {
                Ok(series) if !series.is_empty() => return Ok(series),
                Ok(_) => last = "no series".into(),
                Err(e) => last = format!("{e:#}"),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        bail!(
            "Prometheus has no series for {expr} after {timeout:?} ({last}); its log:\n{}",
            self.log()
        )
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
