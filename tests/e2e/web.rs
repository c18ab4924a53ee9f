//! The web view in a real browser: headless Chromium driven over WebDriver (chromedriver)
//! against the real `host serve` and `host ui`. With `SHOAL_SCREENSHOTS=DIR`, the main pages
//! are saved there as PNG (`docs/screenshots.sh`).

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::serve::{Server, naps, uploadable};
use crate::support::{component, free_port, host_command};

/// A chromedriver on a free loopback port driving headless Chromium, stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    /// Starts chromedriver, or `None` (saying so loudly) where Chromium is not installed;
    /// under CI it must be.
    fn start() -> Option<Driver> {
        let installed = Command::new("chromedriver")
            .arg("--version")
            .output()
            .is_ok_and(|out| out.status.success())
            && chromium().is_some();
        if !installed {
            assert!(
                std::env::var_os("CI").is_none(),
                "chromium and chromedriver are not installed; .ci/run installs them \
                 (apt-get install chromium chromium-driver)"
            );
            eprintln!(
                "SKIPPED: chromium or chromedriver is not installed (apt-get install chromium chromium-driver)"
            );
            return None;
        }
        let port = free_port();
        // Its own process group, with the browsers it starts: dropping the driver kills them
        // all, also when a test panics before closing its session.
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(driver)
    }

    /// A new browser session with its own profile (cookies included).
    async fn browser(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium().expect("chromium"),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,1000"],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a browser session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = self.child.wait();
    }
}

/// The Chromium binary: Debian's `chromium`.
fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Saves a screenshot of the page as `DIR/name.png` when `SHOAL_SCREENSHOTS=DIR`.
async fn screenshot(browser: &Client, name: &str) {
    let Some(dir) = std::env::var_os("SHOAL_SCREENSHOTS") else {
        return;
    };
    let png = browser.screenshot().await.expect("a screenshot");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(PathBuf::from(dir).join(format!("{name}.png")), png).unwrap();
}

/// Polls `check` on the page until it gives `Some`, for up to `within`.
async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of the first element matching `css`, if there is one.
async fn text_of(browser: &Client, css: &str) -> Option<String> {
    browser
        .find(Locator::Css(css))
        .await
        .ok()?
        .text()
        .await
        .ok()
}

/// How many steps of op `op` the run page's table shows in `state`.
async fn count(browser: &Client, op: &str, state: &str) -> u64 {
    text_of(
        browser,
        &format!("table.ops tr[data-op='{op}'] td[data-state='{state}']"),
    )
    .await
    .and_then(|text| text.trim().parse().ok())
    .unwrap_or(0)
}

/// Clicks the element `locator` finds.
async fn click(browser: &Client, locator: Locator<'_>) {
    browser.find(locator).await.unwrap().click().await.unwrap();
}

/// Fills the login form with `token` and sends it.
async fn submit_login(browser: &Client, base: &str, token: &str) {
    browser.goto(&format!("{base}/login")).await.unwrap();
    screenshot(browser, "login").await;
    let field = browser.find(Locator::Id("token")).await.unwrap();
    field.send_keys(token).await.unwrap();
    click(browser, Locator::Css("form.login button")).await;
}

async fn log_in(browser: &Client, base: &str, token: &str) {
    submit_login(browser, base, token).await;
    eventually(Duration::from_secs(10), "the runs page", || async {
        text_of(browser, "h1").await.filter(|h| h == "Runs")
    })
    .await;
}

