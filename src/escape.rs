//! Output that cannot be forged: location URLs, pool, image and snapshot
//! names, ids, metadata and zone names come from users, and an
//! explanation or a log line that printed them raw could be made to show
//! a line that is not there (`\n`, `\r`), to rewrite the terminal (ESC
//! sequences) or to read backwards (bidi overrides). Everything the crate
//! renders for people goes through [`Escaper`] or [`Escaped`].

use std::fmt;

/// Whether `c` is shown escaped: C0 and C1 controls and DEL, the Unicode
/// line and paragraph separators (line breaks to some readers), and the
/// bidirectional formatting characters (which reorder what follows them).
pub(crate) fn needs_escape(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// Writes `s` with every character [`needs_escape`] spelled as Rust does:
/// `\n`, `\r`, `\t`, or `\u{1b}`. Other characters, backslashes included,
/// are written as they are, so escaping what is already escaped changes
/// nothing (nested renderings may each escape).
fn write_escaped<W: fmt::Write + ?Sized>(out: &mut W, s: &str) -> fmt::Result {
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if !needs_escape(c) {
            continue;
        }
        out.write_str(&s[start..i])?;
        match c {
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            _ => write!(out, "\\u{{{:x}}}", u32::from(c))?,
        }
        start = i + c.len_utf8();
    }
    out.write_str(&s[start..])
}

/// A writer that escapes everything written through it (see
/// [`needs_escape`]). A `Display` impl of a one-line rendering starts with
/// `let f = &mut Escaper::new(f);` and writes as before.
pub(crate) struct Escaper<'a, W: fmt::Write + ?Sized> {
    out: &'a mut W,
}

impl<'a, W: fmt::Write + ?Sized> Escaper<'a, W> {
    pub(crate) fn new(out: &'a mut W) -> Self {
        Self { out }
    }

    /// As [`fmt::Write::write_str`], so `Display` bodies need no import.
    pub(crate) fn write_str(&mut self, s: &str) -> fmt::Result {
        write_escaped(self.out, s)
    }

    /// As [`fmt::Write::write_fmt`], for `write!`.
    pub(crate) fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> fmt::Result {
        fmt::write(self, args)
    }
}

impl<W: fmt::Write + ?Sized> fmt::Write for Escaper<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_escaped(self.out, s)
    }
}

/// Shows a value's `Display` with the characters that could fake a line
/// or a terminal sequence escaped: C0 and C1 controls (`\n`, `\r`, ESC,
/// ...), DEL, U+2028/U+2029 and the bidirectional overrides and isolates.
/// The crate's explanations ([`render_plan`](crate::explain::render_plan),
/// the trace, steps and zone explanations) already escape what they
/// show; use this for your own log lines and error messages that hold
/// user data.
///
/// ```
/// use cinder_flow::explain::Escaped;
///
/// let url = "rbd://fsid/pool/img/snap\n[driver clone] location #2: chosen";
/// assert_eq!(
///     Escaped(url).to_string(),
///     "rbd://fsid/pool/img/snap\\n[driver clone] location #2: chosen"
/// );
/// assert_eq!(Escaped("\u{1b}[31mred\u{202e}").to_string(), "\\u{1b}[31mred\\u{202e}");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Escaped<T>(pub T);

impl<T: fmt::Display> fmt::Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.width().is_some() || f.precision().is_some() {
            // Padding applies to the escaped text as a whole.
            let mut text = String::new();
            fmt::write(&mut Escaper::new(&mut text), format_args!("{}", self.0))?;
            return f.pad(&text);
        }
        fmt::write(&mut Escaper::new(f), format_args!("{}", self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_what_could_forge_a_line() {
        assert_eq!(Escaped("a\nb\rc\td").to_string(), "a\\nb\\rc\\td");
        assert_eq!(Escaped("\u{1b}[2J\u{7f}\u{85}\u{9b}").to_string(), "\\u{1b}[2J\\u{7f}\\u{85}\\u{9b}");
        assert_eq!(Escaped("x\u{2028}y\u{202e}z\u{2066}").to_string(), "x\\u{2028}y\\u{202e}z\\u{2066}");
        // Printable text, including non-ASCII and backslashes, is as it was.
        assert_eq!(Escaped("pool/é\\n ok").to_string(), "pool/é\\n ok");
        assert_eq!(format!("[{:>6}]", Escaped("\n")), "[    \\n]");
    }

    proptest! {
        // CI raises the case count with CINDER_FLOW_CASES.
        #![proptest_config(ProptestConfig {
            cases: std::env::var("CINDER_FLOW_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(0).max(256),
            ..ProptestConfig::default()
        })]

        #[test]
        fn escaped_text_has_no_character_that_needs_escaping(s in any::<String>()) {
            let once = Escaped(&s).to_string();
            prop_assert!(!once.chars().any(needs_escape));
            // Idempotent, so nested renderings may each escape.
            prop_assert_eq!(Escaped(&once).to_string(), once.clone());
            // Nothing else changes: without the escapes, the text is back.
            if !s.chars().any(needs_escape) {
                prop_assert_eq!(once, s);
            }
        }
    }
}
