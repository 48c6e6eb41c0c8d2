//! Test support: compares a Rust mirror's layout with its C struct as it appears in an object's
//! BTF, field by field.

use crate::btf::Btf;

/// (name, offset, size) of each Rust field, in declaration order.
macro_rules! rust_layout {
    ($ty:ty, $value:expr, [$($field:ident),* $(,)?]) => {{
        let v: $ty = $value;
        vec![$((
            stringify!($field),
            std::mem::offset_of!($ty, $field),
            std::mem::size_of_val(&v.$field),
        )),*]
    }};
}
pub(crate) use rust_layout;

/// Size and (name, offset, size) of each member of struct `name` in `btf`.
pub fn c_layout(btf: &Btf, name: &str) -> (usize, Vec<(String, usize, usize)>) {
    let layout = btf
        .struct_layout(name)
        .unwrap_or_else(|| panic!("struct {name} not in the object's BTF"));
    let members = layout
        .members
        .iter()
        .map(|m| {
            let size = m
                .size_bytes
                .unwrap_or_else(|| panic!("{name}.{} unsized", m.name));
            (m.name.clone(), m.offset_bytes as usize, size as usize)
        })
        .collect();
    (layout.size as usize, members)
}

/// Same fields at the same offsets, same size, and no implicit padding.
pub fn assert_same(
    rust: Vec<(&str, usize, usize)>,
    rust_size: usize,
    c: (usize, Vec<(String, usize, usize)>),
) {
    let rust: Vec<(String, usize, usize)> = rust
        .into_iter()
        .map(|(n, o, s)| (n.to_owned(), o, s))
        .collect();
    assert_eq!(rust, c.1, "field layout differs from the C struct");
    assert_eq!(rust_size, c.0, "size differs from the C struct");
    // No implicit padding: fields tile the struct exactly.
    let covered: usize = rust.iter().map(|f| f.2).sum();
    assert_eq!(covered, rust_size, "implicit padding");
}
