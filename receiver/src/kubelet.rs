//! Optional Kubernetes names: the local kubelet's pod list (`GET /pods`, the read-only port or the
//! authenticated one with a client certificate or a token), refreshed periodically, gives pod
//! name, namespace, QoS class and each container's name and role. Records keep their ids
//! whatever happens here: when the kubelet is unreachable the last good list stays in use and a
//! warning is logged at most once per [`WARN_EVERY`].

use anyhow::{bail, Context as _};
use huatuo_config::KubeletConfig;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Failures to reach the kubelet are logged at most this often (with the count in between).
const WARN_EVERY: Duration = Duration::from_secs(300);
/// A record from a pod not in the list asks for a refresh, at most this often.
const MIN_REFRESH: Duration = Duration::from_secs(5);
/// Pod lists larger than this are refused (a node runs at most a few hundred pods).
const MAX_BODY: usize = 64 << 20;

/// One pod, as attribution needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    pub name: String,
    pub namespace: String,
    pub qos: Option<&'static str>,
    /// Container id (64 hex, no runtime prefix) -> (name, role).
    containers: HashMap<String, (String, &'static str)>,
}

impl Pod {
    /// Name and role of one of the pod's containers; no name when the kubelet's list does not
    /// show it (the pod's sandbox, or a container newer than the list).
    pub fn container(&self, id: &str) -> (Option<&str>, &'static str) {
        match self.containers.get(id) {
            Some((name, role)) => (Some(name), role),
            None => (None, "unknown"),
        }
    }
}

/// The pods of this node by UID, kept fresh by [`PodDirectory::run`].
#[derive(Default)]
pub struct PodDirectory {
    pods: RwLock<HashMap<String, Arc<Pod>>>,
    wanted: Notify,
}

impl PodDirectory {
    /// The pod with this UID; asks for a refresh when it is unknown.
    pub fn lookup(&self, uid: &str) -> Option<Arc<Pod>> {
        let found = self
            .pods
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(uid)
            .cloned();
        if found.is_none() {
            self.wanted.notify_one();
        }
        found
    }

    fn replace(&self, pods: HashMap<String, Arc<Pod>>) {
        *self.pods.write().unwrap_or_else(|e| e.into_inner()) = pods;
    }

    /// Refreshes the list every `refresh_interval_secs`, and sooner (at most every
    /// [`MIN_REFRESH`]) when a record names an unknown pod, until `cancel` fires.
    pub async fn run(self: Arc<Self>, config: KubeletConfig, cancel: CancellationToken) {
        let client = match Client::new(&config) {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), url = config.url, "kubelet enrichment off: records keep container and pod ids only");
                return;
            }
        };
        let interval = Duration::from_secs(config.refresh_interval_secs);
        let mut failures = Failures::default();
        loop {
            let started = Instant::now();
            match client.pods().await {
                Ok(pods) => {
                    failures.recovered(&config.url, pods.len());
                    self.replace(pods);
                }
                Err(e) => failures.failed(&config.url, &e),
            }
            let next = tokio::time::sleep(interval);
            let early = async {
                self.wanted.notified().await;
                tokio::time::sleep(MIN_REFRESH.saturating_sub(started.elapsed())).await;
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = next => {}
                _ = early => {}
            }
        }
    }
}

/// Rate-limited reporting of an unreachable kubelet.
#[derive(Default)]
struct Failures {
    count: u64,
    last_warned: Option<Instant>,
}

impl Failures {
    fn failed(&mut self, url: &str, error: &anyhow::Error) {
        self.count += 1;
        if self.last_warned.is_some_and(|t| t.elapsed() < WARN_EVERY) {
            return;
        }
        self.last_warned = Some(Instant::now());
        tracing::warn!(url, failures = self.count, error = %format!("{error:#}"), "cannot read pods from the kubelet; records keep container and pod ids without names");
    }

