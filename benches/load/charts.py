#!/usr/bin/env python3
"""Draws the load benchmarks' results as SVG charts for docs/perf/ (SPEC §16).

  charts.py run FILE.tsv [--out DIR] [--date YYYY-MM-DD]
      run.sh's per-round results -> cpu-per-request.svg, latency.svg
  charts.py fixed FILE.tsv --rate N [--out DIR] [--date YYYY-MM-DD]
      fixed_rate.sh's per-round results -> fixed-load.svg
  charts.py selftest
      renders sample data and checks the charts; exit status 1 on a failed check

Both result files are tab-separated, one line per round and system, with no header:

  run.sh (RESULTS_OUT=FILE):        round, system, req/s, p50 µs, p99 µs, proxy CPU µs per
                                    request, RSS KiB after the round, kernel share of that CPU %
  fixed_rate.sh (RESULTS_OUT=FILE): round, system, achieved req/s, p50 µs, p99 µs, p99.9 µs,
                                    answers not 2xx, proxy CPU µs per request

Each bar is the median over the rounds (the mean of the middle two for an even count, as the
scripts' own tables), with a whisker from the lowest to the highest round, so that a reader sees
how much the rounds agreed. Systems appear in the order of the file, which is the order the script
drove them. The date printed is --date, else the day the results file was last written (UTC):
the same file always gives the same bytes, so a regenerated chart only changes when its data does.

Standard library only: Debian's plain python3 runs it, and the SVG is written by hand for
GitHub's markdown renderer (fixed size and viewBox, white background, system fonts, no scripts
and nothing fetched).
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import sys
from statistics import median
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Union
from xml.sax.saxutils import escape

RUN_COLUMNS = ("round", "system", "rps", "p50_us", "p99_us", "cpu_us", "rss_kib", "kernel_pct")
FIXED_COLUMNS = ("round", "system", "rps", "p50_us", "p99_us", "p999_us", "non2xx", "cpu_us")
DEFAULT_OUT = Path(__file__).resolve().parent.parent.parent / "docs" / "perf"

WIDTH = 760
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
# Light to dark: the higher the percentile, the darker its bar; even the darkest light enough for
# the whisker drawn over it to show.
SERIES_COLOURS = ("#a9cbee", "#5f9ad6", "#2f6bad")
WHISKER = "#1a1a1a"
LABEL_LEFT = 140  # room for the system names
LABEL_RIGHT = 80  # room for the value printed after the longest bar
BAR_HEIGHT = 16
BAR_GAP = 3
BAND_PADDING = 14


class ResultsError(Exception):
    """A results file that cannot be read; the message names the file and line."""


# typing.Union rather than `float | str`: an alias is evaluated at import, and Debian's older
# python3 (3.9) has no `|` between types.
Rows = list[dict[str, Union[float, str]]]


def read_results(path: Path, columns: tuple[str, ...]) -> Rows:
    """Every line of a per-round results file, as column name -> value (the system a string)."""
    rows: Rows = []
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            rows.append(parse_line(line, columns, f"{path}: line {number}"))
    if not rows:
        raise ResultsError(f"{path}: no results")
    return rows


def parse_line(line: str, columns: tuple[str, ...], where: str) -> dict[str, float | str]:
    fields = line.split("\t")
    if len(fields) != len(columns):
        raise ResultsError(
            f"{where}: {len(fields)} tab-separated fields, expected {len(columns)} "
            f"({', '.join(columns)}): {line!r}"
        )
    row: dict[str, float | str] = {}
    for name, field in zip(columns, fields):
        if name == "system":
            if not field:
                raise ResultsError(f"{where}: empty system name")
            row[name] = field
            continue
        try:
            value = float(field)
        except ValueError:
            raise ResultsError(f"{where}: {name} is not a number: {field!r}") from None
        # A nan (median of nothing) or inf would draw a bar of no meaning.
        if not math.isfinite(value) or value < 0:
            raise ResultsError(f"{where}: {name} is not a finite non-negative number: {field!r}")
        row[name] = value
    return row


def systems_of(rows: Rows) -> list[str]:
    return list(dict.fromkeys(str(row["system"]) for row in rows))


def rounds_of(rows: Rows) -> int:
    return len({row["round"] for row in rows})


def per_system(rows: Rows, column: str) -> dict[str, list[float]]:
    values: dict[str, list[float]] = {system: [] for system in systems_of(rows)}
    for row in rows:
        values[str(row["system"])].append(float(row[column]))
    return values


def format_value(value: float) -> str:
    """Three significant figures at most, as the scripts' tables print them."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


