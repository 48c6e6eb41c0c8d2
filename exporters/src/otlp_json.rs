//! OTLP/JSON encoding of export requests.
//!
//! opentelemetry-proto's `with-serde` derive already follows most of the OTLP/JSON rules
//! (lowerCamelCase keys, hex trace/span ids, enums as integers, 64-bit integers as decimal
//! strings, `eventName`). What it gets wrong is patched on the `serde_json::Value` here:
//!
//! * `Option<f64>` fields (`sum`, `min`, `max` of histograms) serialize as `null` when absent; the
//!   Collector's reader rejects `null` where it expects a number ("unsupported value type"), which
//!   fails the whole line, so `null` members are removed: absent is what they mean.
//! * serde_json turns non-finite doubles into `null`, which would silently erase the value; the
//!   protobuf JSON mapping spells them as strings (the Collector parses them with Go's
//!   `ParseFloat`). Only the `null` survives, so the sign of an infinity is lost: a non-finite
//!   `doubleValue`/`asDouble` is written as `"NaN"`. The SDK already drops non-finite metric
//!   measurements, so in practice this only concerns `f64` attributes and log bodies.
//! * Empty `traceId`/`spanId`/`parentSpanId` serialize as `""`; protobuf JSON omits empty bytes
//!   fields, and omitting them keeps "no trace context" unambiguous for strict readers.

use serde_json::{Map, Value};

/// Encodes `request` as one OTLP/JSON line, newline included.
pub fn to_line<T: serde::Serialize>(request: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut value = serde_json::to_value(request)?;
    fix_up(&mut value);
    // serde_json escapes control characters inside strings, so the only raw newline is ours.
    let mut line = serde_json::to_vec(&value)?;
    line.push(b'\n');
    Ok(line)
}

const NON_FINITE_DOUBLE_KEYS: [&str; 2] = ["doubleValue", "asDouble"];
const ID_KEYS: [&str; 3] = ["traceId", "spanId", "parentSpanId"];

fn fix_up(value: &mut Value) {
    match value {
        Value::Object(members) => fix_up_object(members),
        Value::Array(items) => items.iter_mut().for_each(fix_up),
        _ => {}
    }
}

fn fix_up_object(members: &mut Map<String, Value>) {
    for key in NON_FINITE_DOUBLE_KEYS {
        if let Some(v @ Value::Null) = members.get_mut(key) {
            *v = Value::String("NaN".into());
        }
    }
    members.retain(|key, v| match v {
        Value::Null => false,
        Value::String(s) if s.is_empty() => !ID_KEYS.contains(&key.as_str()),
        _ => true,
    });
    members.values_mut().for_each(fix_up);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixed(mut v: Value) -> Value {
        fix_up(&mut v);
        v
    }

    #[test]
    fn removes_null_members_at_any_depth() {
        let v = fixed(json!({"a": [{"sum": null, "count": "1", "min": null, "max": 2.0}]}));
        assert_eq!(v, json!({"a": [{"count": "1", "max": 2.0}]}));
    }

    #[test]
    fn non_finite_doubles_become_nan_strings() {
        let v = fixed(json!([{"doubleValue": null}, {"asDouble": null}, {"doubleValue": 1.5}]));
        assert_eq!(
            v,
            json!([{"doubleValue": "NaN"}, {"asDouble": "NaN"}, {"doubleValue": 1.5}])
        );
    }

    #[test]
    fn empty_ids_are_omitted_but_other_empty_strings_kept() {
        let v = fixed(json!({
            "traceId": "", "spanId": "", "parentSpanId": "",
            "eventName": "", "value": {"stringValue": ""},
            "links": [{"traceId": "0af7651916cd43dd8448eb211c80319c"}]
        }));
        assert_eq!(
            v,
            json!({
                "eventName": "", "value": {"stringValue": ""},
                "links": [{"traceId": "0af7651916cd43dd8448eb211c80319c"}]
            })
        );
    }

    #[test]
    fn line_is_single_newline_terminated() {
        let line = to_line(&json!({"body": {"stringValue": "a\nb"}})).unwrap();
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(line.ends_with(b"\n"));
    }
}
