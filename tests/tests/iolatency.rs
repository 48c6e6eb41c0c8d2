//! End to end: the real agent with only iolatency, N synchronous direct-IO reads on a fresh
//! loop device, and the device's d2c (and q2c) histograms exported over OTLP counting at least N
//! more requests; then N more from a process in a cgroup named like a docker container, counted
//! exactly in the series of that container and the device, not in the host's.

use huatuo_otel_tests::cgroup::ContainerCgroups;
use huatuo_otel_tests::loopdev::LoopDevice;
use huatuo_otel_tests::{require_root_and_bpf, AgentCommand, OtlpReceiver, Received};
use huatuo_semconv::{block, container};
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const READS: u64 = 500;

/// Count of the latest point of the series matching `filter` without a container: the host's.
fn host_count(signals: &Received, filter: &[(&str, &str)]) -> Option<u64> {
    signals
        .points(block::DISK_REQUEST_LATENCY, filter)
        .into_iter()
        .filter(|p| !p.attributes.contains_key(container::CONTAINER_ID))
        .max_by_key(|p| p.time_unix_nano)
        .and_then(|p| p.value.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_reads_on_a_loop_device_are_counted_per_disk_and_container() {
    if !require_root_and_bpf() {
        return;
    }
    let disk = LoopDevice::create(16).unwrap();
    let name = disk.name();
    let containers = ContainerCgroups::create_unified("iolatency", 1).unwrap();
    let container_id = containers.ids()[0].clone();
    let receiver = OtlpReceiver::start().await.unwrap();
    let _agent = AgentCommand::otlp_only(&receiver.grpc_endpoint())
        .unwrap()
        .only_tracers(&["iolatency"])
        .start_tracer("iolatency")
        .await
        .unwrap();

    let device = (huatuo_semconv::system::SYSTEM_DEVICE, name.as_str());
    let d2c = [device, (block::DISK_REQUEST_STAGE, "d2c")];
    let q2c = [device, (block::DISK_REQUEST_STAGE, "q2c")];
    // Whatever the device saw before (udev probing it) is counted by now.
    tokio::task::block_in_place(|| disk.read_direct(1)).unwrap();
    receiver
        .wait_for(WAIT, "the loop device's first request", |r| {
            host_count(r, &d2c).is_some()
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let now = receiver.received();
    let (d2c_before, q2c_before) = (
        host_count(&now, &d2c).unwrap(),
        host_count(&now, &q2c).unwrap(),
    );

    tokio::task::block_in_place(|| disk.read_direct(READS)).unwrap();
    receiver
        .wait_for(WAIT, "the host's direct reads in both histograms", |r| {
            host_count(r, &d2c).is_some_and(|c| c >= d2c_before + READS)
                && host_count(r, &q2c).is_some_and(|c| c >= q2c_before + READS)
        })
        .await
        .unwrap();

    // The child joins the container's unified cgroup before exec'ing dd: each 4 KiB O_DIRECT
    // read is one synchronous request, started by a task of the container.
    let procs = containers.dirs(0).next().unwrap().join("cgroup.procs");
    let status = Command::new("sh")
        .args([
            "-c",
            r#"echo $$ > "$0" && exec dd if="$1" of=/dev/null bs=4096 count="$2" iflag=direct status=none"#,
        ])
        .arg(&procs)
        .arg(disk.path())
        .arg(READS.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "dd in the container: {status}");
    let in_container = |stage: &'static str| {
        [
            device,
            (block::DISK_REQUEST_STAGE, stage),
            (container::CONTAINER_ID, container_id.as_str()),
        ]
    };
    let (d2c_container, q2c_container) = (in_container("d2c"), in_container("q2c"));
    let received = receiver
        .wait_for(WAIT, "the container's reads in its own series", |r| {
            let count = |filter| r.histogram_count(block::DISK_REQUEST_LATENCY, filter);
            count(&d2c_container).is_some_and(|c| c >= READS)
                && count(&q2c_container).is_some_and(|c| c >= READS)
        })
        .await
        .unwrap();
    for filter in [&d2c_container, &q2c_container] {
        assert_eq!(
            received.histogram_count(block::DISK_REQUEST_LATENCY, filter),
            Some(READS),
            "{filter:?}: one observation per read, none of the host's"
        );
    }
    received.assert_names_registered();
}
