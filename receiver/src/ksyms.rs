//! Kernel address symbolization from `/proc/kallsyms`.

use std::io::{BufRead, BufReader, Read};

/// Longer than any kernel function (the largest are tens of KiB).
const MAX_FUNCTION_BYTES: u64 = 1 << 20;

/// Kernel text symbols sorted by address. Names share one string buffer, which keeps ~120k
/// symbols in a few MiB instead of one heap allocation each.
pub struct KernelSymbols {
    addrs: Vec<u64>,
    name_ends: Vec<u32>,
    names: String,
}

impl KernelSymbols {
    pub fn load() -> std::io::Result<Self> {
        let file = std::fs::File::open("/proc/kallsyms")?;
        let symbols = Self::parse(file)?;
        if symbols.addrs.is_empty() {
            return Err(std::io::Error::other(
                "/proc/kallsyms shows no addresses (not root, or kernel.kptr_restrict hides them)",
            ));
        }
        Ok(symbols)
    }

    /// Parses kallsyms text (`ffffffff81000000 T _stext [module]`); only text symbols are kept
    /// since only code addresses are symbolized.
    pub fn parse(reader: impl Read) -> std::io::Result<Self> {
        let mut entries: Vec<(u64, String)> = Vec::new();
        for line in BufReader::new(reader).lines() {
            let line = line?;
            let mut fields = line.split_whitespace();
            let (Some(addr), Some(kind), Some(name)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if !matches!(kind, "t" | "T") {
                continue;
            }
            let Ok(addr) = u64::from_str_radix(addr, 16) else {
                continue;
            };
            if addr != 0 {
                entries.push((addr, name.to_string()));
            }
        }
        entries.sort_by_key(|(addr, _)| *addr);
        let mut symbols = Self {
            addrs: Vec::with_capacity(entries.len()),
            name_ends: Vec::with_capacity(entries.len()),
            names: String::new(),
        };
        for (addr, name) in entries {
            symbols.addrs.push(addr);
            symbols.names.push_str(&name);
            symbols.name_ends.push(symbols.names.len() as u32);
        }
        Ok(symbols)
    }

    fn name(&self, index: usize) -> &str {
        let start = if index == 0 {
            0
        } else {
            self.name_ends[index - 1] as usize
        };
        &self.names[start..self.name_ends[index] as usize]
    }

    /// Address of the text symbol `name` (the lowest, when several share the name). Linear: for
    /// the few look-ups a tracer makes at load.
    pub fn address_of(&self, name: &str) -> Option<u64> {
        (0..self.addrs.len())
            .find(|&index| self.name(index) == name)
            .map(|index| self.addrs[index])
    }

    /// A stack as text, one `symbol+0xoffset` frame per line, in the order given (innermost first
    /// for stacks from the kernel).
    pub fn format_stack(&self, frames: &[u64]) -> String {
        let lines: Vec<String> = frames.iter().map(|&addr| self.resolve(addr)).collect();
        lines.join("\n")
    }

    /// The function containing `addr`, without offset (what flame graphs group by); None where
    /// [`KernelSymbols::resolve`] shows a bare address.
    pub fn function(&self, addr: u64) -> Option<&str> {
        match self.addrs.partition_point(|&a| a <= addr) {
            n if n > 0 && addr - self.addrs[n - 1] <= MAX_FUNCTION_BYTES => Some(self.name(n - 1)),
            _ => None,
        }
    }

    /// `symbol+0xoffset`, or the bare hex address when no symbol can hold it: before the first
    /// symbol, or further past the nearest one than any function is long (code loaded after the
    /// symbols were read, such as a BPF program's JIT image).
    pub fn resolve(&self, addr: u64) -> String {
        match self.addrs.partition_point(|&a| a <= addr) {
            n if n > 0 && addr - self.addrs[n - 1] <= MAX_FUNCTION_BYTES => {
                format!("{}+0x{:x}", self.name(n - 1), addr - self.addrs[n - 1])
            }
            _ => format!("0x{addr:x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
ffffffff81000000 T _stext
ffffffff81a00010 t udp_queue_rcv_one_skb
ffffffff81a00000 T __udp4_lib_rcv
ffffffff81b00000 D some_data
ffffffffc0000000 t helper_fn\t[nf_tables]
0000000000000000 T hidden
";

    #[test]
    fn resolves_to_nearest_preceding_text_symbol() {
        let syms = KernelSymbols::parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(syms.resolve(0xffffffff81a00004), "__udp4_lib_rcv+0x4");
        assert_eq!(
            syms.resolve(0xffffffff81a00010),
            "udp_queue_rcv_one_skb+0x0"
        );
        // Data symbols are ignored: this still belongs to the last text symbol before it.
        assert_eq!(
            syms.resolve(0xffffffff81b00008),
            "udp_queue_rcv_one_skb+0xffff8"
        );
        assert_eq!(syms.resolve(0xffffffffc0000020), "helper_fn+0x20");
        assert_eq!(syms.resolve(0x10), "0x10");
        // Too far from any symbol to be inside it.
        assert_eq!(syms.resolve(0xffffffffc0200000), "0xffffffffc0200000");
    }

    #[test]
    fn finds_symbols_by_name_and_formats_stacks() {
        let syms = KernelSymbols::parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(syms.address_of("__udp4_lib_rcv"), Some(0xffffffff81a00000));
        assert_eq!(
            syms.address_of("some_data"),
            None,
            "data symbols are not kept"
        );
        assert_eq!(syms.address_of("missing"), None);
        assert_eq!(
            syms.format_stack(&[0xffffffff81a00014, 0xffffffffc0000001]),
            "udp_queue_rcv_one_skb+0x4\nhelper_fn+0x1"
        );
        assert_eq!(syms.format_stack(&[]), "");
    }

    #[test]
    fn real_kallsyms_resolves_a_known_function() {
        let Ok(syms) = KernelSymbols::load() else {
            return; // not root: covered by the parser test above
        };
        let text = std::fs::read_to_string("/proc/kallsyms").unwrap();
        let addr = text
            .lines()
            .find(|l| l.ends_with(" kfree_skb_reason") || l.ends_with(" sk_skb_reason_drop"))
            .and_then(|l| u64::from_str_radix(l.split(' ').next()?, 16).ok());
        if let Some(addr) = addr {
            assert!(syms.resolve(addr + 1).ends_with("+0x1"));
        }
    }
}
