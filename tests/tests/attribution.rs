//! Attribution with real cgroups: processes placed in cgroups named the way docker, containerd,
//! CRI-O, podman and kubelet name them (cgroupfs and systemd drivers; the unified hierarchy for
//! drops, the v1 memory hierarchy of this hybrid host for OOM kills and reclaim stalls) drop a
//! packet, stall in reclaim or get OOM-killed, and the exported records name their container and
//! pod. A fake kubelet serves the
//! pod list, whose names appear too. The cgroups are created after the agent started (the
//! cgroup_events tracer learns them) and their removal is seen.

use huatuo_otel_tests::cgroup::unified_root;
use huatuo_otel_tests::memcg::{CgroupVersion, MemoryCgroup};
use huatuo_otel_tests::netns::NetNs;
use huatuo_otel_tests::{require_root_and_bpf, AgentCommand, AgentProcess, LogView, OtlpReceiver};
use huatuo_semconv::{container as names, memory, net};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const UID: &str = "7c3e2a10-1b2c-4d5e-8f90-a1b2c3d4e5f6";
const POD: &str = "web-0";
const NAMESPACE: &str = "shop";
const CONTAINER: &str = "app";

/// A 64-hex container id unique to this test process and `tag`, so concurrent runs never share
/// a cgroup.
fn container_id(tag: u8) -> String {
    format!("{:08x}{tag:02x}", std::process::id()).repeat(7)[..64].to_string()
}

/// Cgroup directories created for one case, removed (deepest first) even when the test fails.
struct CgroupTree {
    created: Vec<PathBuf>,
}

impl CgroupTree {
    fn create(root: &Path, relative: &str) -> Self {
        let mut created = Vec::new();
        let mut dir = root.to_path_buf();
        for segment in relative.split('/').filter(|s| !s.is_empty()) {
            dir.push(segment);
            if !dir.exists() {
                std::fs::create_dir(&dir)
                    .unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
                created.push(dir.clone());
            }
        }
        Self { created }
    }

    fn leaf(&self) -> &Path {
        self.created.last().expect("leaf created by this test")
    }

    fn id(&self) -> u64 {
        std::fs::metadata(self.leaf()).unwrap().ino()
    }
}

impl Drop for CgroupTree {
    fn drop(&mut self) {
        for dir in self.created.iter().rev() {
            // Members exited already; a cgroup with no tasks can be removed.
            if let Err(e) = std::fs::remove_dir(dir) {
                eprintln!("cleanup: rmdir {}: {e}", dir.display());
            }
        }
    }
}

/// Runs a shell inside `cgroup` that sends one datagram to a closed port of `address`; returns
/// its pid.
fn drop_from_cgroup(cgroup: &Path, address: &str, port: u16) -> u32 {
    let script = format!(
        "echo $$ > {}/cgroup.procs && echo x > /dev/udp/{address}/{port}; echo $$",
        cgroup.display()
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn closed_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().port()
}

/// A kubelet read-only port serving `/pods` with one pod whose `app` container is `id`.
async fn fake_kubelet(id: &str) -> SocketAddr {
    use http_body_util::Full;
    use hyper::body::Bytes;
    let body = serde_json::json!({
        "kind": "PodList", "apiVersion": "v1", "metadata": {},
        "items": [{
            "metadata": {"name": POD, "namespace": NAMESPACE, "uid": UID,
                         "ownerReferences": [{"kind": "StatefulSet", "name": "web"}]},
            "spec": {"containers": [{"name": CONTAINER}]},
            "status": {"phase": "Running", "qosClass": "Burstable",
                       "containerStatuses": [{"name": CONTAINER, "containerID": format!("containerd://{id}")}]}
        }]
    })
    .to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let body = body.clone();
            let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
                let found = request.uri().path() == "/pods";
                let body = body.clone();
                async move {
                    let status = if found { 200 } else { 404 };
                    hyper::Response::builder()
                        .status(status)
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(body)))
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    addr
}

