//! Best-effort symbolization of user-space addresses: the process's mappings from
//! `/proc/<pid>/maps`, then the ELF symbol tables (`.symtab`, else `.dynsym`) of the mapped files,
//! read through `/proc/<pid>/root` so files of other mount namespaces (containers) resolve too.
//! Addresses that cannot be resolved show as `[<file>+0x<offset>]` or `[unknown]`.

use object::{Object, ObjectSegment, ObjectSymbol};
use std::collections::HashMap;

struct Mapping {
    start: u64,
    end: u64,
    file_offset: u64,
    /// (device, inode): processes mapping the same file share its symbols.
    file: (String, u64),
    path: String,
}

/// Symbols of one ELF file: sorted (address, size, end of the name in `names`) plus how file
/// offsets of its loadable segments map to addresses. Names share one buffer: a large library
/// has hundreds of thousands of symbols.
struct ElfSymbols {
    symbols: Vec<(u64, u64, usize)>,
    names: String,
    /// (file offset, file size, virtual address) of each loadable segment.
    segments: Vec<(u64, u64, u64)>,
}

/// Symbolizes addresses of many processes within one capture, reading each file once.
#[derive(Default)]
pub struct UserSymbolizer {
    maps: HashMap<u32, Vec<Mapping>>,
    files: HashMap<(String, u64), Option<ElfSymbols>>,
}

impl UserSymbolizer {
    pub fn symbolize(&mut self, pid: u32, ip: u64) -> String {
        let mappings = self.maps.entry(pid).or_insert_with(|| read_maps(pid));
        let Some(mapping) = mappings.iter().find(|m| m.start <= ip && ip < m.end) else {
            return "[unknown]".into();
        };
        let offset = ip - mapping.start + mapping.file_offset;
        let path = &mapping.path;
        let elf = self
            .files
            .entry(mapping.file.clone())
            .or_insert_with(|| read_elf(pid, path));
        match elf.as_ref().and_then(|elf| elf.lookup(offset)) {
            Some(symbol) => rustc_demangle::demangle(symbol).to_string(),
            None => {
                let name = path.rsplit('/').next().unwrap_or(path);
                format!("[{name}+{offset:#x}]")
            }
        }
    }
}

impl ElfSymbols {
    fn lookup(&self, file_offset: u64) -> Option<&str> {
        let (seg_offset, _, seg_addr) = self
            .segments
            .iter()
            .find(|(off, size, _)| *off <= file_offset && file_offset < off + size)?;
        let addr = file_offset - seg_offset + seg_addr;
        let index = self.symbols.partition_point(|(start, _, _)| *start <= addr);
        let (start, size, _) = self.symbols.get(index.checked_sub(1)?)?;
        (addr < start + (*size).max(1)).then(|| self.name(index - 1))
    }

    fn name(&self, index: usize) -> &str {
        let begin = index.checked_sub(1).map_or(0, |i| self.symbols[i].2);
        &self.names[begin..self.symbols[index].2]
    }
}

fn read_maps(pid: u32) -> Vec<Mapping> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
        return Vec::new();
    };
    text.lines().filter_map(parse_maps_line).collect()
}

/// `start-end perms offset dev inode path`; only executable file mappings matter.
fn parse_maps_line(line: &str) -> Option<Mapping> {
    let mut fields = line.split_whitespace();
    let range = fields.next()?;
    let perms = fields.next()?;
    let offset = fields.next()?;
    let device = fields.next()?;
    let inode = fields.next()?.parse().ok()?;
    let path = fields.next()?;
    if !perms.contains('x') || !path.starts_with('/') {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    Some(Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        file_offset: u64::from_str_radix(offset, 16).ok()?,
        file: (device.to_owned(), inode),
        path: path.to_owned(),
    })
}

fn read_elf(pid: u32, path: &str) -> Option<ElfSymbols> {
    let file = std::fs::File::open(format!("/proc/{pid}/root{path}")).ok()?;
    // Mapped, not read: only the pages of the headers and symbol tables are touched, so large
    // binaries (hundreds of MiB of debug info) cost no more than their symbols.
    // SAFETY: the mapping is read-only and private; a file truncated meanwhile would fault, which
    // executables being run do not do.
    let data = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    let elf = object::File::parse(&*data).ok()?;
    let mut found: Vec<(u64, u64, &str)> = elf
        .symbols()
        .chain(elf.dynamic_symbols())
        .filter(|s| s.kind() == object::SymbolKind::Text && s.address() != 0)
        .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?)))
        .collect();
    found.sort_unstable_by_key(|s| s.0);
    found.dedup_by_key(|s| s.0);
    // Demangled on lookup: most of a large library's symbols are never hit.
    let mut names = String::with_capacity(found.iter().map(|s| s.2.len()).sum());
    let symbols = found
        .into_iter()
        .map(|(address, size, name)| {
            names.push_str(name);
            (address, size, names.len())
        })
        .collect();
    let segments = elf
        .segments()
        .map(|s| {
            let (offset, size) = s.file_range();
            (offset, size, s.address())
        })
        .collect();
    Some(ElfSymbols {
        symbols,
        names,
        segments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn a_function_to_find() -> u64 {
        std::hint::black_box(42)
    }

    #[test]
    fn resolves_a_function_of_this_test_binary() {
        let ip = a_function_to_find as *const () as usize as u64 + 1;
        let name = UserSymbolizer::default().symbolize(std::process::id(), ip);
        assert!(name.contains("a_function_to_find"), "{name}");
    }

    #[test]
    fn parses_maps_lines() {
        let text = "55d0c0a00000-55d0c0b00000 r-xp 00001000 fd:01 1234 /usr/bin/bash\n\
                    7ffd1000-7ffd2000 rw-p 00000000 00:00 0 [stack]\n";
        let maps: Vec<_> = text.lines().filter_map(parse_maps_line).collect();
        assert_eq!(maps.len(), 1);
        assert_eq!(
            (maps[0].start, maps[0].file_offset, maps[0].path.as_str()),
            (0x55d0c0a00000, 0x1000, "/usr/bin/bash")
        );
    }
}
