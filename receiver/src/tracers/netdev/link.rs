//! An interface's link state as rtnetlink reports it, what changed between two reports, and the
//! OTel event of a change.

use super::driver::DriverInfo;
use crate::attribution::Owner;
use crate::telemetry::Event;
use huatuo_semconv::net as names;
use opentelemetry::logs::{AnyValue, Severity};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, State};
use std::time::SystemTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// IFF_UP: the administrator's setting.
    pub admin_up: bool,
    /// IFF_LOWER_UP: the driver's carrier, as the kernel reports it (only while admin up).
    pub carrier_up: bool,
    /// RFC 2863 operational state, lower case (`up`, `lowerlayerdown`, ...).
    pub operstate: String,
}

impl Link {
    pub fn from_message(message: &LinkMessage) -> Option<Self> {
        let name = message.attributes.iter().find_map(|a| match a {
            LinkAttribute::IfName(name) => Some(name.clone()),
            _ => None,
        })?;
        let operstate = message
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::OperState(state) => Some(operstate_name(*state)),
                _ => None,
            })
            .unwrap_or_else(|| "unknown".into());
        let flags = message.header.flags;
        Some(Self {
            index: message.header.index,
            name,
            admin_up: flags.contains(LinkFlags::Up),
            carrier_up: flags.contains(LinkFlags::LowerUp),
            operstate,
        })
    }
}

fn operstate_name(state: State) -> String {
    match state {
        State::Unknown => "unknown".into(),
        State::NotPresent => "notpresent".into(),
        State::Down => "down".into(),
        State::LowerLayerDown => "lowerlayerdown".into(),
        State::Testing => "testing".into(),
        State::Dormant => "dormant".into(),
        State::Up => "up".into(),
        State::Other(value) => format!("other_{value}"),
        _ => "unknown".into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    AdminUp,
    AdminDown,
    CarrierUp,
    CarrierDown,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::AdminUp => "admin_up",
            Change::AdminDown => "admin_down",
            Change::CarrierUp => "carrier_up",
            Change::CarrierDown => "carrier_down",
        }
    }

    fn is_down(self) -> bool {
        matches!(self, Change::AdminDown | Change::CarrierDown)
    }
}

/// What changed from `before` to `after`, admin first: an interface set down loses its carrier
/// with it.
pub fn changes(before: &Link, after: &Link) -> Vec<Change> {
    let mut changes = Vec::new();
    if before.admin_up != after.admin_up {
        changes.push(if after.admin_up {
            Change::AdminUp
        } else {
            Change::AdminDown
        });
    }
    if before.carrier_up != after.carrier_up {
        changes.push(if after.carrier_up {
            Change::CarrierUp
        } else {
            Change::CarrierDown
        });
    }
    changes
}

fn up_down(up: bool) -> AnyValue {
    AnyValue::from(if up { "up" } else { "down" })
}

pub fn to_event(link: &Link, changes: &[Change], driver: &DriverInfo, time: SystemTime) -> Event {
    let listed: Vec<&str> = changes.iter().map(|c| c.as_str()).collect();
    let mut attributes: Vec<(&'static str, AnyValue)> = vec![
        (names::NETWORK_INTERFACE_NAME, link.name.clone().into()),
        (names::NETDEV_IFINDEX, AnyValue::Int(i64::from(link.index))),
        (
            names::NETDEV_LINK_CHANGES,
            AnyValue::ListAny(Box::new(
                listed.iter().map(|c| AnyValue::from(*c)).collect(),
            )),
        ),
        (names::NETDEV_ADMIN_STATE, up_down(link.admin_up)),
        (names::NETDEV_CARRIER, up_down(link.carrier_up)),
        (names::NETDEV_OPERSTATE, link.operstate.clone().into()),
        (names::NETDEV_DRIVER, driver.driver.clone().into()),
    ];
    for (key, value) in [
        (names::NETDEV_DRIVER_VERSION, &driver.version),
        (names::NETDEV_FIRMWARE_VERSION, &driver.firmware),
    ] {
        if !value.is_empty() {
            attributes.push((key, value.clone().into()));
        }
    }
    let severity = if changes.iter().any(|c| c.is_down()) {
        Severity::Warn
    } else {
        Severity::Info
    };
    Event {
        name: names::NETDEV_LINK_CHANGE,
        tracer: super::NAME,
        time,
        severity,
        body: format!(
            "{}: {} (operstate {})",
            link.name,
            listed.join(", "),
            link.operstate
        ),
        attributes,
        owner: Owner::default(),
        span: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracers::test_support::{assert_registered, attr};

    fn link(admin_up: bool, carrier_up: bool, operstate: &str) -> Link {
        Link {
            index: 7,
            name: "eth1".into(),
            admin_up,
            carrier_up,
            operstate: operstate.into(),
        }
    }

    #[test]
    fn reads_flags_and_operstate_from_a_message() {
        let mut message = LinkMessage::default();
        message.header.index = 7;
        message.header.flags = LinkFlags::Up | LinkFlags::Running | LinkFlags::LowerUp;
        message.attributes = vec![
            LinkAttribute::IfName("eth1".into()),
            LinkAttribute::OperState(State::Up),
        ];
        assert_eq!(Link::from_message(&message), Some(link(true, true, "up")));

        message.header.flags = LinkFlags::Up;
        message.attributes = vec![
            LinkAttribute::IfName("eth1".into()),
            LinkAttribute::OperState(State::LowerLayerDown),
        ];
        assert_eq!(
            Link::from_message(&message),
            Some(link(true, false, "lowerlayerdown"))
        );
        message.attributes.clear();
        assert_eq!(Link::from_message(&message), None, "no name");
    }

    #[test]
    fn reports_only_admin_and_carrier_transitions() {
        let down = link(false, false, "down");
        let up_no_carrier = link(true, false, "lowerlayerdown");
        let up = link(true, true, "up");
        assert_eq!(changes(&down, &up_no_carrier), [Change::AdminUp]);
        assert_eq!(changes(&up_no_carrier, &up), [Change::CarrierUp]);
        assert_eq!(
            changes(&up, &down),
            [Change::AdminDown, Change::CarrierDown]
        );
        // Operstate alone (e.g. dormant) is state, not a reported change.
        assert!(changes(&up, &link(true, true, "dormant")).is_empty());
    }

    #[test]
    fn maps_a_change_to_registered_names() {
        let driver = DriverInfo {
            driver: "ixgbe".into(),
            version: "6.18.0".into(),
            firmware: "0x800008a4".into(),
        };
        let event = to_event(
            &link(true, false, "lowerlayerdown"),
            &[Change::CarrierDown],
            &driver,
            SystemTime::now(),
        );
        assert_registered(&event);
        assert_eq!(event.severity, Severity::Warn);
        assert_eq!(
            attr(&event, names::NETDEV_LINK_CHANGES),
            Some(&AnyValue::ListAny(Box::new(vec!["carrier_down".into()])))
        );
        assert_eq!(
            attr(&event, names::NETDEV_FIRMWARE_VERSION),
            Some(&AnyValue::from("0x800008a4"))
        );
        assert_eq!(event.body, "eth1: carrier_down (operstate lowerlayerdown)");

        let bare = to_event(
            &link(true, true, "up"),
            &[Change::CarrierUp],
            &DriverInfo::default(),
            SystemTime::now(),
        );
        assert_eq!(bare.severity, Severity::Info);
        assert_eq!(attr(&bare, names::NETDEV_FIRMWARE_VERSION), None);
        assert_eq!(attr(&bare, names::NETDEV_DRIVER), Some(&AnyValue::from("")));
    }
}