/// The agent with `tracer` and the cgroup watcher attached, the kubelet at `kubelet`, and
/// attribution's cache changes logged; waits for `kubelet_line` (the first read, or its failure).
async fn start_agent(
    receiver: &OtlpReceiver,
    kubelet: SocketAddr,
    kubelet_line: &str,
    tracer: &str,
    disabled: &[&str],
) -> AgentProcess {
    let mut command = AgentCommand::otlp_only(&receiver.grpc_endpoint())
        .unwrap()
        .env(
            "HUATUO_AGENT__LOG_LEVEL",
            "info,huatuo_receiver::attribution=debug",
        )
        .env("HUATUO_ATTRIBUTION__KUBELET__ENABLED", "true")
        .env(
            "HUATUO_ATTRIBUTION__KUBELET__URL",
            format!("http://{kubelet}/pods"),
        );
    for tracer in disabled {
        command = command.args(["--disable-tracer", tracer]);
    }
    let mut agent = command.start_tracer(tracer).await.unwrap();
    agent
        .wait_for_stderr("tracers::cgroup_events: attached", WAIT)
        .await
        .unwrap();
    agent.wait_for_stderr(kubelet_line, WAIT).await.unwrap();
    agent
}

const PODS_READ: &str = "pod list read from the kubelet";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_carry_container_and_pod_of_real_cgroups() {
    if !require_root_and_bpf() {
        return;
    }
    let k8s = container_id(1);
    let other = container_id(2);
    let uid_systemd = UID.replace('-', "_");
    // (cgroup path, container.id, runtime, pod uid, qos, whether the kubelet knows it)
    let cases = [
        (format!("/system.slice/docker-{other}.scope"), &other, Some("docker"), None, None),
        (format!("/huatuo-test-docker/{other}"), &other, None, None, None),
        (
            format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_systemd}.slice/cri-containerd-{k8s}.scope"
            ),
            &k8s,
            Some("containerd"),
            Some(UID),
            Some("burstable"),
        ),
        (format!("/kubepods/burstable/pod{UID}/{k8s}"), &k8s, None, Some(UID), Some("burstable")),
        (format!("/kubepods/besteffort/pod{UID}/crio-{other}"), &other, Some("cri-o"), Some(UID), Some("burstable")),
        (format!("/machine.slice/libpod-{other}.scope"), &other, Some("podman"), None, None),
    ];
    let receiver = OtlpReceiver::start().await.unwrap();
    let kubelet = fake_kubelet(&k8s).await;
    let mut agent = start_agent(&receiver, kubelet, PODS_READ, "dropwatch", &[]).await;

    let root = unified_root().unwrap();
    for (path, id, runtime, pod_uid, qos) in &cases {
        // Created after the agent started: the cgroup_events tracer sees it appear.
        let tree = CgroupTree::create(&root, path);
        let inode = tree.id();
        agent
            .wait_for_stderr(&format!("cgroup created id={inode}"), WAIT)
            .await
            .unwrap();
        let port = closed_port();
        let pid = drop_from_cgroup(tree.leaf(), "127.0.0.1", port);
        let port_text = port.to_string();
        let event = wait_for_drop(&receiver, &port_text, path).await;
        assert_eq!(
            event.attr_i64(net::PROCESS_PID),
            Some(i64::from(pid)),
            "{path}"
        );
        assert_eq!(event.attr_str(net::CGROUP_PATH), Some(path.as_str()));
        assert_eq!(event.attr_i64(net::CGROUP_ID), Some(inode as i64));
        assert_eq!(
            event.attr_str(names::CONTAINER_ID),
            Some(id.as_str()),
            "{path}"
        );
        assert_eq!(event.attr_str(names::ATTRIBUTION_SOURCE), Some("cgroup"));
        assert_eq!(
            event.attr_str(names::CONTAINER_RUNTIME_NAME),
            *runtime,
            "{path}"
        );
        assert_eq!(event.attr_str(names::K8S_POD_UID), *pod_uid, "{path}");
        // The kubelet's QoS class wins over the path's for pods it knows.
        assert_eq!(event.attr_str(names::K8S_POD_QOS), *qos, "{path}");
        let in_pod = pod_uid.is_some();
        assert_eq!(
            event.attr_str(names::K8S_POD_NAME),
            in_pod.then_some(POD),
            "{path}"
        );
        assert_eq!(
            event.attr_str(names::K8S_NAMESPACE_NAME),
            in_pod.then_some(NAMESPACE)
        );
        let known = in_pod && *id == &k8s;
        assert_eq!(
            event.attr_str(names::K8S_CONTAINER_NAME),
            known.then_some(CONTAINER),
            "{path}"
        );
        let role = in_pod.then_some(if known { "normal" } else { "unknown" });
        assert_eq!(event.attr_str(names::K8S_CONTAINER_TYPE), role, "{path}");
        drop(tree);
        // Removed: the tracer evicts it from the cache.
        agent
            .wait_for_stderr(&format!("cgroup removed id={inode}"), WAIT)
            .await
            .unwrap();
    }
    receiver.received().assert_names_registered();
    agent.terminate(WAIT).await.unwrap();
    receiver.stop().await;
}

