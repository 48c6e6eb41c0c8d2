/// Declares name constants and the module's `NAMES` registry slice from one list, so a constant
/// can never exist without its registry entry.
macro_rules! names {
    ($( $(#[doc = $doc:literal])+ $kind:ident $ident:ident = $name:literal, $shape:literal; )*) => {
        $( $(#[doc = $doc])+ pub const $ident: &str = $name; )*
        /// Every name this module registers.
        pub const NAMES: &[$crate::Name] = &[
            $( $crate::Name {
                name: $name,
                kind: $crate::Kind::$kind,
                shape: $shape,
                brief: concat!($($doc),+),
            }, )*
        ];
    };
}
