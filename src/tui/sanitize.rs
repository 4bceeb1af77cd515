//! Control-character stripping for every string the dashboard displays.
//!
//! Backend URLs, event messages, adaptive-loop reasons, the version and the listen address all
//! come from the snapshot, and with `aegis dashboard --admin ADDR` the snapshot comes over the
//! network from whatever answers on that address. None of it may reach the terminal raw.

/// What a control character is replaced with: visible, one column wide, and clearly "something
/// was here".
const REPLACEMENT: char = '\u{FFFD}';

/// Returns `text` with every control character replaced, ready to be drawn.
///
/// - tab, line feed and carriage return become a space, so a multi-line message stays readable on
///   its one row;
/// - every other C0 control (including ESC and BEL), DEL and every C1 control (U+0080–U+009F,
///   which some terminals treat as 8-bit CSI/OSC introducers) becomes U+FFFD;
/// - Unicode bidirectional overrides and isolates, and the line/paragraph separators, become
///   U+FFFD too.
pub fn clean(text: &str) -> String {
    // SECURITY: a backend name, an event message or a `/status` answer from a hostile or
    // compromised instance could otherwise carry ANSI/OSC escape sequences (recolour or clear the
    // screen, set the window title, write to the clipboard with OSC 52, hide text) or bidi
    // overrides that make the operator read something other than what is there
    // ("Trojan Source"). Nothing from the snapshot is drawn without passing through here.
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => ' ',
            c if c.is_control() || is_bidi_or_separator(c) => REPLACEMENT,
            c => c,
        })
        .collect()
}

/// Format characters that reorder or break the displayed text without being `Cc` controls.
fn is_bidi_or_separator(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' // Arabic letter mark
            | '\u{200E}' | '\u{200F}' // left-to-right / right-to-left marks
            | '\u{202A}'..='\u{202E}' // embeddings and overrides
            | '\u{2066}'..='\u{2069}' // isolates
            | '\u{2028}' | '\u{2029}' // line and paragraph separators
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_replaces_every_control_character() {
        let cases = [
            ("plain http://a:80", "plain http://a:80"),
            ("\x1b[31mEVIL", "\u{FFFD}[31mEVIL"),
            ("title\x1b]0;x\x07", "title\u{FFFD}]0;x\u{FFFD}"),
            ("del\x7f", "del\u{FFFD}"),
            ("c1\u{0085}\u{009b}2J", "c1\u{FFFD}\u{FFFD}2J"),
            ("nul\0", "nul\u{FFFD}"),
            ("two\nlines\r\tok", "two lines  ok"),
            ("rtl\u{202E}gpj.exe", "rtl\u{FFFD}gpj.exe"),
            ("isolate\u{2066}x\u{2069}", "isolate\u{FFFD}x\u{FFFD}"),
            ("ünïcödé ✓ 日本", "ünïcödé ✓ 日本"),
        ];
        for (input, expected) in cases {
            assert_eq!(clean(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn cleaned_text_has_no_control_characters_at_all() {
        let every_char: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let cleaned = clean(&every_char);
        assert!(!cleaned.chars().any(|c| c.is_control()));
        assert!(!cleaned.chars().any(is_bidi_or_separator));
    }
}
