//! Prints the Markdown reference of every registered name (committed as `semconv/REFERENCE.md`).
fn main() {
    print!("{}", huatuo_semconv::reference_markdown());
}