@dataclass
class Series:
    """One bar per system: a percentile, or the CPU per request."""

    name: str
    values: dict[str, list[float]]  # system -> one value per round


@dataclass
class Chart:
    title: str
    caption: str
    axis: str
    systems: list[str]
    series: list[Series]
    log_scale: bool = False


# --- Scales ------------------------------------------------------------------------------------


def linear_ticks(high: float) -> list[float]:
    """0 up to a round number at or above `high`, in 4 to 10 steps of 1, 2 or 5 × 10^k."""
    if high <= 0:
        return [0.0, 1.0]
    magnitude = 10 ** math.floor(math.log10(high))
    for step in (magnitude / 10 * s for s in (1, 2, 5, 10, 20, 50)):
        count = math.ceil(high / step - 1e-9)
        if count <= 10:
            return [step * i for i in range(count + 1)]
    raise AssertionError("a step of 5 × 10^k always gives at most 10 ticks")


def log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 steps from the last at or below `low` to the first at or above `high`; whole decades
    only when more than three decades show. Ending at the next step rather than the next decade
    keeps the bars from being squeezed into the left part of the chart."""
    first = math.floor(math.log10(low))
    last = math.ceil(math.log10(high))
    steps = (1, 2, 5) if last - first <= 3 else (1,)
    candidates = [m * 10**e for e in range(first, last + 1) for m in steps]
    start = max(c for c in candidates if c <= low * (1 + 1e-9))
    end = min(c for c in candidates if c >= high * (1 - 1e-9))
    if end <= start:
        # Every value the same: one step above it, so the bars have a length to be drawn with.
        end = min(c for c in candidates + [10 ** (last + 1)] if c > start)
    return [c for c in candidates + [10 ** (last + 1)] if start <= c <= end]


@dataclass
class Scale:
    ticks: list[float]
    log: bool
    left: float
    right: float

    def x(self, value: float) -> float:
        low, high = self.ticks[0], self.ticks[-1]
        if self.log:
            value, low, high = (math.log10(max(v, 1e-9)) for v in (value, low, high))
        return self.left + (value - low) / (high - low) * (self.right - self.left)


def format_tick(value: float) -> str:
    if value >= 1:
        return f"{value:,.0f}"
    return f"{value:g}"


# --- SVG ---------------------------------------------------------------------------------------


def number(value: float) -> str:
    """Coordinates with one decimal: enough for a screen, and the same bytes for the same data."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def text(x: float, y: float, content: str, **attributes: str) -> str:
    """A <text>; `font_size="12"` is written font-size, `class_` is class."""
    extra = "".join(
        f' {key.rstrip("_").replace("_", "-")}="{escape(value)}"'
        for key, value in attributes.items()
    )
    return f'<text x="{number(x)}" y="{number(y)}"{extra}>{escape(content)}</text>'


def line(x1: float, y1: float, x2: float, y2: float, colour: str) -> str:
    return (
        f'<line x1="{number(x1)}" y1="{number(y1)}" x2="{number(x2)}" y2="{number(y2)}" '
        f'stroke="{colour}" stroke-width="1"/>'
    )


def render(chart: Chart) -> str:
    """The chart as a standalone SVG document: horizontal bars, one band per system."""
    per_band = len(chart.series)
    band = per_band * BAR_HEIGHT + (per_band - 1) * BAR_GAP + BAND_PADDING
    plot_top = 86
    plot_bottom = plot_top + band * len(chart.systems)
    height = plot_bottom + 50

    every_value = [v for s in chart.series for values in s.values.values() for v in values]
    if chart.log_scale:
        # A round that served nothing reports 0 µs, which has no place on a log axis.
        positive = [v for v in every_value if v > 0] or [1.0]
        ticks = log_ticks(min(positive), max(positive))
    else:
        ticks = linear_ticks(max(every_value))
    scale = Scale(ticks, chart.log_scale, LABEL_LEFT, WIDTH - LABEL_RIGHT)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="{escape(FONT)}" role="img" '
        f'aria-label="{escape(chart.title)}">',
        f"<title>{escape(chart.title)}</title>",
        f'<rect class="background" x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        text(16, 28, chart.title, font_size="17", font_weight="600", fill="#111111"),
        text(16, 48, chart.caption, font_size="12", fill="#555555"),
    ]
    out += legend(chart.series, plot_top - 18)
    out += axis(scale, plot_top, plot_bottom, chart.axis)
    for index, system in enumerate(chart.systems):
        out += system_band(chart, system, scale, plot_top + index * band + BAND_PADDING / 2)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def legend(series: list[Series], y: float) -> list[str]:
    """The series' colours (when there are several) and what a whisker spans."""
    out = []
    x = LABEL_LEFT
    if len(series) > 1:
        for index, s in enumerate(series):
            out.append(
                f'<rect class="legend" x="{number(x)}" y="{number(y - 10)}" width="12" height="12" '
                f'fill="{SERIES_COLOURS[index]}"/>'
            )
            out.append(text(x + 17, y, s.name, font_size="12", fill="#333333"))
            x += 30 + 8 * len(s.name)
    middle = y - 4
    out += [
        line(x, middle, x + 18, middle, WHISKER),
        line(x, middle - 4, x, middle + 4, WHISKER),
        line(x + 18, middle - 4, x + 18, middle + 4, WHISKER),
        text(x + 24, y, "lowest to highest round", font_size="12", fill="#333333"),
    ]
    return out


