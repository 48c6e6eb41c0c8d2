//! A small reader for BPF Type Format blobs.
//!
//! It answers the few questions the agent asks of BTF: the layout of a
//! struct (to check Rust mirrors of kernel-shared records), the values of an
//! enum (drop reasons differ between kernels), and whether a type exists.
//! aya has its own BTF parser but does not expose these queries.
//!
//! Input is untrusted in the sense that a truncated or corrupt blob must
//! produce an error, never a panic: the whole blob is validated once in
//! [`Btf::from_bytes`], and queries use bounds-checked reads anyway.
//!
//! Format reference: the kernel's Documentation/bpf/btf.rst.

use std::path::{Path, PathBuf};

/// Where the running kernel exposes its own BTF.
pub const VMLINUX_BTF_PATH: &str = "/sys/kernel/btf/vmlinux";

const MAGIC: u16 = 0xeb9f;
const HEADER_LEN: usize = 24;
const TYPE_HEADER_LEN: usize = 12;
/// Guards type-chain walks against reference cycles in corrupt input.
const MAX_RESOLVE_DEPTH: usize = 64;
/// The reader targets 64-bit kernels, where BTF does not record pointer size.
const POINTER_SIZE: u32 = 8;

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_FLOAT: u32 = 16;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// Why a blob or object could not be read as BTF.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("BTF blob is {len} bytes, shorter than the {needed}-byte header")]
    TooShort { len: usize, needed: usize },
    #[error("not BTF: magic is {found:#06x}, expected 0xeb9f")]
    BadMagic { found: u16 },
    #[error("unsupported BTF version {version} (only version 1 is known)")]
    UnsupportedVersion { version: u8 },
    #[error("BTF header length {hdr_len} is invalid for a {len}-byte blob")]
    BadHeaderLength { hdr_len: u32, len: usize },
    #[error(
        "BTF {section} section (offset {offset}, length {length}) lies outside the {len}-byte blob"
    )]
    SectionOutOfBounds {
        section: &'static str,
        offset: u64,
        length: u64,
        len: usize,
    },
    #[error("BTF string section must begin and end with a NUL byte")]
    BadStringSection,
    #[error("BTF type #{id} at type-section offset {offset} is truncated")]
    TruncatedType { id: u32, offset: usize },
    #[error("BTF type #{id} has unknown kind {kind}")]
    UnknownKind { id: u32, kind: u32 },
    #[error("BTF type #{id} names string offset {offset}, outside the {len}-byte string section")]
    BadNameOffset { id: u32, offset: u32, len: usize },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not a readable ELF object: {0}")]
    Elf(String),
    #[error("ELF object has no .BTF section (was it compiled with -g?)")]
    NoBtfSection,
}

/// Byte layout of a struct or union.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructLayout {
    pub size: u32,
    pub members: Vec<Member>,
}

impl StructLayout {
    /// The first member with this name (anonymous members have name "").
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }
}

/// One direct member of a struct or union; nested members are not flattened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Empty for anonymous struct/union members.
    pub name: String,
    /// Byte holding the member's first bit.
    pub offset_bytes: u32,
    /// None when the type has no size (void, function, forward declaration,
    /// an unresolvable reference) or the member is a bitfield.
    pub size_bytes: Option<u32>,
    /// Exact offset in bits, for bitfields.
    pub bit_offset: u32,
    /// Width in bits when the member is a bitfield.
    pub bitfield_bits: Option<u32>,
}

/// One type header plus where its kind-specific data starts.
#[derive(Debug, Clone, Copy)]
struct RawType {
    name_off: u32,
    info: u32,
    size_or_type: u32,
    /// Absolute offset into `Btf::data` of the trailing data.
    extra: usize,
}

impl RawType {
    fn kind(&self) -> u32 {
        (self.info >> 24) & 0x1f
    }

    fn vlen(&self) -> usize {
        (self.info & 0xffff) as usize
    }

    fn kind_flag(&self) -> bool {
        self.info >> 31 == 1
    }
}

