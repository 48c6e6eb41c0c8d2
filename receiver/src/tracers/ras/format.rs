//! Tracepoint records decoded with the kernel's own description of them: the `format` file of
//! each tracepoint in tracefs (field name, C type, offset, size, signedness).

use std::collections::BTreeMap;

/// One field of a tracepoint record.
#[derive(Debug, Clone, PartialEq)]
struct Field {
    name: String,
    layout: Layout,
    offset: usize,
    size: usize,
    signed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Layout {
    Integer,
    /// `char name[N]`: text, NUL-padded.
    Chars,
    /// Any other fixed array, e.g. `u8 name[16]`.
    Bytes,
    /// `__data_loc T[] name`: a u32 whose low 16 bits are the data's offset in the record and
    /// high 16 bits its length.
    DynamicChars,
    DynamicBytes,
    /// `__rel_loc T[] name` (5.19+): the same, with the offset counted from the end of the field.
    RelativeChars,
    RelativeBytes,
}

/// A decoded field.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Unsigned(u64),
    Signed(i64),
    Text(String),
    Bytes(Vec<u8>),
}

/// The record layout of one tracepoint, from its tracefs `format` file.
#[derive(Debug, Clone, PartialEq)]
pub struct Format {
    fields: Vec<Field>,
}

/// A record's fields by name; fields the record was too short for are listed in `truncated`.
#[derive(Debug, Default, PartialEq)]
pub struct Decoded {
    pub fields: BTreeMap<String, Value>,
    pub truncated: Vec<String>,
}

impl Decoded {
    pub fn unsigned(&self, name: &str) -> Option<u64> {
        match self.fields.get(name)? {
            Value::Unsigned(v) => Some(*v),
            Value::Signed(v) => u64::try_from(*v).ok(),
            _ => None,
        }
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        match self.fields.get(name)? {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }
}

impl Format {
    /// Parses the text of a `format` file. The `common_*` fields (`struct trace_entry`) say
    /// nothing about the error and are left out.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut fields = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.trim().strip_prefix("field:") else {
                continue;
            };
            let field = parse_field(rest).map_err(|e| format!("format line {line:?}: {e}"))?;
            if !field.name.starts_with("common_") {
                fields.push(field);
            }
        }
        if fields.is_empty() {
            return Err("no fields in the format".into());
        }
        Ok(Self { fields })
    }

    pub fn decode(&self, record: &[u8]) -> Decoded {
        let mut decoded = Decoded::default();
        for field in &self.fields {
            match field.decode(record) {
                Some(value) => {
                    decoded.fields.insert(field.name.clone(), value);
                }
                None => decoded.truncated.push(field.name.clone()),
            }
        }
        decoded
    }
}

/// `unsigned int error_type;\toffset:8;\tsize:4;\tsigned:0;`
fn parse_field(text: &str) -> Result<Field, String> {
    let mut parts = text.split(';').map(str::trim);
    let declaration = parts.next().unwrap_or_default();
    let mut number = |key: &str| -> Result<usize, String> {
        parts
            .next()
            .and_then(|part| part.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| format!("no {key}"))
    };
    let offset = number("offset")?;
    let size = number("size")?;
    let signed = number("signed")? != 0;
    let (ctype, name) = declaration
        .rsplit_once(char::is_whitespace)
        .ok_or("no field name")?;
    let (name, is_array) = match name.split_once('[') {
        Some((name, _)) => (name, true),
        None => (name, false),
    };
    let chars = ctype
        .trim_start_matches("__data_loc ")
        .trim_start_matches("__rel_loc ");
    let chars = chars.starts_with("char") || chars.starts_with("const char");
    let layout = match (ctype, is_array || ctype.ends_with("[]")) {
        (t, _) if t.starts_with("__data_loc") && chars => Layout::DynamicChars,
        (t, _) if t.starts_with("__data_loc") => Layout::DynamicBytes,
        (t, _) if t.starts_with("__rel_loc") && chars => Layout::RelativeChars,
        (t, _) if t.starts_with("__rel_loc") => Layout::RelativeBytes,
        (_, true) if chars => Layout::Chars,
        (_, true) => Layout::Bytes,
        _ if matches!(size, 1 | 2 | 4 | 8) => Layout::Integer,
        _ => Layout::Bytes,
    };
    Ok(Field {
        name: name.to_string(),
        layout,
        offset,
        size,
        signed,
    })
}