def axis(scale: Scale, top: float, bottom: float, label: str) -> list[str]:
    out = []
    for tick in scale.ticks:
        x = scale.x(tick)
        out.append(line(x, top, x, bottom, "#e3e3e3"))
        out.append(
            text(x, bottom + 16, format_tick(tick), font_size="11", fill="#555555",
                 text_anchor="middle")
        )
    out.append(line(scale.left, bottom, scale.right, bottom, "#888888"))
    out.append(line(scale.left, top, scale.left, bottom, "#888888"))
    middle = (scale.left + scale.right) / 2
    out.append(
        text(middle, bottom + 36, label, font_size="12", fill="#333333", text_anchor="middle")
    )
    return out


def system_band(chart: Chart, system: str, scale: Scale, top: float) -> list[str]:
    per_band = len(chart.series)
    band_middle = top + (per_band * BAR_HEIGHT + (per_band - 1) * BAR_GAP) / 2
    # Aegis is what the charts are about; its name stands out from the systems it is compared to.
    weight = "600" if system.startswith("aegis") else "400"
    out = [
        text(LABEL_LEFT - 10, band_middle + 4, system, font_size="13", font_weight=weight,
             fill="#111111", text_anchor="end", class_="system")
    ]
    for index, series in enumerate(chart.series):
        rounds = series.values.get(system, [])
        if not rounds:
            continue
        y = top + index * (BAR_HEIGHT + BAR_GAP)
        out += bar(series, index, system, rounds, scale, y)
    return out


def bar(
    series: Series, index: int, system: str, rounds: list[float], scale: Scale, y: float
) -> list[str]:
    value = median(rounds)
    start, end = scale.x(scale.ticks[0]), scale.x(value)
    low, high = scale.x(min(rounds)), scale.x(max(rounds))
    middle = y + BAR_HEIGHT / 2
    tip = (
        f"{system} {series.name}: median {format_value(value)} over {len(rounds)} rounds "
        f"(min {format_value(min(rounds))}, max {format_value(max(rounds))})"
    )
    return [
        f'<rect class="bar" data-system="{escape(system)}" data-series="{escape(series.name)}" '
        f'x="{number(start)}" y="{number(y)}" width="{number(max(end - start, 1))}" '
        f'height="{BAR_HEIGHT}" fill="{SERIES_COLOURS[index]}"><title>{escape(tip)}</title></rect>',
        line(low, middle, high, middle, WHISKER),
        line(low, middle - 4, low, middle + 4, WHISKER),
        line(high, middle - 4, high, middle + 4, WHISKER),
        text(max(end, high) + 6, middle + 4, format_value(value), font_size="11", fill="#111111",
             class_="value"),
    ]


# --- The charts --------------------------------------------------------------------------------


def run_charts(rows: Rows, date: str) -> dict[str, Chart]:
    systems, rounds = systems_of(rows), rounds_of(rows)
    spread = f"{date}, medians of {rounds} rounds"
    return {
        "cpu-per-request.svg": Chart(
            title="Proxy CPU time per request (lower is better)",
            caption=(
                "the proxy's user + system CPU ÷ requests served, wrk at full load, one worker; "
                + spread
            ),
            axis="CPU µs per request",
            systems=systems,
            series=[Series("CPU µs per request", per_system(rows, "cpu_us"))],
        ),
        "latency.svg": Chart(
            title="Latency at full load, p50 and p99 (lower is better)",
            caption=(
                "wrk over loopback keep-alive at full load, one proxy worker on its own core; "
                + spread
            ),
            axis="latency, µs",
            systems=systems,
            series=[
                Series("p50", per_system(rows, "p50_us")),
                Series("p99", per_system(rows, "p99_us")),
            ],
        ),
    }


