//! Kernel address symbolization from `/proc/kallsyms`.

use std::io::{BufRead, BufReader, Read};

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

    /// The function containing `addr`, without offset (what flame graphs group by).
    pub fn function(&self, addr: u64) -> Option<&str> {
        match self.addrs.partition_point(|&a| a <= addr) {
            0 => None,
            n => Some(self.name(n - 1)),
        }
    }

    /// `symbol+0xoffset`, or the bare hex address when it falls before the first symbol.
    pub fn resolve(&self, addr: u64) -> String {
        match self.addrs.partition_point(|&a| a <= addr) {
            0 => format!("0x{addr:x}"),
            n => format!("{}+0x{:x}", self.name(n - 1), addr - self.addrs[n - 1]),
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
