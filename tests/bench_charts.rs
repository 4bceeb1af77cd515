//! The load bench's charts (SPEC §16): `benches/load/charts.py` passes its own self-check, and a
//! results file in run.sh's format becomes SVG charts with one bar per system and series, each
//! system named. The script needs only python3 (Debian's `python3`), which CI machines have.

mod common;

use common::scratch_dir;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SYSTEMS: [&str; 4] = ["aegis", "bare", "nginx", "haproxy"];

/// Runs charts.py with `args` and insists that it succeeded.
fn charts(args: &[&str]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/load/charts.py");
    let output = Command::new("python3")
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "python3 could not be started to run {} ({error}); \
                 the bench chart tests need it: apt-get install python3",
                script.display()
            )
        });
    assert!(
        output.status.success(),
        "charts.py {args:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Three rounds of run.sh's per-round results for `SYSTEMS`: round, system, req/s, p50 µs,
/// p99 µs, CPU µs per request, RSS KiB, kernel %.
fn run_results(dir: &Path) -> PathBuf {
    let mut lines = Vec::new();
    for round in 1..=3_usize {
        for (index, system) in SYSTEMS.iter().enumerate() {
            let rps = 30_000 + 5_000 * index + round;
            let p50 = 900 - 100 * index + round;
            let p99 = 2 * p50;
            let cpu = 60 - 10 * index;
            lines.push(format!(
                "{round}\t{system}\t{rps}\t{p50}\t{p99}\t{cpu}.40\t16000\t44\n"
            ));
        }
    }
    let path = dir.join("run.tsv");
    std::fs::write(&path, lines.concat()).expect("write the results file");
    path
}

#[test]
fn chart_script_passes_its_self_check() {
    let output = charts(&["selftest"]);
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("selftest: ok"), "{said}");
}

#[test]
fn run_results_become_a_bar_per_system_and_series() {
    let dir = scratch_dir();
    let results = run_results(&dir);
    let out = dir.join("perf");
    charts(&[
        "run",
        results.to_str().expect("a UTF-8 scratch path"),
        "--out",
        out.to_str().expect("a UTF-8 scratch path"),
        "--date",
        "2026-12-07",
    ]);

    for (file, series) in [("cpu-per-request.svg", 1), ("latency.svg", 2)] {
        let svg = std::fs::read_to_string(out.join(file))
            .unwrap_or_else(|error| panic!("charts.py wrote no {file}: {error}"));
        assert!(
            svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"),
            "{file} is not one <svg> element:\n{svg}"
        );
        for tag in ["text", "title"] {
            assert_eq!(
                svg.matches(&format!("<{tag}")).count(),
                svg.matches(&format!("</{tag}>")).count(),
                "{file}: unbalanced <{tag}>"
            );
        }
        assert_eq!(
            svg.matches("<rect class=\"bar\"").count(),
            SYSTEMS.len() * series,
            "{file}: one bar per system and series"
        );
        for system in SYSTEMS {
            assert_eq!(
                svg.matches(&format!("data-system=\"{system}\"")).count(),
                series,
                "{file}: {system}'s bars"
            );
            assert!(
                svg.contains(&format!(">{system}</text>")),
                "{file}: {system} is not named"
            );
        }
        assert!(
            svg.contains("2026-12-07, medians of 3 rounds"),
            "{file}: the caption gives the date and the round count"
        );
    }
    // The printed values are the medians: Aegis's CPU per request is 60.40 in every round, its
    // p50 901, 902 and 903 µs.
    let cpu = std::fs::read_to_string(out.join("cpu-per-request.svg")).expect("read back");
    assert!(cpu.contains("class=\"value\">60.4</text>"), "{cpu}");
    let latency = std::fs::read_to_string(out.join("latency.svg")).expect("read back");
    assert!(latency.contains("class=\"value\">902</text>"), "{latency}");
}