/// A parsed, validated BTF blob.
#[derive(Debug, Clone)]
pub struct Btf {
    data: Vec<u8>,
    big_endian: bool,
    strs_start: usize,
    strs_len: usize,
    /// Index i holds type id i + 1; id 0 is `void` and has no entry.
    types: Vec<RawType>,
}

/// Bytes of kind-specific data following a type header.
fn extra_len(kind: u32, vlen: usize) -> Option<usize> {
    Some(match kind {
        KIND_INT => 4,
        KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
        | KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => 0,
        KIND_ARRAY => 12,
        KIND_STRUCT | KIND_UNION => 12 * vlen,
        KIND_ENUM => 8 * vlen,
        KIND_FUNC_PROTO => 8 * vlen,
        KIND_VAR => 4,
        KIND_DATASEC => 12 * vlen,
        KIND_DECL_TAG => 4,
        KIND_ENUM64 => 12 * vlen,
        _ => return None,
    })
}

/// Size of one name-carrying record in the trailing data, for kinds whose
/// records start with a string offset.
fn named_record_len(kind: u32) -> Option<usize> {
    match kind {
        KIND_STRUCT | KIND_UNION | KIND_ENUM64 => Some(12),
        KIND_ENUM | KIND_FUNC_PROTO => Some(8),
        _ => None,
    }
}

fn read_u16(data: &[u8], off: usize, big_endian: bool) -> Option<u16> {
    let b: [u8; 2] = data.get(off..off.checked_add(2)?)?.try_into().ok()?;
    Some(if big_endian {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    })
}