    fn recovered(&mut self, url: &str, pods: usize) {
        if self.count > 0 || self.last_warned.is_none() {
            tracing::info!(url, pods, "pod list read from the kubelet");
        }
        self.count = 0;
        self.last_warned = None;
    }
}

/// A minimal HTTP/1.1 GET client for one kubelet URL, plain or TLS.
struct Client {
    uri: hyper::Uri,
    host: String,
    port: u16,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
    token: Option<String>,
    timeout: Duration,
}

impl Client {
    fn new(config: &KubeletConfig) -> anyhow::Result<Self> {
        let uri: hyper::Uri = config
            .url
            .parse()
            .with_context(|| format!("attribution.kubelet.url {:?}", config.url))?;
        let https = uri.scheme_str() == Some("https");
        let host = uri.host().context("attribution.kubelet.url has no host")?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tls = if https {
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .with_context(|| format!("kubelet host {host:?}"))?;
            Some((
                tokio_rustls::TlsConnector::from(Arc::new(tls_config(config)?)),
                name,
            ))
        } else {
            None
        };
        let token = if config.token_file.as_os_str().is_empty() {
            None
        } else {
            let text = std::fs::read_to_string(&config.token_file).with_context(|| {
                format!(
                    "attribution.kubelet.token_file {}",
                    config.token_file.display()
                )
            })?;
            Some(text.trim().to_string())
        };
        Ok(Self {
            uri,
            host,
            port,
            tls,
            token,
            timeout: Duration::from_secs(config.timeout_secs),
        })
    }

    async fn pods(&self) -> anyhow::Result<HashMap<String, Arc<Pod>>> {
        let body = tokio::time::timeout(self.timeout, self.get())
            .await
            .with_context(|| format!("no answer within {:?}", self.timeout))??;
        parse_pod_list(&body)
    }

    async fn get(&self) -> anyhow::Result<Vec<u8>> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .context("connecting")?;
        match &self.tls {
            Some((connector, name)) => {
                let stream = connector
                    .connect(name.clone(), tcp)
                    .await
                    .context("TLS handshake")?;
                self.request(stream).await
            }
            None => self.request(tcp).await,
        }
    }

    async fn request<S>(&self, stream: S) -> anyhow::Result<Vec<u8>>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        use http_body_util::{BodyExt, Empty, Limited};
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        let connection = tokio::spawn(connection);
        let path = self.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut request = hyper::Request::get(path)
            .header(
                hyper::header::HOST,
                self.uri.authority().map_or("", |a| a.as_str()),
            )
            .header(hyper::header::ACCEPT, "application/json");
        if let Some(token) = &self.token {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = sender
            .send_request(request.body(Empty::<bytes::Bytes>::new())?)
            .await
            .context("sending the request")?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("reading the answer: {e}"))?
            .to_bytes();
        connection.abort();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            bail!("HTTP {status}: {text}");
        }
        Ok(body.to_vec())
    }
}

fn tls_config(config: &KubeletConfig) -> anyhow::Result<rustls::ClientConfig> {
    use huatuo_exporters::tls::{client_config, PemFile, TlsFiles};
    let file = |key, path| PemFile { key, path };
    let client = (!config.client_cert_file.as_os_str().is_empty()).then(|| {
        (
            file(
                "attribution.kubelet.client_cert_file",
                &config.client_cert_file,
            ),
            file(
                "attribution.kubelet.client_key_file",
                &config.client_key_file,
            ),
        )
    });
    client_config(&TlsFiles {
        ca: Some(file("attribution.kubelet.ca_file", &config.ca_file)),
        client,
        insecure_skip_verify: config.insecure_skip_tls_verify,
    })
}

// The parts of the Kubernetes PodList the agent reads; everything else is ignored.
#[derive(Deserialize)]
struct PodList {
    #[serde(default)]
    items: Vec<PodItem>,
}

