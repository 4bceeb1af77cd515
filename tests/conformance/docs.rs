//! Renders the table into `docs/security.md`, between two marker lines, so that the document
//! cannot drift from the suite: `docs_table_is_current` fails when it is stale, and
//! `AEGIS_BLESS=1 cargo test --profile ci --test conformance docs_table` rewrites it.

use crate::table::{Case, Send};

const BEGIN: &str = "<!-- conformance table: generated from tests/conformance by `AEGIS_BLESS=1 cargo test --profile ci --test conformance docs_table`; do not edit -->";
const END: &str = "<!-- end of conformance table -->";
/// Longest request shown in a cell.
const SHOWN: usize = 90;

pub fn check_or_bless() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/security.md");
    let doc = std::fs::read_to_string(&path).expect("docs/security.md");
    let (Some(start), Some(end)) = (doc.find(BEGIN), doc.find(END)) else {
        panic!("docs/security.md has no conformance table markers");
    };
    let current = &doc[start..end + END.len()];
    let fresh = render(&crate::all_cases());
    if current == fresh {
        return;
    }
    if std::env::var_os("AEGIS_BLESS").is_some() {
        let updated = format!("{}{fresh}{}", &doc[..start], &doc[end + END.len()..]);
        std::fs::write(&path, updated).expect("write docs/security.md");
        return;
    }
    panic!(
        "the conformance table in docs/security.md is stale; regenerate it with \
         `AEGIS_BLESS=1 cargo test --profile ci --test conformance docs_table`"
    );
}

/// The table between its markers.
pub fn render(cases: &[&Case]) -> String {
    let mut out = format!(
        "{BEGIN}\n\n{} cases.\n\n| case | what | sent | outcome | follows | note |\n|---|---|---|---|---|---|\n",
        cases.len()
    );
    for case in cases {
        let outcome: Vec<String> = case.expect.iter().map(|o| o.describe()).collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            case.id,
            cell(case.what),
            sent(&case.send),
            cell(&outcome.join(", then ")),
            case.rfc,
            cell(case.note)
        ));
    }
    out.push('\n');
    out.push_str(END);
    out
}

/// What was sent, escaped and cut to fit a cell.
fn sent(send: &Send) -> String {
    let text = match send {
        Send::H1(bytes) => bytes.escape_ascii().to_string(),
        Send::H1Eof(bytes) => format!("{} (then EOF)", bytes.escape_ascii()),
        Send::H1Continue(head, body) => {
            format!(
                "{} (after 100: {})",
                head.escape_ascii(),
                body.escape_ascii()
            )
        }
        Send::H1Built(_) | Send::H2Built(_) => return "(built, see the case)".into(),
        Send::H2(fields, body) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|(n, v)| format!("{}={}", n.escape_ascii(), v.escape_ascii()))
                .collect();
            let data = if body.is_empty() {
                String::new()
            } else {
                format!(" +DATA({})", body.len())
            };
            format!("h2 {}{data}", fields.join(" "))
        }
    };
    let shown: String = text.chars().take(SHOWN).collect();
    let more = if shown.len() < text.len() { "…" } else { "" };
    format!("`{}`{more}", shown.replace('`', "'").replace('|', "\\|"))
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}
