//! End to end: the real agent with only iolatency, N synchronous direct-IO reads on a fresh
//! loop device, and the device's d2c (and q2c) histograms exported over OTLP counting at least N
//! more requests.

use huatuo_otel_tests::loopdev::LoopDevice;
use huatuo_otel_tests::{require_root_and_bpf, AgentCommand, OtlpReceiver};
use huatuo_semconv::block;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const READS: u64 = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_reads_on_a_loop_device_are_counted_per_disk() {
    if !require_root_and_bpf() {
        return;
    }
    let disk = LoopDevice::create(16).unwrap();
    let name = disk.name();
    let receiver = OtlpReceiver::start().await.unwrap();
    let _agent = AgentCommand::otlp_only(&receiver.grpc_endpoint())
        .unwrap()
        .only_tracers(&["iolatency"])
        .start_tracer("iolatency")
        .await
        .unwrap();

    let d2c = [
        (huatuo_semconv::system::SYSTEM_DEVICE, name.as_str()),
        (block::DISK_REQUEST_STAGE, "d2c"),
    ];
    let q2c = [
        (huatuo_semconv::system::SYSTEM_DEVICE, name.as_str()),
        (block::DISK_REQUEST_STAGE, "q2c"),
    ];
    // Whatever the device saw before (udev probing it) is counted by now.
    tokio::task::block_in_place(|| disk.read_direct(1)).unwrap();
    receiver
        .wait_for(WAIT, "the loop device's first request", |r| {
            r.histogram_count(block::DISK_REQUEST_LATENCY, &d2c)
                .is_some()
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let now = receiver.received();
    let count = |filter| now.histogram_count(block::DISK_REQUEST_LATENCY, filter);
    let (d2c_before, q2c_before) = (count(&d2c).unwrap(), count(&q2c).unwrap());

    tokio::task::block_in_place(|| disk.read_direct(READS)).unwrap();
    let received = receiver
        .wait_for(WAIT, "the direct reads in both histograms", |r| {
            let d2c = r.histogram_count(block::DISK_REQUEST_LATENCY, &d2c);
            let q2c = r.histogram_count(block::DISK_REQUEST_LATENCY, &q2c);
            d2c.is_some_and(|c| c >= d2c_before + READS)
                && q2c.is_some_and(|c| c >= q2c_before + READS)
        })
        .await
        .unwrap();
    received.assert_names_registered();
}