def fixed_chart(rows: Rows, date: str, rate: int) -> dict[str, Chart]:
    caption = (
        f"each proxy offered {rate:,} req/s by h2load, paced; "
        f"{date}, medians of {rounds_of(rows)} rounds"
    )
    failed = sum(int(row["non2xx"]) for row in rows)
    if failed:
        caption += f"; {failed:,} answers not 2xx"
    return {
        "fixed-load.svg": Chart(
            title=f"Latency at a fixed load of {rate:,} req/s (lower is better)",
            caption=caption,
            axis="latency, µs (log scale)",
            systems=systems_of(rows),
            series=[
                Series("p50", per_system(rows, "p50_us")),
                Series("p99", per_system(rows, "p99_us")),
                Series("p99.9", per_system(rows, "p999_us")),
            ],
            log_scale=True,
        )
    }


def write_charts(charts: dict[str, Chart], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, chart in charts.items():
        path = out / name
        path.write_text(render(chart), encoding="utf-8")
        written.append(path)
    return written


def date_of(path: Path, given: str | None) -> str:
    if given:
        try:
            return datetime.date.fromisoformat(given).isoformat()
        except ValueError:
            raise ResultsError(f"--date {given!r} is not YYYY-MM-DD") from None
    modified = datetime.datetime.fromtimestamp(path.stat().st_mtime, tz=datetime.timezone.utc)
    return modified.date().isoformat()


# --- Self-check --------------------------------------------------------------------------------

SAMPLE_RUN = """\
1\taegis\t31000\t900\t1800\t60.10\t16000\t44
1\tbare\t40000\t700\t1500\t45.00\t12000\t49
1\tnginx\t50000\t500\t1200\t18.10\t5000\t40
1\thaproxy\t50000\t450\t1100\t18.70\t9000\t41
2\taegis\t30500\t950\t1900\t61.30\t16100\t45
2\tbare\t39000\t720\t1600\t46.20\t12000\t48
2\tnginx\t51000\t480\t1150\t17.90\t5000\t40
2\thaproxy\t49000\t460\t1150\t19.10\t9000\t42
3\taegis\t31500\t880\t1750\t59.80\t16000\t44
3\tbare\t40500\t690\t1450\t44.70\t12100\t49
3\tnginx\t49500\t510\t1250\t18.40\t5000\t41
3\thaproxy\t50500\t440\t1080\t18.50\t9000\t41
4\taegis\t29000\t1010\t2100\t63.00\t16200\t46
4\tbare\t38000\t740\t1700\t47.50\t12100\t50
4\tnginx\t50200\t495\t1190\t18.00\t5000\t40
4\thaproxy\t50100\t455\t1120\t18.80\t9000\t41
"""

SAMPLE_FIXED = """\
1\taegis\t20000\t310\t900\t2400\t0\t55.0
1\tbare\t20000\t260\t700\t1900\t0\t41.0
1\tnginx\t20000\t180\t420\t1200\t0\t17.5
2\taegis\t20000\t320\t950\t2600\t0\t56.1
2\tbare\t20000\t250\t720\t2100\t0\t40.2
2\tnginx\t20000\t175\t400\t1100\t0\t17.9
3\taegis\t19990\t300\t880\t5200\t2\t54.8
3\tbare\t20000\t255\t690\t1800\t0\t40.9
3\tnginx\t20000\t190\t450\t1300\t0\t17.6
"""

SVG = "{http://www.w3.org/2000/svg}"


def check(condition: bool, message: str) -> None:
    # Not `assert`: python3 -O would skip the checks and pass.
    if not condition:
        raise SystemExit(f"charts.py selftest: {message}")


def check_chart(path: Path, rows: Rows, columns: list[str]) -> None:
    """A chart parses as SVG, has a bar per system and column, and prints the medians."""
    document = path.read_text(encoding="utf-8")
    root = ET.fromstring(document)
    check(root.tag == f"{SVG}svg", f"{path.name}: the root is {root.tag}, not svg")
    for attribute in ("width", "height", "viewBox"):
        check(root.get(attribute) is not None, f"{path.name}: no {attribute}")
    check("<script" not in document, f"{path.name}: has a script")
    check("href" not in document, f"{path.name}: refers outside itself")
    background = root.find(f"{SVG}rect")
    check(
        background is not None and background.get("fill") == "#ffffff",
        f"{path.name}: the first rect is not a white background",
    )

    systems = systems_of(rows)
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]
    check(len(bars) == len(systems) * len(columns),
          f"{path.name}: {len(bars)} bars for {len(systems)} systems × {len(columns)} series")
    for system in systems:
        mine = [b for b in bars if b.get("data-system") == system]
        check(len(mine) == len(columns), f"{path.name}: {len(mine)} bars for {system}")
    names = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "system"]
    check(names == systems, f"{path.name}: system labels {names}, expected {systems}")

    printed = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "value"]
    expected = [
        format_value(median(per_system(rows, column)[system]))
        for system in systems
        for column in columns
    ]
    check(printed == expected, f"{path.name}: values printed {printed}, medians are {expected}")