impl Field {
    /// None when the record does not hold the whole field.
    fn decode(&self, record: &[u8]) -> Option<Value> {
        let bytes = record.get(self.offset..self.offset.checked_add(self.size)?)?;
        Some(match self.layout {
            Layout::Integer => integer(bytes, self.signed),
            Layout::Chars => chars(bytes),
            Layout::Bytes => Value::Bytes(bytes.to_vec()),
            Layout::DynamicChars | Layout::DynamicBytes => {
                let data = dynamic(record, bytes, 0)?;
                self.dynamic_value(data)
            }
            Layout::RelativeChars | Layout::RelativeBytes => {
                let data = dynamic(record, bytes, self.offset + self.size)?;
                self.dynamic_value(data)
            }
        })
    }

    fn dynamic_value(&self, data: &[u8]) -> Value {
        match self.layout {
            Layout::DynamicChars | Layout::RelativeChars => Value::Text(text(data)),
            _ => Value::Bytes(data.to_vec()),
        }
    }
}

fn integer(bytes: &[u8], signed: bool) -> Value {
    let mut buf = [0u8; 8];
    buf[..bytes.len()].copy_from_slice(bytes);
    let unsigned = u64::from_ne_bytes(buf);
    if !signed {
        return Value::Unsigned(unsigned);
    }
    // Sign-extend from the field's width.
    let shift = 64 - 8 * bytes.len() as u32;
    Value::Signed(((unsigned << shift) as i64) >> shift)
}

/// The data a `__data_loc`/`__rel_loc` word points at, offsets counted from `base`.
fn dynamic<'a>(record: &'a [u8], word: &[u8], base: usize) -> Option<&'a [u8]> {
    let loc = u32::from_ne_bytes(word.get(..4)?.try_into().ok()?);
    let start = base + (loc & 0xffff) as usize;
    let len = (loc >> 16) as usize;
    record.get(start..start + len)
}

/// A fixed `char` array: text when it holds text then NUL padding, else its bytes (firmware
/// records keep GUIDs in `char[16]` fields).
fn chars(bytes: &[u8]) -> Value {
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let padded = bytes[len..].iter().all(|&b| b == 0);
    match std::str::from_utf8(&bytes[..len]) {
        Ok(text) if padded && !text.chars().any(char::is_control) => Value::Text(text.into()),
        _ => Value::Bytes(bytes.to_vec()),
    }
}

/// NUL-terminated text; lossy, since firmware strings are not always UTF-8.
fn text(bytes: &[u8]) -> String {
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..len]).into_owned()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// `ras:mc_event` as this project's 6.18 development kernel describes it.
    pub const MC_EVENT: &str = "name: mc_event
ID: 1
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:unsigned int error_type;\toffset:8;\tsize:4;\tsigned:0;
\tfield:__data_loc char[] msg;\toffset:12;\tsize:4;\tsigned:0;
\tfield:__data_loc char[] label;\toffset:16;\tsize:4;\tsigned:0;
\tfield:u16 error_count;\toffset:20;\tsize:2;\tsigned:0;
\tfield:u8 mc_index;\toffset:22;\tsize:1;\tsigned:0;
\tfield:s8 top_layer;\toffset:23;\tsize:1;\tsigned:1;
\tfield:s8 middle_layer;\toffset:24;\tsize:1;\tsigned:1;
\tfield:s8 lower_layer;\toffset:25;\tsize:1;\tsigned:1;
\tfield:long address;\toffset:32;\tsize:8;\tsigned:1;
\tfield:u8 grain_bits;\toffset:40;\tsize:1;\tsigned:0;
\tfield:long syndrome;\toffset:48;\tsize:8;\tsigned:1;
\tfield:__data_loc char[] driver_detail;\toffset:56;\tsize:4;\tsigned:0;

