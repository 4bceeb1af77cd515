//! The web dashboard (SPEC §14.1) in a real headless Chromium, driven over WebDriver
//! (Debian's `chromium` and `chromium-driver`, installed by `.ci/run`) against the real binary.
//! The first test also takes the screenshot the README shows (`docs/web-dashboard.png`, rewritten
//! with `AEGIS_BLESS=1`; otherwise `target/web-dashboard.png`). (Over 400 lines: the WebDriver
//! harness, `Browser`, sits beside the three scenarios it drives.)

mod common;

use common::redis::Redis;
use common::{free_port, scratch_dir, wait_until, Aegis};
use fake_backends::FakeBackend;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A chromedriver process and one headless Chromium session; both end on drop.
struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
}

impl Browser {
    fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (.ci/run installs chromium-driver)");
        let address = format!("127.0.0.1:{port}");
        assert!(
            wait_until(Duration::from_secs(20), || {
                std::net::TcpStream::connect(&address).is_ok()
            }),
            "chromedriver did not listen"
        );
        let profile = scratch_dir();
        // As root on a machine without network: no sandbox, and nothing that reaches out.
        let capabilities = serde_json::json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let capabilities = match capabilities {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("a JSON object"),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = runtime
            .block_on(
                ClientBuilder::new(connector)
                    .capabilities(capabilities)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .expect("a Chromium session");
        Browser {
            runtime,
            client: Some(client),
            driver,
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("a session")
    }

    fn goto(&self, url: &str) {
        self.runtime
            .block_on(self.client().goto(url))
            .expect("navigate");
    }

    /// Runs `script` (a function body) in the page and returns its value.
    fn js(&self, script: &str) -> serde_json::Value {
        self.runtime
            .block_on(self.client().execute(script, Vec::new()))
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// The text of the first element matching `css`, or "" if there is none.
    fn text(&self, css: &str) -> String {
        let script = format!(
            "const e = document.querySelector({}); return e ? e.textContent : '';",
            serde_json::Value::String(css.into())
        );
        self.js(&script).as_str().unwrap_or_default().to_string()
    }

    /// Clicks the element matching `css`. The page redraws from `/status` every second, so the
    /// element found may be replaced before the click lands: then it is found again.
    fn click(&self, css: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let clicked = self.runtime.block_on(async {
                let element = self.client().find(Locator::Css(css)).await?;
                element.click().await
            });
            match clicked {
                Ok(()) => return,
                Err(e)
                    if e.is_stale_element_reference() && std::time::Instant::now() < deadline => {}
                Err(e) => panic!("click {css}: {e}"),
            }
        }
    }

    fn type_into(&self, css: &str, text: &str) {
        self.runtime.block_on(async {
            let element = self.client().find(Locator::Css(css)).await.expect(css);
            element.send_keys(text).await.expect("type");
        });
    }

    /// Waits until the text of `css` satisfies `ok`; panics with what it was.
    fn wait_text(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        let seen = wait_until(Duration::from_secs(10), || ok(&self.text(css)));
        let text = self.text(css);
        assert!(seen, "{css} shows {text:?}");
        text
    }

    /// The browser's console messages since the last call: (level, message).
    fn console(&self) -> Vec<(String, String)> {
        let logs = self
            .runtime
            .block_on(self.client().issue_cmd(BrowserLog))
            .expect("chromedriver's log endpoint");
        logs.as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        (
                            e["level"].as_str().unwrap_or_default().to_string(),
                            e["message"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// No error or warning on the console since the last read.
    fn assert_quiet_console(&self) {
        let severe: Vec<_> = self
            .console()
            .into_iter()
            .filter(|(level, _)| level == "SEVERE" || level == "WARNING")
            .collect();
        assert!(severe.is_empty(), "console errors: {severe:?}");
    }

    fn screenshot(&self) -> Vec<u8> {
        self.runtime
            .block_on(self.client().screenshot())
            .expect("a screenshot")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// chromedriver's `POST /session/{id}/se/log {"type":"browser"}`: the console messages.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}

fn token_file(token: &str) -> std::path::PathBuf {
    let file = scratch_dir().join("admin.token");
    std::fs::write(&file, token).expect("token");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    file
}

/// Sends requests to `aegis` for `duration` (a little traffic for the charts).
fn traffic(aegis: &Aegis, duration: Duration) {
    let deadline = std::time::Instant::now() + duration;
    while std::time::Instant::now() < deadline {
        aegis.get("/");
        std::thread::sleep(Duration::from_millis(15));
    }
}

#[test]
fn web_dashboard_shows_backends_live_with_csp_and_drains_with_the_token() {
    let (a, b) = (
        FakeBackend::start("a").unwrap(),
        FakeBackend::start("b").unwrap(),
    );
    a.set_latency(Duration::from_millis(4));
    b.set_latency(Duration::from_millis(12));
    let token = token_file("w3b-token");
    let aegis = Aegis::start(
        &[(a.url(), 1), (b.url(), 2)],
        &format!("admin:\n  token_file: {}\n", token.display()),
    );
    let page = format!("http://{}/", aegis.admin_addr());

    // The page and its two files, each with the strict policy; no inline code is allowed.
    let answer = common::http::get(aegis.admin_addr(), "/");
    assert_eq!(answer.status, 200);
    let csp = answer.header("content-security-policy").expect("a CSP");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    let weight: usize = ["/", "/dashboard.js", "/dashboard.css"]
        .iter()
        .map(|path| common::http::get(aegis.admin_addr(), path).body.len())
        .sum();
    println!("web dashboard weight: {weight} bytes");

    traffic(&aegis, Duration::from_secs(3));
    let browser = Browser::start();
    browser.goto(&page);
    let rows = browser.wait_text("#backends tbody", |t| t.contains(&b.url()));
    assert!(rows.contains(&a.url()), "{rows}");
    let row = |i: usize| format!("#backends tbody tr:nth-child({i})");
    browser.wait_text(&row(1), |t| t.contains("healthy") && t.contains("closed"));
    browser.wait_text(&row(2), |t| t.contains("healthy") && t.contains("closed"));
    browser.wait_text("#summary", |t| t.contains("requests"));
    browser.wait_text("#config", |t| t.contains("config generation 1"));
    // Time from navigation to every panel filled (read after the polls above saw it; a figure
    // for the docs, not a gate).
    println!(
        "web dashboard rendered with data within {} ms of navigation",
        browser.js("return Math.round(performance.now());")
    );
    browser.assert_quiet_console();
    // The policy is in force: a script added inline does not run.
    browser.js(
        "const s = document.createElement('script'); s.textContent = 'window.inline = 1'; \
         document.body.appendChild(s); return null;",
    );
    assert_eq!(browser.js("return window.inline === undefined;"), true);

    // A backend going down shows within a few polls.
    b.set_health_status(500);
    browser.wait_text(&row(2), |t| t.contains("unhealthy"));
    browser.wait_text("#events", |t| {
        t.contains(&format!("backend {} is unhealthy", b.url()))
    });
    b.set_health_status(200);

    // Drain asks for the token: a wrong one is refused (401 shown), the right one drains.
    browser.click(&format!("{} button", row(1)));
    browser.type_into("#token", "wrong");
    browser.click("#token-ok");
    browser.wait_text("#notice", |t| t.contains("401"));
    assert_eq!(aegis.backend_status(0)["admin_state"], "enabled");
    browser.click(&format!("{} button", row(1)));
    browser.type_into("#token", "w3b-token");
    browser.click("#token-ok");
    browser.wait_text(&row(1), |t| t.contains("drained") && t.contains("Enable"));
    assert_eq!(aegis.backend_status(0)["admin_state"], "drained");
    // The token is kept for the page's life: Enable needs no second prompt.
    browser.click(&format!("{} button", row(1)));
    browser.wait_text(&row(1), |t| t.contains("Drain"));
    assert_eq!(aegis.backend_status(0)["admin_state"], "enabled");

    // The screenshot the README shows, with a minute's charts filling in.
    traffic(&aegis, Duration::from_secs(4));
    browser.wait_text(&row(2), |t| {
        t.contains("healthy") && !t.contains("unhealthy")
    });
    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    // The README's copy is rewritten only when asked (`AEGIS_BLESS=1`) or missing, so that a test
    // run leaves the work tree clean; every run writes target/web-dashboard.png.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme_copy = root.join("docs/web-dashboard.png");
    let shot = if std::env::var_os("AEGIS_BLESS").is_some() || !readme_copy.exists() {
        readme_copy
    } else {
        root.join("target/web-dashboard.png")
    };
    std::fs::write(&shot, png).expect("write the screenshot");
}

#[test]
fn hostile_strings_show_as_text_in_the_cluster_panel_and_events() {
    let a = FakeBackend::start("a").unwrap();
    let redis = Redis::start(None);
    // An instance name is any printable text without spaces, markup included.
    let hostile = "<script>window.pwned=1</script><img/src=x/onerror=window.pwned=2>";
    let aegis = Aegis::start(
        &[(a.url(), 1)],
        &format!(
            "adaptive:\n  enabled: true\ncluster:\n  redis_url: \"{}\"\n  sync_interval: 100ms\n  instance_name: \"{hostile}\"\n",
            redis.url()
        ),
    );
    let browser = Browser::start();
    browser.goto(&format!("http://{}/", aegis.admin_addr()));
    let cluster = browser.wait_text("#cluster", |t| t.contains("lease") && t.contains("(this)"));
    assert!(cluster.contains(hostile), "{cluster}");
    let events = browser.wait_text("#events", |t| t.contains("took the lease"));
    assert!(
        events.contains(&format!("cluster: {hostile} took the lease")),
        "{events}"
    );
    assert_eq!(
        browser.js("return document.querySelectorAll('main script, main img').length;"),
        0
    );
    // A refused reload's problems quote the file: a hostile key shows as text too.
    let mut text = std::fs::read_to_string(&aegis.config_path).expect("config");
    text.push_str("\"<script>window.pwned=3</script>\": 1\n");
    std::fs::write(&aegis.config_path, text).expect("config");
    aegis.signal("HUP");
    let config = browser.wait_text("#config", |t| t.contains("refused"));
    assert!(
        config.contains("<script>window.pwned=3</script>"),
        "{config}"
    );
    assert_eq!(
        browser
            .js("return document.querySelectorAll('main script, main img, header script').length;"),
        0
    );
    assert_eq!(browser.js("return window.pwned === undefined;"), true);
}

/// `GET /` with this Host on a connection of its own.
fn get_host(aegis: &Aegis, host: &str) -> u16 {
    let mut conn = common::http::Connection::open(aegis.addr()).expect("connect");
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
    conn.exchange(request.as_bytes())
        .expect("a response")
        .status
}

#[test]
fn web_dashboard_draws_a_section_per_pool_and_shows_a_pool_all_down() {
    let api = [FakeBackend::start("api1"), FakeBackend::start("api2")].map(Result::unwrap);
    let www = [FakeBackend::start("www1"), FakeBackend::start("www2")].map(Result::unwrap);
    for backend in &www {
        backend.set_health_status(500);
    }
    let token = token_file("p00ls");
    let aegis = Aegis::start(
        &[],
        &format!(
            "admin:\n  token_file: {}\npools:\n  api:\n    backends: [{{url: \"{}\"}}, {{url: \"{}\"}}]\n  www:\n    backends: [{{url: \"{}\"}}, {{url: \"{}\"}}]\nroutes:\n  - {{host: api.example.com, pool: api}}\n  - {{host: www.example.com, pool: www}}\n",
            token.display(),
            api[0].url(),
            api[1].url(),
            www[0].url(),
            www[1].url()
        ),
    );
    for _ in 0..20 {
        assert_eq!(get_host(&aegis, "api.example.com"), 200);
    }
    let browser = Browser::start();
    browser.goto(&format!("http://{}/", aegis.admin_addr()));
    let (api_css, www_css) = (
        r#"#pools details.pool[data-pool="api"]"#,
        r#"#pools details.pool[data-pool="www"]"#,
    );
    // One section per pool (the unused default pool has none), each with its own backends.
    let api_text = browser.wait_text(api_css, |t| {
        t.contains("2/2 up") && t.contains("P95 ") && !t.contains("P95 - ms")
    });
    assert!(
        api_text.contains(&api[0].url()) && api_text.contains(&api[1].url()),
        "{api_text}"
    );
    assert!(!api_text.contains(&www[0].url()), "{api_text}");
    let www_text = browser.wait_text(www_css, |t| t.contains("all down (0/2 up)"));
    assert!(
        www_text.contains(&www[0].url()) && www_text.contains(&www[1].url()),
        "{www_text}"
    );
    assert_eq!(
        browser.js("return document.querySelectorAll('#pools details.pool').length;"),
        2
    );
    let state = |css: &str| {
        browser.js(&format!(
            "return document.querySelector({}).dataset.state;",
            serde_json::Value::String(css.into())
        ))
    };
    assert_eq!(state(www_css), "down");
    assert_eq!(state(api_css), "up");
    // Each unhealthy backend says so in its row; the flat table is hidden.
    let www_rows = format!("{www_css} tbody");
    assert_eq!(browser.text(&www_rows).matches("unhealthy").count(), 2);
    assert_eq!(
        browser.js("return document.getElementById('backends').hidden;"),
        true
    );
    assert!(browser.text("#backend-count").contains("4 in 2 pools"));

    // Folding a pool holds across polls (the uptime moves on meanwhile).
    browser.click(&format!("{www_css} summary"));
    let open = format!("return document.querySelector('{www_css}').open;");
    assert_eq!(browser.js(&open), false);
    let before = browser.text("#summary");
    browser.wait_text("#summary", |t| t != before);
    browser.wait_text(www_css, |t| t.contains("all down"));
    assert_eq!(browser.js(&open), false);
    browser.click(&format!("{www_css} summary"));
    assert_eq!(browser.js(&open), true);

    // A pool section's Drain button drains that backend.
    browser.click(&format!("{api_css} tbody tr:nth-child(2) button"));
    browser.type_into("#token", "p00ls");
    browser.click("#token-ok");
    browser.wait_text(&format!("{api_css} tbody tr:nth-child(2)"), |t| {
        t.contains("drained")
    });
    browser.wait_text(api_css, |t| t.contains("1/2 up"));
    // For a look (not compared): the pools as drawn.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::write(
        root.join("target/web-dashboard-pools.png"),
        browser.screenshot(),
    )
    .expect("write the screenshot");
    browser.assert_quiet_console();
}
