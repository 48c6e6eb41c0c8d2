//! From a raw `ras_event` (a source and its tracepoint's record) to its OTel event.

use super::format::{Decoded, Format, Value};
use crate::attribution::Owner;
use crate::kernel::BootClock;
use crate::telemetry::Event;
use huatuo_ebpf::ras::{RasEvent, Source};
use huatuo_semconv::{ras as names, sched};
use opentelemetry::logs::{AnyValue, Severity};
use opentelemetry::Key;
use std::collections::HashMap;

/// The error classes the sources report, as `huatuo.ras.severity` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSeverity {
    /// Corrected by hardware or firmware; a trend to watch (a DIMM about to fail).
    Corrected,
    /// Deferred: not yet consumed, to be handled when it is.
    Deferred,
    /// Uncorrected, but the system could contain it (a process killed, a page offlined).
    UncorrectedRecoverable,
    Uncorrected,
    /// The system cannot continue reliably.
    Fatal,
    Info,
    Unknown,
}

impl ErrorSeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Corrected => "corrected",
            Self::Deferred => "deferred",
            Self::UncorrectedRecoverable => "uncorrected_recoverable",
            Self::Uncorrected => "uncorrected",
            Self::Fatal => "fatal",
            Self::Info => "info",
            Self::Unknown => "unknown",
        }
    }

    fn log_severity(self) -> Severity {
        match self {
            Self::Corrected | Self::Deferred => Severity::Warn,
            Self::UncorrectedRecoverable | Self::Uncorrected | Self::Unknown => Severity::Error,
            Self::Fatal => Severity::Fatal,
            Self::Info => Severity::Info,
        }
    }

    /// `enum hw_event_mc_err_type` (EDAC).
    fn from_edac(error_type: u64) -> Self {
        match error_type {
            0 => Self::Corrected,
            1 => Self::Uncorrected,
            2 => Self::Deferred,
            3 => Self::Fatal,
            4 => Self::Info,
            _ => Self::Unknown,
        }
    }

    /// UEFI CPER section severity (GHES: ARM processor and non-standard records).
    fn from_cper(sev: u64) -> Self {
        match sev {
            0 => Self::UncorrectedRecoverable,
            1 => Self::Fatal,
            2 => Self::Corrected,
            3 => Self::Info,
            _ => Self::Unknown,
        }
    }

    /// `AER_NONFATAL`, `AER_FATAL`, `AER_CORRECTABLE`.
    fn from_aer(severity: u64) -> Self {
        match severity {
            0 => Self::UncorrectedRecoverable,
            1 => Self::Fatal,
            2 => Self::Corrected,
            _ => Self::Unknown,
        }
    }

    /// From the bank's MCi_STATUS: UC (bit 61) uncorrected, PCC (bit 57) processor context
    /// corrupt, i.e. not recoverable.
    fn from_mce_status(status: u64) -> Self {
        const UC: u64 = 1 << 61;
        const PCC: u64 = 1 << 57;
        match (status & UC != 0, status & PCC != 0) {
            (false, _) => Self::Corrected,
            (true, true) => Self::Fatal,
            (true, false) => Self::UncorrectedRecoverable,
        }
    }
}

/// `huatuo.ras.source` value.
pub fn source_name(source: Source) -> &'static str {
    match source {
        Source::Mce => "mce",
        Source::Edac => "edac",
        Source::Aer => "aer",
        Source::Arm => "arm",
        Source::NonStandard => "non_standard",
        Source::MemoryFailure => "memory_failure",
    }
}

fn event_name(source: Source) -> &'static str {
    match source {
        Source::Mce => names::RAS_MCE,
        Source::Edac => names::RAS_EDAC,
        Source::Aer => names::RAS_AER,
        Source::Arm => names::RAS_ARM,
        Source::NonStandard => names::RAS_NON_STANDARD,
        Source::MemoryFailure => names::RAS_MEMORY_FAILURE,
    }
}

/// Decodes records with the formats of the tracepoints attached.
pub struct Decoder {
    pub formats: HashMap<Source, Format>,
    pub clock: BootClock,
}

/// What the mapping of one source adds to the common attributes.
struct Specifics {
    severity: ErrorSeverity,
    body: String,
    device: Option<String>,
    message: Option<String>,
    cpu: Option<u64>,
}