def selftest() -> None:
    with tempfile.TemporaryDirectory(prefix="aegis-charts-") as scratch:
        directory = Path(scratch)
        run_file, fixed_file = directory / "run.tsv", directory / "fixed.tsv"
        run_file.write_text(SAMPLE_RUN, encoding="utf-8")
        fixed_file.write_text(SAMPLE_FIXED, encoding="utf-8")
        run_rows = read_results(run_file, RUN_COLUMNS)
        fixed_rows = read_results(fixed_file, FIXED_COLUMNS)

        check(median([3, 1, 2]) == 2 and median([4, 1, 3, 2]) == 2.5, "median")
        aegis_cpu = format_value(median([60.10, 61.30, 59.80, 63.00]))
        check(aegis_cpu == "60.7", f"the aegis CPU median of 4 rounds is {aegis_cpu}")

        write_charts(run_charts(run_rows, "2026-12-07"), directory)
        write_charts(fixed_chart(fixed_rows, "2026-12-07", 20000), directory)
        check_chart(directory / "cpu-per-request.svg", run_rows, ["cpu_us"])
        check_chart(directory / "latency.svg", run_rows, ["p50_us", "p99_us"])
        check_chart(directory / "fixed-load.svg", fixed_rows, ["p50_us", "p99_us", "p999_us"])

        latency = (directory / "latency.svg").read_text(encoding="utf-8")
        check(
            "2026-12-07, medians of 4 rounds" in latency,
            "the caption lacks the date or the round count",
        )
        fixed = (directory / "fixed-load.svg").read_text(encoding="utf-8")
        check("20,000 req/s" in fixed and "2 answers not 2xx" in fixed, "fixed-load caption")
        again = render(run_charts(run_rows, "2026-12-07")["latency.svg"])
        check(again == latency, "the same results drew different bytes")

        broken = directory / "broken.tsv"
        lines = SAMPLE_RUN.splitlines()
        short = lines[:2] + ["3\taegis\t31000\t900"] + lines[3:]
        broken.write_text("\n".join(short) + "\n", encoding="utf-8")
        check_refused(broken, RUN_COLUMNS, "line 3", "a short line")
        not_a_number = [lines[0], lines[1].replace("45.00", "n/a")]
        broken.write_text("\n".join(not_a_number) + "\n", encoding="utf-8")
        check_refused(broken, RUN_COLUMNS, "line 2", "a field that is not a number")
    print("charts.py selftest: ok")


def check_refused(path: Path, columns: tuple[str, ...], where: str, what: str) -> None:
    try:
        read_results(path, columns)
    except ResultsError as error:
        check(where in str(error), f"{what}: the error does not say {where}: {error}")
        return
    check(False, f"{what} was accepted")


# --- Command line ------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Draws the load benchmarks' results as SVG.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run.sh's results: cpu-per-request.svg, latency.svg")
    fixed = commands.add_parser("fixed", help="fixed_rate.sh's results: fixed-load.svg")
    fixed.add_argument(
        "--rate", type=int, required=True, help="the offered req/s (fixed_rate.sh's RATE)"
    )
    for command in (run, fixed):
        command.add_argument("results", type=Path, help="the per-round TSV (RESULTS_OUT)")
        command.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: docs/perf")
        command.add_argument(
            "--date", help="YYYY-MM-DD; default: the day the file was last written (UTC)"
        )
    commands.add_parser("selftest", help="render sample data and check the charts")
    args = parser.parse_args(argv)
    if args.command == "fixed" and args.rate <= 0:
        parser.error(f"--rate {args.rate}: the offered rate is a positive req/s")

    if args.command == "selftest":
        selftest()
        return 0
    try:
        date = date_of(args.results, args.date)
        if args.command == "run":
            charts = run_charts(read_results(args.results, RUN_COLUMNS), date)
        else:
            charts = fixed_chart(read_results(args.results, FIXED_COLUMNS), date, args.rate)
        for path in write_charts(charts, args.out):
            print(f"charts.py: wrote {os.path.relpath(path)}", file=sys.stderr)
    except (ResultsError, OSError) as error:
        print(f"charts.py: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
