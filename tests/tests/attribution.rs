//! Attribution with real cgroups: a process placed in cgroups named the way docker, containerd,
//! CRI-O and kubelet name them drops a packet, and the exported event names its container and pod.

use huatuo_otel_tests::cgroup::unified_root;
use huatuo_otel_tests::{require_root_and_bpf, AgentCommand, OtlpReceiver};
use huatuo_semconv::{container as names, net};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const ID: &str = "5e1f0c0ffee0ddba11c0ffee0ddba11c0ffee0ddba11c0ffee0ddba11c0ffee0";
const UID: &str = "7c3e2a10-1b2c-4d5e-8f90-a1b2c3d4e5f6";

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
}

impl Drop for CgroupTree {
    fn drop(&mut self) {
        for dir in self.created.iter().rev() {
            // The only member exited already; a cgroup with no tasks can be removed.
            if let Err(e) = std::fs::remove_dir(dir) {
                eprintln!("cleanup: rmdir {}: {e}", dir.display());
            }
        }
    }
}

/// Runs a shell inside `cgroup` that sends one datagram to a closed port; returns its pid.
fn drop_from_cgroup(cgroup: &Path, port: u16) -> u32 {
    let script = format!(
        "echo $$ > {}/cgroup.procs && echo x > /dev/udp/127.0.0.1/{port}; echo $$",
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_carry_container_and_pod_of_real_cgroups() {
    if !require_root_and_bpf() {
        return;
    }
    let uid_systemd = UID.replace('-', "_");
    // (cgroup path, container.id, runtime, pod uid, qos)
    let cases = [
        (format!("/system.slice/docker-{ID}.scope"), Some("docker"), None, None),
        (format!("/huatuo-test-docker/{ID}"), None, None, None),
        (
            format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_systemd}.slice/cri-containerd-{ID}.scope"
            ),
            Some("containerd"),
            Some(UID),
            Some("burstable"),
        ),
        (format!("/kubepods/besteffort/pod{UID}/crio-{ID}"), Some("cri-o"), Some(UID), Some("besteffort")),
        (format!("/machine.slice/libpod-{ID}.scope"), Some("podman"), None, None),
    ];
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut agent = AgentCommand::otlp_only(&receiver.grpc_endpoint())
        .unwrap()
        .start_tracer("dropwatch", WAIT)
        .await
        .unwrap();

    let root = unified_root().unwrap();
    for (path, runtime, pod_uid, qos) in &cases {
        let tree = CgroupTree::create(&root, path);
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pid = drop_from_cgroup(tree.leaf(), port);
        let port_text = port.to_string();
        let received = receiver
            .wait_for(WAIT, &format!("a drop from cgroup {path}"), |r| {
                r.logs_with_event(net::SKB_DROP)
                    .iter()
                    .any(|l| l.matches(&[(net::DESTINATION_PORT, &port_text)]))
            })
            .await
            .unwrap();
        let events = received.logs_with_event(net::SKB_DROP);
        let event = events
            .iter()
            .find(|l| l.matches(&[(net::DESTINATION_PORT, &port_text)]))
            .unwrap();
        assert_eq!(
            event.attr_i64(net::PROCESS_PID),
            Some(i64::from(pid)),
            "{path}"
        );
        assert_eq!(event.attr_str(net::CGROUP_PATH), Some(path.as_str()));
        assert_eq!(event.attr_str(names::CONTAINER_ID), Some(ID), "{path}");
        assert_eq!(
            event.attr_str(names::CONTAINER_RUNTIME_NAME),
            *runtime,
            "{path}"
        );
        assert_eq!(event.attr_str(names::K8S_POD_UID), *pod_uid, "{path}");
        assert_eq!(event.attr_str(names::K8S_POD_QOS), *qos, "{path}");
    }
    agent.terminate(WAIT).await.unwrap();
    receiver.stop().await;
}
