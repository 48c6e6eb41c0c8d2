//! What the tracers' decode tests share.

use crate::framework::parse_record;
use crate::telemetry::Event;
use huatuo_semconv::{is_registered, Kind};
use opentelemetry::logs::AnyValue;

pub fn attr<'a>(event: &'a Event, key: &str) -> Option<&'a AnyValue> {
    event
        .attributes
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

pub fn expect_attr<'a>(event: &'a Event, key: &str) -> &'a AnyValue {
    attr(event, key).unwrap_or_else(|| panic!("no {key}"))
}

/// Dashboards and collector pipelines only know registered names.
pub fn assert_registered(event: &Event) {
    assert!(is_registered(event.name, Kind::Event));
    for (key, _) in &event.attributes {
        assert!(
            is_registered(key, Kind::Attribute),
            "{key} is not registered in semconv"
        );
    }
}

/// Parses `raw`'s own bytes, as the kernel submits them, and the same bytes one short; returns
/// the record and the error.
pub fn reparse<R: aya::Pod>(raw: &R) -> (R, String) {
    // SAFETY: reading the bytes of a plain-old-data struct.
    let bytes = unsafe {
        std::slice::from_raw_parts((raw as *const R).cast::<u8>(), std::mem::size_of::<R>())
    };
    let parsed = parse_record("test", bytes).unwrap();
    let short = parse_record::<R>("test", &bytes[..bytes.len() - 1])
        .err()
        .expect("a record one byte short");
    (parsed, short)
}