async fn wait_for_drop(receiver: &OtlpReceiver, port: &str, what: &str) -> LogView {
    let filter = [(net::DESTINATION_PORT, port)];
    let received = receiver
        .wait_for(WAIT, &format!("a drop from {what}"), |r| {
            r.logs_with_event(net::SKB_DROP)
                .iter()
                .any(|l| l.matches(&filter))
        })
        .await
        .unwrap();
    received
        .logs_with_event(net::SKB_DROP)
        .into_iter()
        .find(|l| l.matches(&filter))
        .unwrap()
}

/// A long-running process in `cgroup` and in network namespace `ns`, killed on drop.
struct Sleeper(Child);

impl Sleeper {
    fn start(ns: &NetNs, cgroup: &Path) -> Self {
        // Into the cgroup first: `ip netns exec` remounts /sys, hiding cgroupfs.
        let script = format!(
            "echo $$ > {}/cgroup.procs && exec ip netns exec {} sleep 60",
            cgroup.display(),
            ns.name()
        );
        let child = Command::new("bash").args(["-c", &script]).spawn().unwrap();
        let inode = |path: String| std::fs::metadata(path).map(|m| m.ino()).ok();
        let wanted = inode(format!("/run/netns/{}", ns.name()));
        let deadline = std::time::Instant::now() + WAIT;
        while inode(format!("/proc/{}/ns/net", child.id())) != wanted {
            assert!(
                std::time::Instant::now() < deadline,
                "sleeper never entered {}",
                ns.name()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self(child)
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A packet from the host into a container's network namespace, dropped there in softirq on
/// behalf of no task of that container: attributed by the namespace to the pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_without_owner_are_attributed_by_network_namespace() {
    if !require_root_and_bpf() {
        return;
    }
    let id = container_id(3);
    let path = format!("/kubepods/burstable/pod{UID}/{id}");
    let root = unified_root().unwrap();
    let tree = CgroupTree::create(&root, &path);
    let ns = NetNs::create("attribution").unwrap();
    // Host side 10.231.N.1, namespace side 10.231.N.2; N from the pid keeps runs apart.
    let subnet = std::process::id() % 250;
    let (host_if, ns_if) = (format!("hta{subnet}h"), format!("hta{subnet}n"));
    let ip = |args: &[&str]| {
        let status = Command::new("ip").args(args).status().unwrap();
        assert!(status.success(), "ip {args:?}");
    };
    ip(&[
        "link",
        "add",
        &host_if,
        "type",
        "veth",
        "peer",
        "name",
        &ns_if,
        "netns",
        ns.name(),
    ]);
    ip(&[
        "addr",
        "add",
        &format!("10.231.{subnet}.1/30"),
        "dev",
        &host_if,
    ]);
    ip(&["link", "set", &host_if, "up"]);
    ns.exec(
        "ip",
        &[
            "addr",
            "add",
            &format!("10.231.{subnet}.2/30"),
            "dev",
            &ns_if,
        ],
    )
    .unwrap();
    ns.exec("ip", &["link", "set", &ns_if, "up"]).unwrap();
    let _sleeper = Sleeper::start(&ns, tree.leaf());

    let receiver = OtlpReceiver::start().await.unwrap();
    let kubelet = fake_kubelet(&id).await;
    let mut agent = start_agent(&receiver, kubelet, PODS_READ, "dropwatch", &[]).await;
    let port = closed_port();
    // The test's own cgroup, in the host's namespace, sends it.
    let script = format!("echo x > /dev/udp/10.231.{subnet}.2/{port}");
    let sent = Command::new("bash").args(["-c", &script]).status().unwrap();
    assert!(sent.success());
    let event = wait_for_drop(&receiver, &port.to_string(), "the container's namespace").await;
    assert_eq!(
        event.attr_str(names::ATTRIBUTION_SOURCE),
        Some("netns"),
        "{event:?}"
    );
    assert_eq!(event.attr_str(names::CONTAINER_ID), Some(id.as_str()));
    assert_eq!(event.attr_str(names::K8S_POD_UID), Some(UID));
    assert_eq!(event.attr_str(names::K8S_POD_NAME), Some(POD));
    assert_eq!(event.attr_str(names::K8S_CONTAINER_NAME), Some(CONTAINER));
    // No task of the container was running: the record carries no cgroup of its own.
    assert_eq!(event.attr_i64(net::CGROUP_ID), None);
    agent.terminate(WAIT).await.unwrap();
    receiver.stop().await;
}

/// OOM kills in memory cgroups of the v1 hierarchy named like kubelet's and docker's: the event
/// and the kill counter name the victim's container and pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oom_kills_carry_the_victims_container() {
    if !require_root_and_bpf() {
        return;
    }
    let k8s = container_id(4);
    let docker = container_id(5);
    let cases = [
        (
            format!("/kubepods/burstable/pod{UID}/{k8s}"),
            &k8s,
            Some(UID),
        ),
        (
            format!("/system.slice/docker-{docker}.scope"),
            &docker,
            None,
        ),
    ];
    let receiver = OtlpReceiver::start().await.unwrap();
    let kubelet = fake_kubelet(&k8s).await;
    let mut agent = start_agent(&receiver, kubelet, PODS_READ, "oom", &["dropwatch"]).await;
    for (path, id, pod_uid) in &cases {
        let cgroup = MemoryCgroup::create_at(path, 32 << 20).unwrap();
        let mut hog = cgroup.spawn_hog(128 << 20, 0).unwrap();
        let signal = tokio::task::block_in_place(|| hog.wait_killed(WAIT)).unwrap();
        assert_eq!(signal, libc::SIGKILL);
        let victim = hog.pid().to_string();
        let series = [(names::CONTAINER_ID, id.as_str())];
        let received = receiver
            .wait_for(WAIT, &format!("the kill in {path}"), |r| {
                let event = r
                    .logs_with_event(memory::OOM_KILL)
                    .iter()
                    .any(|l| l.matches(&[(memory::OOM_VICTIM_PID, &victim)]));
                event && r.latest_sum(memory::OOM_KILLS, &series).is_some()
            })
            .await
            .unwrap();
        let events = received.logs_with_event(memory::OOM_KILL);
        let event = events
            .iter()
            .find(|l| l.matches(&[(memory::OOM_VICTIM_PID, &victim)]))
            .unwrap();
        assert_eq!(event.attr_str(memory::MEMCG_PATH), Some(path.as_str()));
        assert_eq!(
            event.attr_str(names::CONTAINER_ID),
            Some(id.as_str()),
            "{path}"
        );
        assert_eq!(event.attr_str(names::K8S_POD_UID), *pod_uid, "{path}");
        let point = received.latest_point(memory::OOM_KILLS, &series).unwrap();
        assert_eq!(point.attr_str(names::K8S_POD_UID), *pod_uid, "{path}");
        if pod_uid.is_some() {
            assert_eq!(event.attr_str(names::K8S_POD_NAME), Some(POD));
            assert_eq!(point.attr_str(names::K8S_POD_NAME), Some(POD));
        }
        if *id == &k8s {
            assert_eq!(event.attr_str(names::K8S_CONTAINER_NAME), Some(CONTAINER));
            assert_eq!(point.attr_str(names::K8S_NAMESPACE_NAME), Some(NAMESPACE));
            assert_eq!(point.attr_str(names::K8S_CONTAINER_NAME), Some(CONTAINER));
        }
        // Bounded series: no pid or cgroup id on the metric.
        assert_eq!(point.attr(net::PROCESS_PID), None);
        assert_eq!(point.attr(net::CGROUP_ID), None);
    }
    receiver.received().assert_names_registered();
    agent.terminate(WAIT).await.unwrap();
    receiver.stop().await;
}

/// A v1-only container: a process in a memory cgroup of the v1 hierarchy named like a docker
/// container's, and in the unified root (a container on a v1-only host). Its reclaim stalls carry
/// a unified cgroup id that names nothing, so their container comes from the task's v1 cgroups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reclaim_stalls_of_a_v1_only_container_carry_its_id() {
    if !require_root_and_bpf() {
        return;
    }
    let id = container_id(8);
    let path = format!("/huatuo-test-{}-v1/docker-{id}.scope", std::process::id());
    let cgroup = MemoryCgroup::create_at(&path, 32 << 20).unwrap();
    let v1 = cgroup.version() == CgroupVersion::V1;
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = AgentCommand::otlp_only(&receiver.grpc_endpoint())
        .unwrap()
        .only_tracers(&["memreclaim"])
        .env("HUATUO_TRACERS__MEMRECLAIM__STALL_THRESHOLD_MS", "0")
        .env("HUATUO_TRACERS__MEMRECLAIM__MAX_EVENTS_PER_SECOND", "1000")
        .start_tracer("memreclaim")
        .await
        .unwrap();
    let mut hog = cgroup.spawn_hog(128 << 20, 0).unwrap();
    let signal = tokio::task::block_in_place(|| hog.wait_killed(WAIT)).unwrap();
    assert_eq!(signal, libc::SIGKILL);
    let ours = [
        (net::PROCESS_PID, hog.pid().to_string()),
        (names::CONTAINER_ID, id.clone()),
    ];
    let ours: Vec<(&str, &str)> = ours.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let received = receiver
        .wait_for(
            WAIT,
            &format!("a stall in {path} with its container"),
            |r| {
                r.logs_with_event(memory::MEMORY_RECLAIM_STALL)
                    .iter()
                    .any(|l| l.matches(&ours))
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", agent.stderr()));
    let events = received.logs_with_event(memory::MEMORY_RECLAIM_STALL);
    let event = events.iter().find(|l| l.matches(&ours)).unwrap();
    assert_eq!(
        event.attr_str(names::CONTAINER_RUNTIME_NAME),
        Some("docker")
    );
    if v1 {
        assert_eq!(event.attr_str(names::ATTRIBUTION_SOURCE), Some("task"));
        assert_eq!(event.attr_str(net::CGROUP_PATH), Some(path.as_str()));
    }
    received.assert_names_registered();
    agent.terminate(WAIT).await.unwrap();
    receiver.stop().await;
}

/// With the kubelet unreachable, records keep their container and pod ids, and the failure is
/// logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_keep_their_ids_when_the_kubelet_is_unreachable() {
    if !require_root_and_bpf() {
        return;
    }
    let id = container_id(7);
    let receiver = OtlpReceiver::start().await.unwrap();
    let nobody = SocketAddr::from(([127, 0, 0, 1], closed_port()));
    let failed = "cannot read pods from the kubelet";
    let mut agent = start_agent(&receiver, nobody, failed, "dropwatch", &[]).await;
    let path = format!("/kubepods/pod{UID}/{id}");
    let tree = CgroupTree::create(&unified_root().unwrap(), &path);
    let port = closed_port();
    drop_from_cgroup(tree.leaf(), "127.0.0.1", port);
    let event = wait_for_drop(&receiver, &port.to_string(), &path).await;
    assert_eq!(event.attr_str(names::CONTAINER_ID), Some(id.as_str()));
    assert_eq!(event.attr_str(names::K8S_POD_UID), Some(UID));
    assert_eq!(event.attr_str(names::K8S_POD_QOS), Some("guaranteed"));
    assert_eq!(event.attr_str(names::K8S_POD_NAME), None);
    agent.terminate(WAIT).await.unwrap();
    receiver.stop().await;
}
