//! Reads the device given as argument with O_DIRECT, 4 KiB at a time round and round, until
//! killed or until stdin closes, so it never outlives the test that spawned it: a process whose
//! block IO the iotracer test looks for by pid.

use std::io::Read as _;

fn main() -> anyhow::Result<()> {
    let device = std::env::args_os()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: direct-reader DEVICE"))?;
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    huatuo_otel_tests::loopdev::read_direct(std::path::Path::new(&device), u64::MAX)
}
