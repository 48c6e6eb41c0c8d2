//! From the raw `txq_timeout_event` record to its OTel event.

use crate::attribution::Owner;
use crate::kernel::BootClock;
use crate::telemetry::Event;
use huatuo_ebpf::netdev_txqueue_timeout::TxqTimeoutEvent;
use huatuo_semconv::net as names;
use opentelemetry::logs::{AnyValue, Severity};

/// The OTel mapping of one timeout. Error: the device stopped sending and is being reset.
pub fn to_event(raw: &TxqTimeoutEvent, clock: BootClock) -> Event {
    let dev = raw.dev().into_owned();
    let driver = raw.driver().into_owned();
    let mut body = format!("transmit queue {} of {dev} timed out", raw.queue);
    if !driver.is_empty() {
        body.push_str(&format!(" (driver {driver})"));
    }
    Event {
        name: names::NETDEV_TXQUEUE_TIMEOUT,
        tracer: super::NAME,
        time: clock.to_system_time(raw.ts_ns),
        severity: Severity::Error,
        body,
        attributes: vec![
            (names::NETWORK_INTERFACE_NAME, dev.into()),
            (
                names::NETDEV_TXQUEUE_INDEX,
                AnyValue::Int(i64::from(raw.queue)),
            ),
            (names::NETDEV_DRIVER, driver.into()),
        ],
        // The watchdog runs in a timer: no task, hence no cgroup, is involved.
        owner: Owner::default(),
        span: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracers::test_support::{assert_registered, attr, reparse};

    fn timeout(driver: &[u8]) -> TxqTimeoutEvent {
        let mut raw = TxqTimeoutEvent::from_bytes(&[0; TxqTimeoutEvent::SIZE]).unwrap();
        raw.ts_ns = 1_000;
        raw.queue = 5;
        raw.dev[..4].copy_from_slice(b"eth1");
        raw.driver[..driver.len()].copy_from_slice(driver);
        raw
    }

    #[test]
    fn parses_a_record_byte_for_byte() {
        let raw = timeout(b"ixgbe");
        let (parsed, short) = reparse(&raw);
        assert_eq!(parsed, raw);
        assert!(short.contains("expected 64"), "{short}");
    }

    #[test]
    fn maps_a_timeout_to_registered_names() {
        let event = to_event(&timeout(b"ixgbe"), BootClock::now());
        assert_registered(&event);
        assert_eq!(event.name, names::NETDEV_TXQUEUE_TIMEOUT);
        assert_eq!(event.severity, Severity::Error);
        assert_eq!(event.owner.cgroup_id, None);
        assert_eq!(
            attr(&event, names::NETWORK_INTERFACE_NAME),
            Some(&AnyValue::from("eth1"))
        );
        assert_eq!(
            attr(&event, names::NETDEV_TXQUEUE_INDEX),
            Some(&AnyValue::Int(5))
        );
        assert_eq!(
            attr(&event, names::NETDEV_DRIVER),
            Some(&AnyValue::from("ixgbe"))
        );
        assert_eq!(
            event.body,
            "transmit queue 5 of eth1 timed out (driver ixgbe)"
        );
    }

    #[test]
    fn a_device_without_driver_says_so_by_omission() {
        let event = to_event(&timeout(b""), BootClock::now());
        assert_eq!(
            attr(&event, names::NETDEV_DRIVER),
            Some(&AnyValue::from(""))
        );
        assert_eq!(event.body, "transmit queue 5 of eth1 timed out");
    }
}