#[derive(Deserialize)]
struct PodItem {
    metadata: Metadata,
    #[serde(default)]
    spec: PodSpec,
    #[serde(default)]
    status: PodStatus,
}

#[derive(Deserialize)]
struct Metadata {
    name: String,
    #[serde(default)]
    namespace: String,
    uid: String,
    #[serde(default, rename = "ownerReferences")]
    owners: Vec<OwnerReference>,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

#[derive(Deserialize)]
struct OwnerReference {
    kind: String,
}

#[derive(Deserialize, Default)]
struct PodSpec {
    #[serde(default, rename = "initContainers")]
    init_containers: Vec<ContainerSpec>,
}

#[derive(Deserialize)]
struct ContainerSpec {
    name: String,
    #[serde(default, rename = "restartPolicy")]
    restart_policy: Option<String>,
}

#[derive(Deserialize, Default)]
struct PodStatus {
    #[serde(default, rename = "qosClass")]
    qos_class: Option<String>,
    #[serde(default, rename = "containerStatuses")]
    containers: Vec<ContainerStatus>,
    #[serde(default, rename = "initContainerStatuses")]
    init_containers: Vec<ContainerStatus>,
    #[serde(default, rename = "ephemeralContainerStatuses")]
    ephemeral_containers: Vec<ContainerStatus>,
}

#[derive(Deserialize)]
struct ContainerStatus {
    name: String,
    /// `<runtime>://<id>`; absent until the container is created.
    #[serde(default, rename = "containerID")]
    container_id: Option<String>,
}

/// Pods by UID from a kubelet `/pods` answer.
pub fn parse_pod_list(body: &[u8]) -> anyhow::Result<HashMap<String, Arc<Pod>>> {
    let list: PodList = serde_json::from_slice(body).context("parsing the pod list")?;
    Ok(list
        .items
        .into_iter()
        .map(|item| (item.metadata.uid.clone(), Arc::new(pod_of(item))))
        .collect())
}

fn pod_of(item: PodItem) -> Pod {
    let meta = &item.metadata;
    // HuaTuo's types: a pod made by a DaemonSet or a static pod (from a file on the node, or
    // mirrored from one) is typed by that origin; otherwise by the container's role.
    let origin = if meta.owners.iter().any(|o| o.kind == "DaemonSet") {
        Some("daemonset")
    } else if meta.owners.iter().any(|o| o.kind == "Node")
        || meta
            .annotations
            .get("kubernetes.io/config.source")
            .is_some_and(|s| s != "api")
    {
        Some("static")
    } else {
        None
    };
    let restartable: Vec<&str> = item
        .spec
        .init_containers
        .iter()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| c.name.as_str())
        .collect();
    let status = &item.status;
    let roles = [
        (&status.containers, "normal"),
        (&status.init_containers, "init"),
        (&status.ephemeral_containers, "ephemeral"),
    ];
    let mut containers = HashMap::new();
    for (statuses, role) in roles {
        for c in statuses {
            let Some(id) = c
                .container_id
                .as_deref()
                .and_then(|id| id.split_once("://"))
            else {
                continue;
            };
            let sidecar = c.name == "istio-proxy"
                || (role == "init" && restartable.contains(&c.name.as_str()));
            let role = match (sidecar, role, origin) {
                (true, _, _) => "sidecar",
                (false, "normal", Some(origin)) => origin,
                _ => role,
            };
            containers.insert(id.1.to_string(), (c.name.clone(), role));
        }
    }
    Pod {
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        qos: match status.qos_class.as_deref() {
            Some("Guaranteed") => Some("guaranteed"),
            Some("Burstable") => Some("burstable"),
            Some("BestEffort") => Some("besteffort"),
            _ => None,
        },
        containers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const ID: &str = "3f4b2a9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a";
    const MESH: &str = "0000000000000000000000000000000000000000000000000000000000000001";
    const INIT: &str = "0000000000000000000000000000000000000000000000000000000000000002";

    fn list() -> String {
        format!(
            r#"{{"kind":"PodList","apiVersion":"v1","metadata":{{}},"items":[
            {{"metadata":{{"name":"web-0","namespace":"shop","uid":"u1",
               "ownerReferences":[{{"kind":"StatefulSet","name":"web"}}]}},
              "spec":{{"initContainers":[{{"name":"proxy","restartPolicy":"Always"}},{{"name":"setup"}}]}},
              "status":{{"phase":"Running","qosClass":"Burstable",
                "containerStatuses":[{{"name":"app","containerID":"containerd://{ID}"}},
                                     {{"name":"istio-proxy","containerID":"containerd://{MESH}"}},
                                     {{"name":"pending"}}],
                "initContainerStatuses":[{{"name":"setup","containerID":"cri-o://{INIT}"}}]}}}},
            {{"metadata":{{"name":"agent-x","namespace":"kube-system","uid":"u2",
               "ownerReferences":[{{"kind":"DaemonSet","name":"agent"}}]}},
              "status":{{"qosClass":"BestEffort",
                "containerStatuses":[{{"name":"agent","containerID":"docker://{ID}"}}]}}}},
            {{"metadata":{{"name":"etcd-node1","namespace":"kube-system","uid":"u3",
               "annotations":{{"kubernetes.io/config.source":"file"}}}}}}]}}"#
        )
    }

    #[test]
    fn reads_names_qos_and_container_roles() {
        let pods = parse_pod_list(list().as_bytes()).unwrap();
        let web = &pods["u1"];
        assert_eq!(
            (web.name.as_str(), web.namespace.as_str()),
            ("web-0", "shop")
        );
        assert_eq!(web.qos, Some("burstable"));
        assert_eq!(web.container(ID), (Some("app"), "normal"));
        assert_eq!(web.container(MESH), (Some("istio-proxy"), "sidecar"));
        assert_eq!(web.container(INIT), (Some("setup"), "init"));
        assert_eq!(web.container("sandbox"), (None, "unknown"));
        assert_eq!(pods["u2"].container(ID), (Some("agent"), "daemonset"));
        assert_eq!(pods["u2"].qos, Some("besteffort"));
        assert_eq!(pods["u3"].qos, None);
    }

    #[test]
    fn a_bad_answer_is_an_error() {
        let err = parse_pod_list(b"<html>").unwrap_err();
        assert!(
            format!("{err:#}").contains("parsing the pod list"),
            "{err:#}"
        );
    }

    #[test]
    fn unreadable_credentials_name_their_key() {
        let config = |url: &str| KubeletConfig {
            enabled: true,
            url: url.into(),
            ..KubeletConfig::default()
        };
        let error = |c: &KubeletConfig| format!("{:#}", Client::new(c).err().unwrap());
        let mut tls = config("https://127.0.0.1:10250/pods");
        tls.ca_file = "/nonexistent/ca.crt".into();
        assert!(
            error(&tls).contains("attribution.kubelet.ca_file"),
            "{}",
            error(&tls)
        );
        tls.ca_file = PathBuf::new();
        tls.insecure_skip_tls_verify = true;
        tls.client_cert_file = "/nonexistent/client.crt".into();
        tls.client_key_file = "/nonexistent/client.key".into();
        assert!(error(&tls).contains("client_cert_file"), "{}", error(&tls));
        let mut token = config("http://127.0.0.1:10255/pods");
        token.token_file = "/nonexistent/token".into();
        assert!(error(&token).contains("token_file"), "{}", error(&token));
        // Without certificates, TLS needs nothing from disk.
        tls.client_cert_file = PathBuf::new();
        tls.client_key_file = PathBuf::new();
        assert!(Client::new(&tls).is_ok());
    }

    #[tokio::test]
    async fn an_unreachable_kubelet_is_an_error_not_a_hang() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let client = Client::new(&KubeletConfig {
            enabled: true,
            url: format!("http://127.0.0.1:{port}/pods"),
            timeout_secs: 1,
            ..KubeletConfig::default()
        })
        .unwrap();
        let error = format!("{:#}", client.pods().await.unwrap_err());
        assert!(error.contains("connecting"), "{error}");
    }

    /// A CA, a kubelet serving certificate for 127.0.0.1 and a client certificate, made with
    /// the openssl command in `dir`.
    fn certificates(dir: &std::path::Path) {
        let openssl = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("openssl (apt-get install openssl)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"],
                &key[..],
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                    "-subj",
                    "/CN=test-ca",
                    "-days",
                    "1",
                ],
            ]
            .concat(),
        );
        for (name, extension) in [
            ("server", "subjectAltName=IP:127.0.0.1"),
            ("client", "extendedKeyUsage=clientAuth"),
        ] {
            let (key_file, csr, crt) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.crt"),
            );
            openssl(
                &[
                    &["req"],
                    &key[..],
                    &[
                        "-keyout",
                        &key_file,
                        "-out",
                        &csr,
                        "-subj",
                        &format!("/CN={name}"),
                    ],
                ]
                .concat(),
            );
            std::fs::write(dir.join(format!("{name}.ext")), extension).unwrap();
            openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "1",
                "-extfile",
                &format!("{name}.ext"),
            ]);
        }
    }

    /// A kubelet on the authenticated port: TLS, and only clients with a certificate of the CA.
    async fn tls_kubelet(dir: &std::path::Path, body: String) -> u16 {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(dir.join("ca.crt")).unwrap())
            .unwrap();
        let clients = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(clients)
            .with_single_cert(
                vec![CertificateDer::from_pem_file(dir.join("server.crt")).unwrap()],
                PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let mut request = [0u8; 4096];
                let _ = tls.read(&mut request).await;
                let answer = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len());
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            }
        });
        port
    }

    #[tokio::test]
    async fn reads_the_authenticated_port_with_a_client_certificate() {
        let dir = tempfile::tempdir().unwrap();
        certificates(dir.path());
        let port = tls_kubelet(dir.path(), list()).await;
        let config = KubeletConfig {
            enabled: true,
            url: format!("https://127.0.0.1:{port}/pods"),
            ca_file: dir.path().join("ca.crt"),
            client_cert_file: dir.path().join("client.crt"),
            client_key_file: dir.path().join("client.key"),
            ..KubeletConfig::default()
        };
        let pods = Client::new(&config).unwrap().pods().await.unwrap();
        assert_eq!(pods["u1"].name, "web-0");

        // Without a client certificate the kubelet refuses the handshake.
        let anonymous = KubeletConfig {
            client_cert_file: PathBuf::new(),
            client_key_file: PathBuf::new(),
            ..config.clone()
        };
        assert!(Client::new(&anonymous).unwrap().pods().await.is_err());
        // A serving certificate from another CA is refused, unless verification is off.
        let other_ca = KubeletConfig {
            ca_file: dir.path().join("client.crt"),
            ..config.clone()
        };
        let error = format!(
            "{:#}",
            Client::new(&other_ca).unwrap().pods().await.unwrap_err()
        );
        assert!(error.contains("TLS handshake"), "{error}");
        let insecure = KubeletConfig {
            ca_file: PathBuf::new(),
            insecure_skip_tls_verify: true,
            ..config
        };
        assert_eq!(
            Client::new(&insecure).unwrap().pods().await.unwrap().len(),
            3
        );
    }

    #[test]
    fn an_unknown_pod_asks_for_a_refresh() {
        let directory = PodDirectory::default();
        assert!(directory.lookup("u1").is_none());
        directory.replace(parse_pod_list(list().as_bytes()).unwrap());
        assert_eq!(directory.lookup("u1").unwrap().name, "web-0");
    }
}