#[test]
fn a_tenant_follows_inspects_and_reexecutes_runs_in_a_real_browser() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let store = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(store.path(), &["--max-concurrent", "2"]);
    let alice = server.tenant("alice", &["--allow-dir", data.path().to_str().unwrap()]);
    let bob = server.tenant("bob", &[]);
    for component in ["dynamic_graph", "testkit", "adversary"] {
        alice.upload(component);
    }
    let (job, _) = uploadable("dynamic_graph");
    let seed = alice.submit(&job);
    assert_eq!(alice.wait(&seed)["status"], "SUCCESS");
    let base = server.base.clone();
    block_on(async {
        let browser = driver.browser().await;
        // Pages need a login; a bad token is refused with a message.
        browser.goto(&format!("{base}/runs/{seed}")).await.unwrap();
        assert!(
            browser
                .current_url()
                .await
                .unwrap()
                .path()
                .ends_with("/login")
        );
        submit_login(&browser, &base, "shoal.alice.bogus").await;
        let refused = eventually(Duration::from_secs(10), "the login error", || {
            text_of(&browser, "#login-error")
        })
        .await;
        assert!(refused.contains("not valid"), "{refused}");
        log_in(&browser, &base, alice.token()).await;
        let listed = text_of(&browser, &format!("tr[data-run='{seed}']"))
            .await
            .expect("the seed run is listed");
        assert!(
            listed.contains("SUCCESS") && listed.contains("52 succeeded"),
            "{listed}"
        );

        // A finished seed run: its graph, counts and final output.
        click(&browser, Locator::Css(&format!("a[href='/runs/{seed}']"))).await;
        let output = eventually(Duration::from_secs(10), "the output", || {
            text_of(&browser, "#output")
        })
        .await;
        assert!(output.contains("9900"), "{output}");
        assert_eq!(count(&browser, "compute_piece", "succeeded").await, 50);
        let node = browser
            .find(Locator::Css("svg.graph g.node[data-op='compute_piece']"))
            .await
            .unwrap();
        assert_eq!(
            node.attr("data-total").await.unwrap().as_deref(),
            Some("50")
        );
        let label = text_of(
            &browser,
            "svg.graph g.node[data-op='compute_piece'] text.op-name",
        )
        .await
        .unwrap();
        assert_eq!(label, "compute_piece[?]");
        screenshot(&browser, "run").await;
        // A clone's page: its input, output and attempts.
        browser
            .goto(&format!("{base}/runs/{seed}/step?key=compute_piece%5B7%5D"))
            .await
            .unwrap();
        let outputs = text_of(&browser, "#outputs").await.unwrap();
        assert!(outputs.contains("result"), "{outputs}");
        let inputs = text_of(&browser, "#inputs-heading + dl").await.unwrap();
        assert!(
            inputs.contains("load_pieces") && inputs.contains("7"),
            "{inputs}"
        );
        screenshot(&browser, "step").await;
        browser
            .goto(&format!(
                "{base}/runs/{seed}/steps?op=compute_piece&prefix=4"
            ))
            .await
            .unwrap();
        let table = text_of(&browser, "table.steps tbody").await.unwrap();
        assert!(
            table.contains("compute_piece[4]") && table.contains("compute_piece[49]"),
            "{table}"
        );
        assert!(!table.contains("compute_piece[5]"), "{table}");
        screenshot(&browser, "steps").await;
        browser.goto(&format!("{base}/components")).await.unwrap();
        let components = text_of(&browser, "main").await.unwrap();
        assert!(
            components.contains("compute_piece") && components.contains("dynamic"),
            "{components}"
        );
        screenshot(&browser, "components").await;

        // A running fan-out: the page's counts rise without a reload, then it shows the end.
        let running = alice.submit(&naps(40, 120));
        browser
            .goto(&format!("{base}/runs/{running}"))
            .await
            .unwrap();
        let first = eventually(Duration::from_secs(30), "a first nap done", || async {
            let n = count(&browser, "nap", "succeeded").await;
            (n > 0 && n < 40).then_some(n)
        })
        .await;
        browser
            .execute("window.stillHere = true;", vec![])
            .await
            .unwrap();
        let later = eventually(Duration::from_secs(30), "more naps done", || async {
            let n = count(&browser, "nap", "succeeded").await;
            (n > first).then_some(n)
        })
        .await;
        let same_page = browser
            .execute("return window.stillHere === true;", vec![])
            .await
            .unwrap();
        assert_eq!(
            same_page,
            json!(true),
            "the counts rose from {first} to {later} by a reload"
        );
        screenshot(&browser, "run-live").await;
        let status = eventually(Duration::from_secs(60), "the run's end", || async {
            text_of(&browser, "#run-status")
                .await
                .filter(|s| s.contains("SUCCESS"))
        })
        .await;
        assert!(status.contains("SUCCESS"));
        assert_eq!(count(&browser, "nap", "succeeded").await, 40);

        // The runs list shows a new run without a reload.
        browser.goto(&format!("{base}/")).await.unwrap();
        browser
            .execute("window.stillHere = true;", vec![])
            .await
            .unwrap();
        let long = alice.submit(&naps(20, 300));
        let row = format!("tr[data-run='{long}']");
        eventually(Duration::from_secs(15), "the new run listed", || {
            text_of(&browser, &row)
        })
        .await;
        let same_page = browser
            .execute("return window.stillHere === true;", vec![])
            .await
            .unwrap();
        assert_eq!(same_page, json!(true), "the list was reloaded");
        // Cancel it with the button, then resume it with the next.
        browser.goto(&format!("{base}/runs/{long}")).await.unwrap();
        click(&browser, Locator::Id("cancel")).await;
        eventually(Duration::from_secs(30), "the run canceled", || async {
            text_of(&browser, "#run-status")
                .await
                .filter(|s| s.contains("CANCELED"))
        })
        .await;
        let resume = eventually(Duration::from_secs(10), "the resume button", || async {
            browser.find(Locator::Id("resume")).await.ok()
        })
        .await;
        resume.click().await.unwrap();
        eventually(Duration::from_secs(60), "the resumed run's end", || async {
            text_of(&browser, "#run-status")
                .await
                .filter(|s| s.contains("SUCCESS"))
        })
        .await;
        assert!(browser.current_url().await.unwrap().path().ends_with(&long));
        assert_eq!(count(&browser, "nap", "succeeded").await, 20);

        // A failed run, fixed, re-executed from failure with the button.
        let failing = alice.submit(
            "[components.adversary]\n[ops.read_file]\ncomponent = 'adversary'\n\
             config.path = '/data/input.txt'\n[[ops.read_file.dirs]]\nhost = '.'\nguest = '/data'\n",
        );
        assert_eq!(alice.wait(&failing)["status"], "FAILURE");
        std::fs::write(data.path().join("input.txt"), "fixed").unwrap();
        browser
            .goto(&format!("{base}/runs/{failing}"))
            .await
            .unwrap();
        let failures = text_of(&browser, "table.failures")
            .await
            .expect("the failures are listed");
        assert!(
            failures.contains("read_file") && failures.contains("input.txt"),
            "{failures}"
        );
        screenshot(&browser, "run-failed").await;
        click(&browser, Locator::Id("reexecute-from-failure")).await;
        let child = eventually(Duration::from_secs(10), "the new run's page", || async {
            let path = browser.current_url().await.ok()?.path().to_string();
            let id = path.strip_prefix("/runs/")?.to_string();
            (id != failing).then_some(id)
        })
        .await;
        let deadline = Instant::now() + Duration::from_secs(60);
        let output = loop {
            if let Some(output) = text_of(&browser, "#output").await {
                break output;
            }
            if Instant::now() > deadline {
                panic!("no output: {}", browser.source().await.unwrap());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(output.contains("fixed"), "{output}");
        assert_eq!(alice.wait(&child)["status"], "SUCCESS");
        browser.goto(&format!("{base}/")).await.unwrap();
        screenshot(&browser, "runs").await;
        browser.close().await.unwrap();

        // Another tenant's session cannot open the run, nor see it listed.
        let other = driver.browser().await;
        log_in(&other, &base, bob.token()).await;
        assert!(
            text_of(&other, &format!("tr[data-run='{seed}']"))
                .await
                .is_none()
        );
        other.goto(&format!("{base}/runs/{seed}")).await.unwrap();
        let page = text_of(&other, "main").await.unwrap();
        assert!(page.contains("no run") && !page.contains("9900"), "{page}");
        other
            .goto(&format!("{base}/runs/{seed}/step?key=compute_piece%5B7%5D"))
            .await
            .unwrap();
        assert!(!text_of(&other, "main").await.unwrap().contains("result"));
        // Logging out forgets the token.
        other.goto(&format!("{base}/")).await.unwrap();
        click(&other, Locator::Css("header form button")).await;
        other.goto(&format!("{base}/")).await.unwrap();
        assert!(
            other
                .current_url()
                .await
                .unwrap()
                .path()
                .ends_with("/login")
        );
        other.close().await.unwrap();
    });
}

/// A page of `host ui` fetched over plain HTTP, with `headers`: its status and body.
fn fetch(base: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let (status, body, _) = fetch_with_headers(base, method, path, headers);
    (status, body)
}

fn fetch_with_headers(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, ureq::http::HeaderMap) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let url = format!("{base}{path}");
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = agent
        .run(request.body(()).unwrap())
        .expect("host ui answers");
    let body = response.body_mut().read_to_string().unwrap_or_default();
    (response.status().as_u16(), body, response.headers().clone())
}