impl Decoder {
    /// The OTel mapping of one error. `Err` for a record no attached tracepoint could have
    /// written (an unknown source): a program/agent mismatch.
    pub fn to_event(&self, raw: &RasEvent) -> Result<Event, String> {
        let source = Source::from_raw(raw.source)
            .ok_or_else(|| format!("ras record of unknown source {}", raw.source))?;
        let format = self
            .formats
            .get(&source)
            .ok_or_else(|| format!("ras record from {source:?}, whose format was not read"))?;
        let decoded = format.decode(&raw.record);
        let specifics = specifics(source, &decoded);
        let mut attributes = vec![
            (names::RAS_SOURCE, AnyValue::from(source_name(source))),
            (
                names::RAS_SEVERITY,
                AnyValue::from(specifics.severity.as_str()),
            ),
        ];
        if let Some(device) = specifics.device.filter(|d| !d.is_empty()) {
            attributes.push((names::RAS_DEVICE, device.into()));
        }
        if let Some(message) = specifics.message.filter(|m| !m.is_empty()) {
            attributes.push((names::RAS_MESSAGE, message.into()));
        }
        if let Some(cpu) = specifics.cpu {
            attributes.push((sched::CPU_LOGICAL_NUMBER, int(cpu)));
        }
        attributes.push((names::RAS_RECORD, record_map(&decoded)));
        if !decoded.truncated.is_empty() {
            attributes.push((
                names::RAS_RECORD_TRUNCATED,
                decoded.truncated.join(",").into(),
            ));
        }
        Ok(Event {
            name: event_name(source),
            tracer: super::NAME,
            time: self.clock.to_system_time(raw.ts_ns),
            severity: specifics.severity.log_severity(),
            body: specifics.body,
            attributes,
            // Hardware errors concern the machine, not a task's container.
            owner: Owner::default(),
            span: None,
        })
    }
}

impl Decoder {
    /// A record [`Decoder::to_event`] rejected, reported rather than dropped: it is a hardware
    /// error the agent failed to read, and the operator must learn of both.
    pub fn undecodable(&self, raw: &RasEvent, why: String) -> Event {
        Event {
            name: names::RAS_UNDECODED,
            tracer: super::NAME,
            time: self.clock.to_system_time(raw.ts_ns),
            severity: Severity::Error,
            body: why,
            attributes: Vec::new(),
            owner: Owner::default(),
            span: None,
        }
    }
}

fn int(value: u64) -> AnyValue {
    AnyValue::Int(i64::try_from(value).unwrap_or(i64::MAX))
}

fn specifics(source: Source, d: &Decoded) -> Specifics {
    let text = |name| d.text(name).map(str::to_string);
    match source {
        Source::Mce => {
            let severity = ErrorSeverity::from_mce_status(d.unsigned("status").unwrap_or(0));
            let cpu = d.unsigned("cpu");
            let bank = d.unsigned("bank").unwrap_or(0);
            Specifics {
                severity,
                body: format!(
                    "{} machine check on CPU {} bank {bank}",
                    severity.as_str(),
                    cpu.map_or("?".into(), |c| c.to_string()),
                ),
                device: None,
                message: None,
                cpu,
            }
        }
        Source::Edac => {
            let severity = ErrorSeverity::from_edac(d.unsigned("error_type").unwrap_or(u64::MAX));
            let message = text("msg");
            let label = text("label");
            Specifics {
                severity,
                body: format!(
                    "{} {} memory error(s) on memory controller {}{}{}",
                    d.unsigned("error_count").unwrap_or(1),
                    severity.as_str(),
                    d.unsigned("mc_index").unwrap_or(0),
                    label
                        .as_deref()
                        .map_or(String::new(), |l| format!(" ({l})")),
                    message
                        .as_deref()
                        .map_or(String::new(), |m| format!(": {m}")),
                ),
                device: label,
                message,
                cpu: None,
            }
        }
        Source::Aer => {
            let severity = ErrorSeverity::from_aer(d.unsigned("severity").unwrap_or(u64::MAX));
            let device = text("dev_name");
            Specifics {
                severity,
                body: format!(
                    "PCIe AER {} error on {}, status 0x{:x}",
                    severity.as_str(),
                    device.as_deref().unwrap_or("?"),
                    d.unsigned("status").unwrap_or(0),
                ),
                device,
                message: None,
                cpu: None,
            }
        }
        Source::Arm => {
            // `sev` and `cpu` exist since 6.x; older kernels give neither.
            let severity = d
                .unsigned("sev")
                .map_or(ErrorSeverity::Unknown, ErrorSeverity::from_cper);
            let cpu = d.unsigned("cpu");
            Specifics {
                severity,
                body: format!(
                    "ARM processor {} error, MPIDR 0x{:x}",
                    severity.as_str(),
                    d.unsigned("mpidr").unwrap_or(0)
                ),
                device: None,
                message: None,
                cpu,
            }
        }
        Source::NonStandard => {
            let severity = ErrorSeverity::from_cper(d.unsigned("sev").unwrap_or(u64::MAX));
            let message = text("fru_text");
            Specifics {
                severity,
                body: format!(
                    "firmware-reported {} error, section type {}",
                    severity.as_str(),
                    guid(d, "sec_type")
                ),
                device: message.clone(),
                message: None,
                cpu: None,
            }
        }
        Source::MemoryFailure => Specifics {
            // The kernel handles an uncorrected memory error by offlining the page.
            severity: ErrorSeverity::Uncorrected,
            body: format!(
                "memory failure on page frame 0x{:x}: {}",
                d.unsigned("pfn").unwrap_or(0),
                memory_failure_result(d.unsigned("result"))
            ),
            device: None,
            message: None,
            cpu: None,
        },
    }
}

