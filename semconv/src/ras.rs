//! Hardware errors the kernel reports through its RAS tracepoints (ras): machine checks, memory
//! controllers (EDAC), PCIe AER, ARM processor and firmware (CPER) records, memory failures.

names! {
    /// A machine check the kernel logged (`mce:mce_record`, x86): `cpu.logical_number` and the bank's registers in `huatuo.ras.record`.
    Event RAS_MCE = "huatuo.ras.mce", "event";
    /// A memory controller error (`ras:mc_event`, EDAC): `huatuo.ras.device` is the DIMM label, `huatuo.ras.message` the driver's message.
    Event RAS_EDAC = "huatuo.ras.edac", "event";
    /// A PCIe Advanced Error Reporting error (`ras:aer_event`): `huatuo.ras.device` is the PCI device.
    Event RAS_AER = "huatuo.ras.aer", "event";
    /// An ARM processor error record from firmware (`ras:arm_event`, GHES).
    Event RAS_ARM = "huatuo.ras.arm", "event";
    /// A firmware error record of a section type the kernel does not decode (`ras:non_standard_event`, CPER): the section type GUID and `huatuo.ras.device` the FRU text.
    Event RAS_NON_STANDARD = "huatuo.ras.non_standard", "event";
    /// The kernel handled an uncorrected memory error by offlining a page (`ras:memory_failure_event`): page frame, page type and result.
    Event RAS_MEMORY_FAILURE = "huatuo.ras.memory_failure", "event";
    /// A hardware error record the agent could not decode (an agent and kernel program mismatch); the body says why.
    Event RAS_UNDECODED = "huatuo.ras.undecoded", "event";
    /// Which tracepoint reported the error: `mce`, `edac`, `aer`, `arm`, `non_standard` or `memory_failure`.
    Attribute RAS_SOURCE = "huatuo.ras.source", "string";
    /// Error class: `corrected`, `deferred`, `uncorrected_recoverable`, `uncorrected`, `fatal`, `info` or `unknown`, from the source's own severity (MCi_STATUS UC/PCC bits for machine checks).
    Attribute RAS_SEVERITY = "huatuo.ras.severity", "string";
    /// The failing part as the source names it: DIMM label (EDAC), PCI device (AER), FRU text (firmware records).
    Attribute RAS_DEVICE = "huatuo.ras.device", "string";
    /// The reporting driver's message (EDAC).
    Attribute RAS_MESSAGE = "huatuo.ras.message", "string";
    /// Every field of the tracepoint's record by its kernel name, decoded with the tracepoint's tracefs format: 64-bit registers and addresses as hex text, other integers as numbers, strings as text, buffers as hex.
    Attribute RAS_RECORD = "huatuo.ras.record", "map";
    /// Fields of the record left out of `huatuo.ras.record` because they lay beyond the 1 KiB captured per error (long firmware buffers), comma-separated.
    Attribute RAS_RECORD_TRUNCATED = "huatuo.ras.record.truncated", "string";
    /// Hardware errors by `huatuo.ras.source`, every one counted in the kernel (including those the rate limit kept from becoming events).
    Metric RAS_ERRORS = "huatuo.ras.errors", "counter {error}";
}