fn read_u32(data: &[u8], off: usize, big_endian: bool) -> Option<u32> {
    let b: [u8; 4] = data.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

fn section(
    name: &'static str,
    hdr_len: usize,
    offset: u32,
    length: u32,
    total: usize,
) -> Result<(usize, usize), BtfError> {
    let start = hdr_len as u64 + u64::from(offset);
    let end = start + u64::from(length);
    if end > total as u64 {
        return Err(BtfError::SectionOutOfBounds {
            section: name,
            offset: u64::from(offset),
            length: u64::from(length),
            len: total,
        });
    }
    Ok((start as usize, end as usize))
}

impl Btf {
    /// Parses and validates a raw BTF blob (as in /sys/kernel/btf/vmlinux
    /// or an object's `.BTF` section). Either byte order is accepted.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BtfError> {
        if bytes.len() < HEADER_LEN {
            return Err(BtfError::TooShort {
                len: bytes.len(),
                needed: HEADER_LEN,
            });
        }
        let big_endian = match read_u16(bytes, 0, false) {
            Some(MAGIC) => false,
            Some(m) if m == MAGIC.swap_bytes() => true,
            found => {
                return Err(BtfError::BadMagic {
                    found: found.unwrap_or(0),
                })
            }
        };
        let version = bytes[2];
        if version != 1 {
            return Err(BtfError::UnsupportedVersion { version });
        }
        let field = |off| read_u32(bytes, off, big_endian).unwrap_or(0);
        let hdr_len = field(4);
        if (hdr_len as usize) < HEADER_LEN || hdr_len as usize > bytes.len() {
            return Err(BtfError::BadHeaderLength {
                hdr_len,
                len: bytes.len(),
            });
        }
        let hdr_len = hdr_len as usize;
        let (types_start, types_end) = section("type", hdr_len, field(8), field(12), bytes.len())?;
        let (strs_start, strs_end) = section("string", hdr_len, field(16), field(20), bytes.len())?;
        let strs = &bytes[strs_start..strs_end];
        if !strs.is_empty() && (strs[0] != 0 || strs[strs.len() - 1] != 0) {
            return Err(BtfError::BadStringSection);
        }

        let mut btf = Btf {
            data: bytes.to_vec(),
            big_endian,
            strs_start,
            strs_len: strs.len(),
            types: Vec::new(),
        };
        btf.index_types(types_start, types_end)?;
        Ok(btf)
    }

    /// Walks the type section once, recording each type and checking that
    /// every trailing record and every name offset is in bounds.
    fn index_types(&mut self, start: usize, end: usize) -> Result<(), BtfError> {
        let mut pos = start;
        let mut types = Vec::new();
        while pos < end {
            let id = u32::try_from(types.len() + 1).unwrap_or(u32::MAX);
            let truncated = || BtfError::TruncatedType {
                id,
                offset: pos - start,
            };
            if end - pos < TYPE_HEADER_LEN {
                return Err(truncated());
            }
            let word = |i: usize| self.u32_at(pos + 4 * i);
            let t = RawType {
                name_off: word(0),
                info: word(1),
                size_or_type: word(2),
                extra: pos + TYPE_HEADER_LEN,
            };
            let extra = extra_len(t.kind(), t.vlen())
                .ok_or(BtfError::UnknownKind { id, kind: t.kind() })?;
            if end - t.extra < extra {
                return Err(truncated());
            }
            self.check_name(id, t.name_off)?;
            if let Some(rec) = named_record_len(t.kind()) {
                for i in 0..t.vlen() {
                    self.check_name(id, self.u32_at(t.extra + i * rec))?;
                }
            }
            types.push(t);
            pos = t.extra + extra;
        }
        self.types = types;
        Ok(())
    }

    fn check_name(&self, id: u32, offset: u32) -> Result<(), BtfError> {
        // Offset 0 is the empty name and valid even with no string section.
        if offset == 0 || (offset as usize) < self.strs_len {
            Ok(())
        } else {
            Err(BtfError::BadNameOffset {
                id,
                offset,
                len: self.strs_len,
            })
        }
    }

    /// Reads a BTF file such as /sys/kernel/btf/vmlinux.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, BtfError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| BtfError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(&bytes)
    }

    /// The running kernel's BTF, from [`VMLINUX_BTF_PATH`].
    pub fn from_sys_fs() -> Result<Self, BtfError> {
        Self::from_file(VMLINUX_BTF_PATH)
    }

    /// The `.BTF` section of an ELF object, e.g. one of this crate's
    /// embedded BPF objects.
    pub fn from_object(elf: &[u8]) -> Result<Self, BtfError> {
        use object::{Object, ObjectSection};

        let file = object::File::parse(elf).map_err(|e| BtfError::Elf(e.to_string()))?;
        let section = file.section_by_name(".BTF").ok_or(BtfError::NoBtfSection)?;
        let data = section.data().map_err(|e| BtfError::Elf(e.to_string()))?;
        Self::from_bytes(data)
    }

    /// Number of types, not counting the implicit `void` (id 0).
    pub fn type_count(&self) -> usize {
        self.types.len()
    }

    /// Whether any type (struct, enum, typedef, function, ...) has this name.
    pub fn has_type(&self, name: &str) -> bool {
        !name.is_empty() && self.types.iter().any(|t| self.name(t.name_off) == name)
    }

    /// Layout of the struct (or, failing that, union) with this name.
    /// Members are direct ones only; anonymous members keep an empty name.
    pub fn struct_layout(&self, name: &str) -> Option<StructLayout> {
        let t = self
            .find(name, &[KIND_STRUCT])
            .or_else(|| self.find(name, &[KIND_UNION]))?;
        let members = (0..t.vlen())
            .map(|i| self.member(&t, i))
            .collect::<Option<Vec<_>>>()?;
        Some(StructLayout {
            size: t.size_or_type,
            members,
        })
    }

    /// Variants of the enum with this name, in declaration order. Unsigned
    /// 64-bit values above `i64::MAX` wrap, as in a C cast.
    pub fn enum_variants(&self, name: &str) -> Option<Vec<(String, i64)>> {
        let t = self.find(name, &[KIND_ENUM, KIND_ENUM64])?;
        let signed = t.kind_flag();
        (0..t.vlen())
            .map(|i| {
                if t.kind() == KIND_ENUM {
                    let rec = t.extra + i * 8;
                    let raw = self.read_u32(rec + 4)?;
                    let value = if signed {
                        i64::from(raw as i32)
                    } else {
                        i64::from(raw)
                    };
                    Some((self.name(self.read_u32(rec)?).to_owned(), value))
                } else {
                    let rec = t.extra + i * 12;
                    let lo = u64::from(self.read_u32(rec + 4)?);
                    let hi = u64::from(self.read_u32(rec + 8)?);
                    Some((
                        self.name(self.read_u32(rec)?).to_owned(),
                        ((hi << 32) | lo) as i64,
                    ))
                }
            })
            .collect()
    }

    /// Value of one enumerator, e.g. ("skb_drop_reason",
    /// "SKB_DROP_REASON_NO_SOCKET").
    pub fn enum_value(&self, enum_name: &str, variant: &str) -> Option<i64> {
        self.enum_variants(enum_name)?
            .into_iter()
            .find(|(n, _)| n == variant)
            .map(|(_, v)| v)
    }

    fn find(&self, name: &str, kinds: &[u32]) -> Option<RawType> {
        self.types
            .iter()
            .find(|t| kinds.contains(&t.kind()) && self.name(t.name_off) == name)
            .copied()
    }

    fn member(&self, t: &RawType, i: usize) -> Option<Member> {
        let rec = t.extra + i * 12;
        let name = self.name(self.read_u32(rec)?).to_owned();
        let type_id = self.read_u32(rec + 4)?;
        let raw_offset = self.read_u32(rec + 8)?;
        // With kind_flag the offset word packs (bitfield size << 24 | bit
        // offset); without it, bitfields are encoded in the INT type itself.
        let (bit_offset, bitfield_bits) = if t.kind_flag() {
            let bits = raw_offset >> 24;
            (raw_offset & 0x00ff_ffff, (bits != 0).then_some(bits))
        } else {
            (raw_offset, self.int_bitfield_bits(type_id))
        };
        let size_bytes = match bitfield_bits {
            Some(_) => None,
            None => self.type_size(type_id),
        };
        Some(Member {
            name,
            offset_bytes: bit_offset / 8,
            size_bytes,
            bit_offset,
            bitfield_bits,
        })
    }

    /// For a member typed directly as an INT narrower than its storage, the
    /// bit width; that is how BTF without kind_flag marks bitfields.
    fn int_bitfield_bits(&self, id: u32) -> Option<u32> {
        let t = self.get(id)?;
        if t.kind() != KIND_INT {
            return None;
        }
        let encoding = self.read_u32(t.extra)?;
        let bits = encoding & 0xff;
        let offset = (encoding >> 16) & 0xff;
        let storage_bits = t.size_or_type.checked_mul(8)?;
        (offset != 0 || bits != storage_bits).then_some(bits)
    }

    /// Byte size of a type, following typedefs and qualifiers. Arrays are
    /// unwound in the same loop (as a running element count) so corrupt
    /// input cannot make this recurse or spin.
    fn type_size(&self, mut id: u32) -> Option<u32> {
        let mut count: u32 = 1;
        for _ in 0..MAX_RESOLVE_DEPTH {
            let t = self.get(id)?;
            match t.kind() {
                KIND_INT | KIND_STRUCT | KIND_UNION | KIND_ENUM | KIND_ENUM64 | KIND_FLOAT
                | KIND_DATASEC => return t.size_or_type.checked_mul(count),
                KIND_PTR => return POINTER_SIZE.checked_mul(count),
                KIND_ARRAY => {
                    count = count.checked_mul(self.read_u32(t.extra + 8)?)?;
                    id = self.read_u32(t.extra)?;
                }
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG
                | KIND_VAR => id = t.size_or_type,
                _ => return None,
            }
        }
        None
    }

    fn get(&self, id: u32) -> Option<RawType> {
        let index = (id as usize).checked_sub(1)?;
        self.types.get(index).copied()
    }

    fn name(&self, offset: u32) -> &str {
        let start = self.strs_start + offset as usize;
        let end = self.strs_start + self.strs_len;
        let Some(bytes) = self.data.get(start..end) else {
            return "";
        };
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        std::str::from_utf8(&bytes[..len]).unwrap_or("")
    }

    fn read_u32(&self, off: usize) -> Option<u32> {
        read_u32(&self.data, off, self.big_endian)
    }

    /// Only for offsets already bounds-checked by the caller.
    fn u32_at(&self, off: usize) -> u32 {
        self.read_u32(off).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds BTF blobs by hand so every kind can be exercised, including
    /// ones no C compiler here emits (ENUM64, TYPE_TAG, ...).
    struct Builder {
        big_endian: bool,
        types: Vec<u8>,
        strs: Vec<u8>,
        next_id: u32,
    }

    impl Builder {
        fn new(big_endian: bool) -> Self {
            Builder {
                big_endian,
                types: Vec::new(),
                strs: vec![0],
                next_id: 1,
            }
        }

        fn s(&mut self, name: &str) -> u32 {
            if name.is_empty() {
                return 0;
            }
            let off = self.strs.len() as u32;
            self.strs.extend_from_slice(name.as_bytes());
            self.strs.push(0);
            off
        }

        fn w(&mut self, v: u32) {
            let b = if self.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            self.types.extend_from_slice(&b);
        }

        /// Appends a type header; returns its id.
        fn ty(&mut self, name: &str, kind: u32, kflag: bool, vlen: u32, size_or_type: u32) -> u32 {
            let name = self.s(name);
            self.w(name);
            self.w((u32::from(kflag) << 31) | (kind << 24) | vlen);
            self.w(size_or_type);
            self.next_id += 1;
            self.next_id - 1
        }

        fn int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
            let id = self.ty(name, KIND_INT, false, 0, size);
            self.w((u32::from(signed) << 24) | (size * 8));
            id
        }

        fn finish(self) -> Vec<u8> {
            let mut out = Vec::new();
            let mut w = |v: u32| {
                out.extend_from_slice(&if self.big_endian {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                })
            };
            let magic: u16 = MAGIC;
            let magic = if self.big_endian {
                magic.to_be_bytes()
            } else {
                magic.to_le_bytes()
            };
            w(0); // placeholder for magic/version/flags
            w(HEADER_LEN as u32);
            w(0);
            w(self.types.len() as u32);
            w(self.types.len() as u32);
            w(self.strs.len() as u32);
            out[0..2].copy_from_slice(&magic);
            out[2] = 1;
            out[3] = 0;
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strs);
            out
        }
    }

    /// One of every kind, with the struct under test defined last so a
    /// mis-sized skip of any earlier kind would derail its parse.
    fn sample(big_endian: bool) -> Vec<u8> {
        let mut b = Builder::new(big_endian);
        let u8_t = b.int("u8", 1, false); // 1
        let u32_t = b.int("u32", 4, false); // 2
        let u64_t = b.int("u64", 8, false); // 3
        let ptr = b.ty("", KIND_PTR, false, 0, u8_t); // 4
        let arr = b.ty("", KIND_ARRAY, false, 0, 0); // 5: u8[16]
        b.w(u8_t);
        b.w(u32_t);
        b.w(16);
        let e = b.ty("color", KIND_ENUM, true, 2, 4); // 6: signed
        let red = b.s("RED");
        b.w(red);
        b.w(-1i32 as u32);
        let blue = b.s("BLUE");
        b.w(blue);
        b.w(7);
        b.ty("fwd_thing", KIND_FWD, false, 0, 0); // 7
        let td = b.ty("u64_t", KIND_TYPEDEF, false, 0, u64_t); // 8
        let vol = b.ty("", KIND_VOLATILE, false, 0, td); // 9
        let cst = b.ty("", KIND_CONST, false, 0, vol); // 10
        b.ty("", KIND_RESTRICT, false, 0, ptr); // 11
        let proto = b.ty("", KIND_FUNC_PROTO, false, 2, u32_t); // 12
        let a = b.s("a");
        b.w(a);
        b.w(u32_t);
        let bb = b.s("b");
        b.w(bb);
        b.w(ptr);
        b.ty("my_func", KIND_FUNC, false, 0, proto); // 13
        let var = b.ty("my_var", KIND_VAR, false, 0, u32_t); // 14
        b.w(1);
        b.ty(".data", KIND_DATASEC, false, 1, 4); // 15
        b.w(var);
        b.w(0);
        b.w(4);
        let flt = b.ty("double", KIND_FLOAT, false, 0, 8); // 16
        b.ty("tag", KIND_DECL_TAG, false, 0, var); // 17
        b.w(u32::MAX); // component_idx -1
        let tt = b.ty("user", KIND_TYPE_TAG, false, 0, u8_t); // 18
        let e64 = b.ty("big", KIND_ENUM64, false, 2, 8); // 19: unsigned
        let huge = b.s("HUGE");
        b.w(huge);
        b.w(0x0000_0001);
        b.w(0x0000_0002);
        let max = b.s("MAX");
        b.w(max);
        b.w(u32::MAX);
        b.w(u32::MAX);
        let un = b.ty("un", KIND_UNION, false, 2, 8); // 20
        for (n, t) in [("x", u32_t), ("y", u64_t)] {
            let n = b.s(n);
            b.w(n);
            b.w(t);
            b.w(0);
        }
        let tagged_ptr = b.ty("", KIND_PTR, false, 0, tt); // 21
        let two_d = b.ty("", KIND_ARRAY, false, 0, 0); // 22: u8[2][16]
        b.w(arr);
        b.w(u32_t);
        b.w(2);
        let members: [(&str, u32, u32); 10] = [
            ("ts", cst, 0),
            ("color", e, 64),
            ("addr", arr, 96),
            ("p", tagged_ptr, 128),
            ("f", flt, 192),
            ("un", un, 256),
            ("flags", u8_t, (3 << 24) | 320), // 3-bit bitfield
            ("big", e64, 384),
            ("grid", two_d, 448),
            ("", un, 704),
        ];
        b.ty("rec", KIND_STRUCT, true, members.len() as u32, 96); // 23
        for (n, t, off) in members {
            let n = b.s(n);
            b.w(n);
            b.w(t);
            b.w(off);
        }
        b.finish()
    }

    fn check_sample(btf: &Btf) {
        assert_eq!(btf.type_count(), 23);
        let rec = btf.struct_layout("rec").expect("struct rec");
        assert_eq!(rec.size, 96);
        let got: Vec<(&str, u32, Option<u32>)> = rec
            .members
            .iter()
            .map(|m| (m.name.as_str(), m.offset_bytes, m.size_bytes))
            .collect();
        assert_eq!(
            got,
            [
                ("ts", 0, Some(8)),
                ("color", 8, Some(4)),
                ("addr", 12, Some(16)),
                ("p", 16, Some(8)),
                ("f", 24, Some(8)),
                ("un", 32, Some(8)),
                ("flags", 40, None),
                ("big", 48, Some(8)),
                ("grid", 56, Some(32)),
                ("", 88, Some(8)),
            ]
        );
        assert_eq!(rec.member("flags").unwrap().bitfield_bits, Some(3));
        assert_eq!(btf.struct_layout("un").unwrap().size, 8);
        assert_eq!(
            btf.enum_variants("color").unwrap(),
            [("RED".to_owned(), -1), ("BLUE".to_owned(), 7)]
        );
        assert_eq!(
            btf.enum_variants("big").unwrap(),
            [("HUGE".to_owned(), 0x2_0000_0001), ("MAX".to_owned(), -1)]
        );
        assert_eq!(btf.enum_value("color", "BLUE"), Some(7));
        assert_eq!(btf.enum_value("color", "GREEN"), None);
        for name in [
            "my_func",
            "my_var",
            ".data",
            "double",
            "tag",
            "user",
            "fwd_thing",
            "u64_t",
        ] {
            assert!(btf.has_type(name), "{name}");
        }
        assert!(!btf.has_type("nope"));
        assert!(!btf.has_type(""));
        assert!(btf.struct_layout("color").is_none());
        assert!(btf.enum_variants("rec").is_none());
    }

    #[test]
    fn every_kind_is_skipped_correctly() {
        check_sample(&Btf::from_bytes(&sample(false)).unwrap());
    }

    #[test]
    fn big_endian_blob() {
        check_sample(&Btf::from_bytes(&sample(true)).unwrap());
    }

    #[test]
    fn old_style_int_bitfield() {
        let mut b = Builder::new(false);
        let u32_t = b.int("u32", 4, false);
        let bits = b.ty("", KIND_INT, false, 0, 4); // 5-bit int at offset 0
        b.w(5);
        b.ty("s", KIND_STRUCT, false, 2, 8);
        for (n, t, off) in [("a", bits, 0), ("b", u32_t, 32)] {
            let n = b.s(n);
            b.w(n);
            b.w(t);
            b.w(off);
        }
        let btf = Btf::from_bytes(&b.finish()).unwrap();
        let s = btf.struct_layout("s").unwrap();
        assert_eq!(s.members[0].bitfield_bits, Some(5));
        assert_eq!(s.members[0].size_bytes, None);
        assert_eq!(s.members[1].size_bytes, Some(4));
        assert_eq!(s.members[1].offset_bytes, 4);
    }

    #[test]
    fn reference_cycles_terminate() {
        let mut b = Builder::new(false);
        b.ty("loop_a", KIND_TYPEDEF, false, 0, 2); // 1 -> 2
        b.ty("loop_b", KIND_CONST, false, 0, 1); // 2 -> 1
        let arr = b.ty("", KIND_ARRAY, false, 0, 0); // 3: array of itself
        b.w(3);
        b.w(1);
        b.w(4);
        b.ty("s", KIND_STRUCT, false, 3, 8);
        for (n, t) in [("a", 1), ("b", arr), ("c", 999)] {
            let n = b.s(n);
            b.w(n);
            b.w(t);
            b.w(0);
        }
        let btf = Btf::from_bytes(&b.finish()).unwrap();
        let s = btf.struct_layout("s").unwrap();
        assert!(s.members.iter().all(|m| m.size_bytes.is_none()));
    }

    #[test]
    fn header_errors() {
        assert!(matches!(
            Btf::from_bytes(&[]),
            Err(BtfError::TooShort { len: 0, .. })
        ));
        let good = sample(false);
        let mut bad = good.clone();
        bad[0] = 0;
        assert!(matches!(
            Btf::from_bytes(&bad),
            Err(BtfError::BadMagic { .. })
        ));
        let mut bad = good.clone();
        bad[2] = 2;
        assert!(matches!(
            Btf::from_bytes(&bad),
            Err(BtfError::UnsupportedVersion { version: 2 })
        ));
        let mut bad = good.clone();
        bad[4..8].copy_from_slice(&8u32.to_le_bytes());
        assert!(matches!(
            Btf::from_bytes(&bad),
            Err(BtfError::BadHeaderLength { hdr_len: 8, .. })
        ));
        let mut bad = good.clone();
        bad[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = Btf::from_bytes(&bad).unwrap_err();
        assert!(matches!(
            err,
            BtfError::SectionOutOfBounds {
                section: "string",
                ..
            }
        ));
        assert!(err.to_string().contains("string section"), "{err}");
        let mut bad = good.clone();
        // First type's kind byte (info is the second word of the type).
        bad[HEADER_LEN + 7] = 31;
        assert!(matches!(
            Btf::from_bytes(&bad),
            Err(BtfError::UnknownKind { id: 1, kind: 31 })
        ));
        let mut bad = good.clone();
        bad[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
        assert!(matches!(
            Btf::from_bytes(&bad),
            Err(BtfError::BadNameOffset { id: 1, .. })
        ));
    }

    #[test]
    fn type_section_cut_mid_record() {
        let good = sample(false);
        let type_len = u32::from_le_bytes(good[12..16].try_into().unwrap());
        let mut errors = 0;
        for cut in 0..type_len {
            let mut blob = good.clone();
            blob[12..16].copy_from_slice(&cut.to_le_bytes());
            match Btf::from_bytes(&blob) {
                // A cut on a record boundary leaves fewer, complete types.
                Ok(btf) => query_all(&btf),
                Err(BtfError::TruncatedType { .. }) => errors += 1,
                Err(e) => panic!("cut {cut}: unexpected {e}"),
            }
        }
        assert!(
            errors > type_len / 2,
            "{errors} of {type_len} cuts rejected"
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let good = sample(false);
        for len in 0..good.len() {
            assert!(Btf::from_bytes(&good[..len]).is_err(), "len {len}");
        }
    }

    /// Exercises every query on whatever parsed, to prove none can panic.
    fn query_all(btf: &Btf) {
        for name in ["rec", "un", "color", "big", "u64_t", "s", ""] {
            let _ = btf.struct_layout(name);
            let _ = btf.enum_variants(name);
            let _ = btf.has_type(name);
        }
        for t in &btf.types {
            let name = btf.name(t.name_off).to_owned();
            let _ = btf.struct_layout(&name);
            let _ = btf.enum_variants(&name);
        }
    }

    #[test]
    fn random_corruption_never_panics() {
        let good = sample(false);
        // Deterministic xorshift: reproducible failures, no rand dependency.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut parsed = 0;
        for _ in 0..20_000 {
            let mut blob = good.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % blob.len() as u64) as usize;
                blob[at] = next() as u8;
            }
            if let Ok(btf) = Btf::from_bytes(&blob) {
                parsed += 1;
                query_all(&btf);
            }
        }
        // Most single-byte flips land in names or sizes and still parse.
        assert!(parsed > 1000, "only {parsed} corrupted blobs parsed");
    }

    #[test]
    fn object_errors() {
        assert!(matches!(
            Btf::from_object(b"not an elf"),
            Err(BtfError::Elf(_))
        ));
        let err = Btf::from_file("/nonexistent/btf").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/btf"), "{err}");
    }

    #[test]
    fn vmlinux_has_drop_reasons() {
        if std::env::var_os("HUATUO_SKIP_BPF_TESTS").is_some_and(|v| v == "1") {
            eprintln!("HUATUO_SKIP_BPF_TESTS=1: skipping vmlinux BTF test");
            return;
        }
        let btf = Btf::from_sys_fs().expect("this host exposes /sys/kernel/btf/vmlinux");
        assert!(btf.type_count() > 10_000);
        let reasons = btf
            .enum_variants("skb_drop_reason")
            .expect("enum skb_drop_reason");
        let no_socket = reasons
            .iter()
            .find(|(n, _)| n == "SKB_DROP_REASON_NO_SOCKET")
            .expect("SKB_DROP_REASON_NO_SOCKET");
        assert!(no_socket.1 > 0);
        assert!(btf.has_type("sk_buff"));
        let skb = btf.struct_layout("sk_buff").expect("struct sk_buff");
        assert!(skb.size >= 200, "sk_buff is {} bytes", skb.size);
        assert_eq!(skb.member("len").and_then(|m| m.size_bytes), Some(4));
        assert_eq!(skb.member("head").and_then(|m| m.size_bytes), Some(8));
        let cloned = skb.member("cloned").expect("sk_buff.cloned");
        assert_eq!((cloned.bitfield_bits, cloned.size_bytes), (Some(1), None));
        // Truncations of a real blob: cheap prefixes, then a sparse sample
        // through the rest (each parse of a full vmlinux takes milliseconds).
        let raw = std::fs::read(VMLINUX_BTF_PATH).unwrap();
        for len in (0..256).chain((256..raw.len()).step_by(raw.len() / 50)) {
            assert!(Btf::from_bytes(&raw[..len]).is_err(), "len {len}");
        }
    }
}