/// `enum mf_result`.
fn memory_failure_result(result: Option<u64>) -> &'static str {
    match result {
        Some(0) => "ignored",
        Some(1) => "failed",
        Some(2) => "delayed",
        Some(3) => "recovered",
        _ => "unknown result",
    }
}

/// A 16-byte GUID field as the kernel prints it (`%pUl`: first three groups little-endian).
fn guid(d: &Decoded, name: &str) -> String {
    let Some(Value::Bytes(bytes)) = d.fields.get(name) else {
        return "?".into();
    };
    if bytes.len() != 16 {
        return hex(bytes);
    }
    let b = bytes;
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{}-{}",
        b[3],
        b[2],
        b[1],
        b[0],
        b[5],
        b[4],
        b[7],
        b[6],
        hex(&b[8..10]),
        hex(&b[10..16])
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every field of the record: registers and addresses (unsigned 64-bit) in hex as the kernel
/// prints them, other integers as numbers, text as text, buffers in hex.
fn record_map(d: &Decoded) -> AnyValue {
    let map = d
        .fields
        .iter()
        .map(|(name, value)| {
            let value = match value {
                Value::Unsigned(v) if *v > u64::from(u32::MAX) => format!("0x{v:x}").into(),
                Value::Unsigned(v) => int(*v),
                Value::Signed(v) => AnyValue::Int(*v),
                Value::Text(t) => t.clone().into(),
                Value::Bytes(b) => hex(b).into(),
            };
            (Key::from(name.clone()), value)
        })
        .collect();
    AnyValue::Map(Box::new(map))
}

#[cfg(test)]
mod tests {
    use super::super::format::tests::{mc_event_record, MC_EVENT};
    use super::*;
    use crate::tracers::test_support::{assert_registered, attr, expect_attr, reparse};

    /// `ras:non_standard_event` as this project's 6.18 development kernel describes it.
    const NON_STANDARD_EVENT: &str = "\
\tfield:char sec_type[16];\toffset:8;\tsize:16;\tsigned:0;
\tfield:char fru_id[16];\toffset:24;\tsize:16;\tsigned:0;
\tfield:__data_loc char[] fru_text;\toffset:40;\tsize:4;\tsigned:0;
\tfield:u8 sev;\toffset:44;\tsize:1;\tsigned:0;
\tfield:u32 len;\toffset:48;\tsize:4;\tsigned:0;
\tfield:__data_loc u8[] buf;\toffset:52;\tsize:4;\tsigned:0;";

    /// `ras:aer_event` (drivers/pci/pcie/aer.c; absent on the development kernel).
    const AER_EVENT: &str = "\
\tfield:__data_loc char[] dev_name;\toffset:8;\tsize:4;\tsigned:0;
\tfield:u32 status;\toffset:12;\tsize:4;\tsigned:0;
\tfield:u8 severity;\toffset:16;\tsize:1;\tsigned:0;
\tfield:u8 tlp_header_valid;\toffset:17;\tsize:1;\tsigned:0;
\tfield:u32 tlp_header[4];\toffset:20;\tsize:16;\tsigned:0;";

    /// `mce:mce_record`, leading fields (arch/x86; absent on the development kernel).
    const MCE_RECORD: &str = "\
\tfield:u64 mcgcap;\toffset:8;\tsize:8;\tsigned:0;
\tfield:u64 mcgstatus;\toffset:16;\tsize:8;\tsigned:0;
\tfield:u64 status;\toffset:24;\tsize:8;\tsigned:0;
\tfield:u64 addr;\toffset:32;\tsize:8;\tsigned:0;
\tfield:u32 cpu;\toffset:40;\tsize:4;\tsigned:0;
\tfield:u8 bank;\toffset:44;\tsize:1;\tsigned:0;";

    fn decoder() -> Decoder {
        let formats = [
            (Source::Edac, MC_EVENT),
            (Source::NonStandard, NON_STANDARD_EVENT),
            (Source::Aer, AER_EVENT),
            (Source::Mce, MCE_RECORD),
        ]
        .into_iter()
        .map(|(source, text)| (source, Format::parse(text).unwrap()))
        .collect();
        Decoder {
            formats,
            clock: BootClock::now(),
        }
    }

    fn event(source: Source, record: &[u8]) -> RasEvent {
        let mut raw: RasEvent = huatuo_ebpf::read_pod(&[0; RasEvent::SIZE]).unwrap();
        raw.ts_ns = 7_000;
        raw.source = source as u32;
        raw.cpu = 1;
        raw.record[..record.len()].copy_from_slice(record);
        raw
    }

    fn record_field<'a>(event: &'a Event, name: &str) -> &'a AnyValue {
        let AnyValue::Map(map) = expect_attr(event, names::RAS_RECORD) else {
            panic!("record is not a map");
        };
        &map[&Key::from(name.to_string())]
    }

    #[test]
    fn parses_a_record_byte_for_byte() {
        let raw = event(Source::Edac, &mc_event_record(0, "x", "y"));
        let (parsed, short) = reparse(&raw);
        assert_eq!(parsed, raw);
        assert!(short.contains("expected 1040"), "{short}");
    }

    #[test]
    fn an_edac_error_keeps_its_message_label_and_fields() {
        let raw = event(
            Source::Edac,
            &mc_event_record(0, "read error on rank 0", "DIMM_A1"),
        );
        let event = decoder().to_event(&raw).unwrap();
        assert_registered(&event);
        assert_eq!(event.name, names::RAS_EDAC);
        assert_eq!(event.severity, Severity::Warn);
        assert_eq!(event.owner.cgroup_id, None);
        assert_eq!(
            expect_attr(&event, names::RAS_SOURCE),
            &AnyValue::from("edac")
        );
        assert_eq!(
            expect_attr(&event, names::RAS_SEVERITY),
            &AnyValue::from("corrected")
        );
        assert_eq!(
            expect_attr(&event, names::RAS_DEVICE),
            &AnyValue::from("DIMM_A1")
        );
        assert_eq!(
            expect_attr(&event, names::RAS_MESSAGE),
            &AnyValue::from("read error on rank 0")
        );
        assert_eq!(record_field(&event, "error_count"), &AnyValue::Int(3));
        assert_eq!(record_field(&event, "address"), &AnyValue::Int(0x12345000));
        assert_eq!(record_field(&event, "lower_layer"), &AnyValue::Int(-1));
        assert_eq!(attr(&event, names::RAS_RECORD_TRUNCATED), None);
        assert_eq!(
            event.body,
            "3 corrected memory error(s) on memory controller 1 (DIMM_A1): read error on rank 0"
        );
    }

    #[test]
    fn edac_error_types_map_to_severities() {
        for (error_type, name, severity) in [
            (1, "uncorrected", Severity::Error),
            (2, "deferred", Severity::Warn),
            (3, "fatal", Severity::Fatal),
            (4, "info", Severity::Info),
            (9, "unknown", Severity::Error),
        ] {
            let raw = event(Source::Edac, &mc_event_record(error_type, "m", "l"));
            let event = decoder().to_event(&raw).unwrap();
            assert_eq!(
                expect_attr(&event, names::RAS_SEVERITY),
                &AnyValue::from(name)
            );
            assert_eq!(event.severity, severity, "{name}");
        }
    }

    #[test]
    fn a_firmware_record_shows_its_section_guid_and_fru() {
        let mut record = vec![0u8; 64];
        // CPER section type GUID 9876ccad-47b4-4bdb-b65e-16f193c4f3db (platform memory), as
        // the kernel stores it: first three groups little-endian.
        record[8..24].copy_from_slice(&[
            0xad, 0xcc, 0x76, 0x98, 0xb4, 0x47, 0xdb, 0x4b, 0xb6, 0x5e, 0x16, 0xf1, 0x93, 0xc4,
            0xf3, 0xdb,
        ]);
        record.extend_from_slice(b"DIMM B2\0");
        record[40..44].copy_from_slice(&((8u32 << 16) | 64).to_ne_bytes());
        record[44] = 1; // fatal
        let event = decoder()
            .to_event(&event(Source::NonStandard, &record))
            .unwrap();
        assert_registered(&event);
        assert_eq!(event.name, names::RAS_NON_STANDARD);
        assert_eq!(event.severity, Severity::Fatal);
        assert_eq!(
            expect_attr(&event, names::RAS_DEVICE),
            &AnyValue::from("DIMM B2")
        );
        assert_eq!(
            event.body,
            "firmware-reported fatal error, section type 9876ccad-47b4-4bdb-b65e-16f193c4f3db"
        );
    }

    #[test]
    fn an_aer_error_names_the_pci_device() {
        let mut record = vec![0u8; 40];
        record.extend_from_slice(b"0000:00:1c.0\0");
        record[8..12].copy_from_slice(&((13u32 << 16) | 40).to_ne_bytes());
        record[12..16].copy_from_slice(&0x4000u32.to_ne_bytes());
        record[16] = 0; // AER_NONFATAL
        let event = decoder().to_event(&event(Source::Aer, &record)).unwrap();
        assert_registered(&event);
        assert_eq!(event.name, names::RAS_AER);
        assert_eq!(event.severity, Severity::Error);
        assert_eq!(
            expect_attr(&event, names::RAS_SEVERITY),
            &AnyValue::from("uncorrected_recoverable")
        );
        assert_eq!(
            expect_attr(&event, names::RAS_DEVICE),
            &AnyValue::from("0000:00:1c.0")
        );
        assert_eq!(
            event.body,
            "PCIe AER uncorrected_recoverable error on 0000:00:1c.0, status 0x4000"
        );
    }

    #[test]
    fn a_machine_check_is_classified_by_its_status_bits() {
        for (status, name, severity) in [
            (1u64 << 63, "corrected", Severity::Warn),
            (
                (1 << 63) | (1 << 61),
                "uncorrected_recoverable",
                Severity::Error,
            ),
            ((1 << 63) | (1 << 61) | (1 << 57), "fatal", Severity::Fatal),
        ] {
            let mut record = vec![0u8; 48];
            record[24..32].copy_from_slice(&status.to_ne_bytes());
            record[40..44].copy_from_slice(&5u32.to_ne_bytes());
            record[44] = 4;
            let event = decoder().to_event(&event(Source::Mce, &record)).unwrap();
            assert_registered(&event);
            assert_eq!(event.name, names::RAS_MCE);
            assert_eq!(event.severity, severity, "{name}");
            assert_eq!(
                expect_attr(&event, sched::CPU_LOGICAL_NUMBER),
                &AnyValue::Int(5)
            );
            assert_eq!(
                record_field(&event, "status"),
                &AnyValue::from(format!("0x{status:x}"))
            );
            assert_eq!(event.body, format!("{name} machine check on CPU 5 bank 4"));
        }
    }

    #[test]
    fn records_of_unknown_or_unread_sources_are_errors() {
        let mut raw = event(Source::Edac, &[]);
        raw.source = 77;
        assert!(decoder()
            .to_event(&raw)
            .err()
            .expect("an error")
            .contains("unknown source 77"));
        raw.source = Source::Arm as u32;
        let why = decoder().to_event(&raw).err().expect("an error");
        assert!(why.contains("Arm"), "{why}");
        let event = decoder().undecodable(&raw, why.clone());
        assert_registered(&event);
        assert_eq!((event.name, event.body), (names::RAS_UNDECODED, why));
    }
}