#[test]
fn host_ui_shows_local_runs_to_loopback_pages_only() {
    let store = tempfile::tempdir().unwrap();
    component("mapping");
    let done = host_command()
        .env("SHOAL_STORE", store.path())
        .args(["run", "guest-examples/jobs/nested.toml"])
        .current_dir(crate::support::root())
        .output()
        .unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let runs = host_command()
        .env("SHOAL_STORE", store.path())
        .args(["runs"])
        .output()
        .unwrap();
    let listed = String::from_utf8(runs.stdout).unwrap();
    let id = listed
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().next())
        .expect("a run")
        .to_string();
    let server = Server::start_ui(store.path());
    let base = server.base.clone();
    let (status, page) = fetch(&base, "GET", "/", &[]);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&id) && page.contains("nested"), "{page}");
    let (status, page, headers) = fetch_with_headers(&base, "GET", &format!("/runs/{id}"), &[]);
    assert_eq!(status, 200, "{page}");
    // No other site may frame it (a click there would post its forms).
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    // Nested maps draw as nesting: two frames around the innermost op.
    assert!(page.contains("[?][?]"), "{page}");
    // A page elsewhere cannot reach it by DNS rebinding, nor post its forms.
    for path in ["/", "/assets/shoal.js", "/healthz", "/no/such/page"] {
        let (status, _) = fetch(&base, "GET", path, &[("Host", "evil.example:7070")]);
        assert_eq!(status, 421, "{path}");
    }
    let (status, page) = fetch(
        &base,
        "POST",
        &format!("/runs/{id}/reexecute"),
        &[("Origin", "http://evil.example")],
    );
    assert_eq!(status, 403, "{page}");
    // There is no API and no login.
    assert_eq!(fetch(&base, "GET", "/v1/runs", &[]).0, 404);
    assert_eq!(fetch(&base, "GET", "/login", &[]).0, 303);
    // A view without a login refuses to listen beyond loopback.
    let out = host_command()
        .env("SHOAL_STORE", store.path())
        .args(["ui", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("loopback") && err.contains("0.0.0.0:0"),
        "{err}"
    );
}

#[test]
fn a_live_page_stops_once_its_token_is_rotated() {
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(store.path(), &[]);
    let carol = server.tenant("carol", &[]);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let response = agent
        .get(format!("{}/live/runs", server.base))
        .header("Cookie", &format!("shoal_token={}", carol.token()))
        .call()
        .expect("the live list opens");
    let reader = std::thread::spawn(move || response.into_body().read_to_string());
    std::thread::sleep(Duration::from_millis(1500));
    let rotated = host_command()
        .env("SHOAL_STORE", store.path())
        .args(["tenant", "rotate", "carol"])
        .output()
        .unwrap();
    assert!(rotated.status.success());
    let started = Instant::now();
    let body = reader
        .join()
        .unwrap()
        .expect("the stream ends, not times out");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        body.contains("event: html") && body.trim_end().ends_with("data: end"),
        "{body}"
    );
}