print fmt: \"...\"
";

    /// Lays out `ras:mc_event` bytes: type, strings, counts and an address.
    pub fn mc_event_record(error_type: u32, msg: &str, label: &str) -> Vec<u8> {
        let mut record = vec![0u8; 64];
        record[8..12].copy_from_slice(&error_type.to_ne_bytes());
        let mut put_string = |field: usize, text: &str| {
            let offset = record.len() as u32;
            record.extend_from_slice(text.as_bytes());
            record.push(0);
            let loc = ((text.len() as u32 + 1) << 16) | offset;
            record[field..field + 4].copy_from_slice(&loc.to_ne_bytes());
        };
        put_string(12, msg);
        put_string(16, label);
        put_string(56, "APEI location: node:0 card:0 module:0");
        record[20..22].copy_from_slice(&3u16.to_ne_bytes());
        record[22] = 1;
        record[23] = 0;
        record[24] = 2;
        record[25] = -1i8 as u8;
        record[32..40].copy_from_slice(&0x12345000i64.to_ne_bytes());
        record[40] = 6;
        record
    }

    #[test]
    fn parses_a_real_format_and_decodes_every_kind_of_field() {
        let format = Format::parse(MC_EVENT).unwrap();
        let record = mc_event_record(0, "memory read error", "DIMM_A1");
        let decoded = format.decode(&record);
        assert!(decoded.truncated.is_empty(), "{:?}", decoded.truncated);
        assert!(!decoded.fields.contains_key("common_pid"));
        assert_eq!(decoded.unsigned("error_type"), Some(0));
        assert_eq!(decoded.text("msg"), Some("memory read error"));
        assert_eq!(decoded.text("label"), Some("DIMM_A1"));
        assert_eq!(decoded.unsigned("error_count"), Some(3));
        assert_eq!(decoded.fields["lower_layer"], Value::Signed(-1));
        assert_eq!(decoded.fields["address"], Value::Signed(0x12345000));
        assert_eq!(
            decoded.text("driver_detail"),
            Some("APEI location: node:0 card:0 module:0")
        );
    }

    #[test]
    fn fields_past_the_captured_bytes_are_reported_not_misread() {
        let format = Format::parse(MC_EVENT).unwrap();
        let record = mc_event_record(1, "x", "y");
        let decoded = format.decode(&record[..44]);
        assert_eq!(decoded.unsigned("error_type"), Some(1));
        assert_eq!(
            decoded.truncated,
            ["msg", "label", "syndrome", "driver_detail"]
        );
    }

    #[test]
    fn fixed_arrays_and_relative_locations_decode() {
        let format = Format::parse(
            "\tfield:char sec_type[16];\toffset:8;\tsize:16;\tsigned:0;
\tfield:u8 raw[4];\toffset:24;\tsize:4;\tsigned:0;
\tfield:__rel_loc u8[] buf;\toffset:28;\tsize:4;\tsigned:0;",
        )
        .unwrap();
        let mut record = vec![0u8; 40];
        record[8..11].copy_from_slice(b"abc");
        record[24..28].copy_from_slice(&[1, 2, 3, 4]);
        // Two bytes at 4 past the end of the field (offset 32).
        record[28..32].copy_from_slice(&((2u32 << 16) | 4).to_ne_bytes());
        record[36..38].copy_from_slice(&[9, 8]);
        let decoded = format.decode(&record);
        assert_eq!(decoded.text("sec_type"), Some("abc"));
        record[8..11].copy_from_slice(&[0xad, 0x00, 0x76]);
        let mut guid = vec![0u8; 16];
        guid[..3].copy_from_slice(&[0xad, 0x00, 0x76]);
        assert_eq!(
            format.decode(&record).fields["sec_type"],
            Value::Bytes(guid)
        );
        assert_eq!(decoded.fields["raw"], Value::Bytes(vec![1, 2, 3, 4]));
        assert_eq!(decoded.fields["buf"], Value::Bytes(vec![9, 8]));
    }

    #[test]
    fn malformed_formats_are_errors_naming_the_line() {
        let err = Format::parse("\tfield:int x;\toffset:zz;\tsize:4;\tsigned:1;").unwrap_err();
        assert!(
            err.contains("no offset") && err.contains("field:int x"),
            "{err}"
        );
        assert!(Format::parse("name: x\nformat:\n").is_err());
    }
}
