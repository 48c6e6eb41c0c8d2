//! Throwaway file-backed loop devices, and synchronous direct-IO reads on them: each read is one
//! block request the kernel issues and completes while the caller waits. Also fsyncs of the
//! device, each one a flush of its write cache.

use anyhow::{bail, Context as _};
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::os::unix::fs::FileExt as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Bytes per read: a page, aligned, as O_DIRECT wants.
const READ_BYTES: usize = 4096;

/// A loop device over a file in a temporary directory; detached (and the file removed) on drop,
/// also when the test fails.
pub struct LoopDevice {
    device: PathBuf,
    _backing: tempfile::TempDir,
}

impl LoopDevice {
    /// Attaches a new loop device over a zero-filled file of `size_mib` MiB.
    pub fn create(size_mib: u64) -> anyhow::Result<Self> {
        let backing = tempfile::Builder::new()
            .prefix("huatuo-loopdev")
            .tempdir()?;
        let file = backing.path().join("disk.img");
        let size = size_mib << 20;
        std::fs::File::create(&file)?.set_len(size)?;
        let output = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&file)
            .output()
            .context("running losetup (util-linux)")?;
        if !output.status.success() {
            bail!(
                "losetup --find --show {}: {}",
                file.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let device = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        Ok(Self {
            device,
            _backing: backing,
        })
    }

    pub fn path(&self) -> &Path {
        &self.device
    }

    /// The kernel's name for it, e.g. `loop3`.
    pub fn name(&self) -> String {
        self.device
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// `count` synchronous 4 KiB reads with O_DIRECT at distinct offsets (wrapping around the
    /// device): each one a block request, none served from the page cache.
    pub fn read_direct(&self, count: u64) -> anyhow::Result<()> {
        read_direct(&self.device, count)
    }

    /// Whether the kernel gave it a volatile write cache (`queue/write_cache` is `write back`),
    /// which loop does when the backing file can be fsynced: only then is there anything to flush.
    pub fn caches_writes(&self) -> anyhow::Result<bool> {
        let file = format!("/sys/block/{}/queue/write_cache", self.name());
        let mode = std::fs::read_to_string(&file).with_context(|| format!("reading {file}"))?;
        Ok(mode.trim() == "write back")
    }

    /// `count` fsyncs of the device, each after writing one page: each makes the kernel issue a
    /// flush request to the device (`blkdev_fsync` flushes even when nothing is dirty).
    pub fn write_and_fsync(&self, count: u64) -> anyhow::Result<()> {
        let device = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.device)
            .with_context(|| format!("opening {} for writing", self.device.display()))?;
        let page = [0xa5u8; READ_BYTES];
        for i in 0..count {
            device.write_all_at(&page, (i % 16) * READ_BYTES as u64)?;
            device
                .sync_all()
                .with_context(|| format!("fsync of {}", self.device.display()))?;
        }
        Ok(())
    }
}

/// [`LoopDevice::read_direct`] on any block device (or file), whose size is found by seeking.
pub fn read_direct(path: &Path, count: u64) -> anyhow::Result<()> {
    use std::io::{Seek as _, SeekFrom};
    let mut device = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .with_context(|| format!("opening {} with O_DIRECT", path.display()))?;
    let blocks = device.seek(SeekFrom::End(0))? / READ_BYTES as u64;
    if blocks == 0 {
        bail!("{} is smaller than a read", path.display());
    }
    let buffer = AlignedPage::new();
    for i in 0..count {
        let offset = (i % blocks) * READ_BYTES as u64;
        // SAFETY: the buffer is READ_BYTES long and lives until the end of the loop.
        let slice = unsafe { std::slice::from_raw_parts_mut(buffer.0, READ_BYTES) };
        device
            .read_exact_at(slice, offset)
            .with_context(|| format!("direct read at {offset}"))?;
    }
    Ok(())
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        match Command::new("losetup").arg("-d").arg(&self.device).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "losetup -d {}: {}",
                self.device.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => eprintln!("losetup -d {}: {e}", self.device.display()),
        }
    }
}

struct AlignedPage(*mut u8);

impl AlignedPage {
    fn layout() -> Layout {
        Layout::from_size_align(READ_BYTES, READ_BYTES).expect("valid layout")
    }

    fn new() -> Self {
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(Self::layout()) };
        assert!(!ptr.is_null(), "out of memory");
        Self(ptr)
    }
}

impl Drop for AlignedPage {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with the same layout.
        unsafe { dealloc(self.0, Self::layout()) }
    }
}
