//! The web console served by the real `auditrail serve`, same-origin with the API: the built
//! files of `console/dist` (embedded at compile time; `make console` builds them, the test script
//! runs it first), their caching and security headers, client-side routes, and the development
//! sign-in whose token the API accepts with exactly the role asked.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start(dir: &std::path::Path) -> (Server, String) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_auditrail"))
        .args(["serve", "--addr", &addr, "--data-dir"])
        .arg(dir)
        .env_remove("AUDITRAIL_AUTH")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("auditrail serve starts");
    let server = Server(child);
    let base = format!("http://{addr}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if reqwest::get(format!("{base}/v1/health")).await.is_ok_and(|r| r.status() == 200) {
            return (server, base);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("auditrail serve did not answer /v1/health within 30 s");
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// The security headers every console answer carries.
fn assert_secure(r: &reqwest::Response, what: &str) {
    let csp = header(r, "content-security-policy");
    for part in [
        "default-src 'self'",
        "script-src 'self';",
        "style-src 'self';",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(part), "{what}: CSP `{csp}` lacks `{part}`");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{what}: {csp}");
    assert_eq!(header(r, "x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header(r, "referrer-policy"), "no-referrer", "{what}");
}

#[tokio::test]
async fn the_console_is_served_same_origin_with_the_api() {
    assert!(
        auditrail_console_assets::built(),
        "console/dist is not built into this binary: run `make console` (scripts/test.sh does) and test again"
    );
    let dir = tempfile::tempdir().unwrap();
    let (_server, base) = start(dir.path()).await;

    // `/`: the page, never cached, with the policy.
    let r = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&r, "cache-control"), "no-cache");
    assert_secure(&r, "/");
    let index = r.text().await.unwrap();
    assert!(index.contains("assets/"), "the built page loads its hashed assets: {index}");
    assert!(!index.contains("<script>") && !index.contains("<style>"), "no inline script or style: {index}");

    // The page's own script, by the hashed name the build gave it: cached for a year.
    let script = index
        .split("src=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(|s| s.trim_start_matches('.'))
        .find(|s| s.starts_with("/assets/") && s.ends_with(".js"))
        .unwrap_or_else(|| panic!("index.html loads a script from /assets/: {index}"));
    let r = reqwest::get(format!("{base}{script}")).await.unwrap();
    assert_eq!(r.status(), 200, "{script}");
    assert_eq!(header(&r, "content-type"), "text/javascript; charset=utf-8");
    assert_eq!(header(&r, "cache-control"), "public, max-age=31536000, immutable");
    assert_secure(&r, script);
    let etag = header(&r, "etag").to_owned();
    let again =
        reqwest::Client::new().get(format!("{base}{script}")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304, "a cached asset is not sent again");

    // A deep app URL is the page (the client routes it); an unknown asset is not.
    let r = reqwest::get(format!("{base}/activity?user=x")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "cache-control"), "no-cache");
    assert_secure(&r, "/activity");
    assert_eq!(r.text().await.unwrap(), index);
    for missing in ["/assets/index-00000000.js", "/favicon-nope.png"] {
        let r = reqwest::get(format!("{base}{missing}")).await.unwrap();
        assert_eq!(r.status(), 404, "{missing}");
        assert_secure(&r, missing);
    }

    // `/v1` stays the API, its not-found a problem.
    let r = reqwest::get(format!("{base}/v1/health")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ok");
    let r = reqwest::get(format!("{base}/v1/nope")).await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(header(&r, "content-type"), "application/problem+json");

    // The sign-in configuration, then the development sign-in of the local mode.
    let config: Value = reqwest::get(format!("{base}/v1/console/config")).await.unwrap().json().await.unwrap();
    assert_eq!(config["auth_mode"], "local");
    assert_eq!(config["dev_sign_in"], true);
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/v1/console/dev-sign-in"))
        .json(&json!({"tenant": "acme", "role": "cc_manager", "user": "maria"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let r = client.get(format!("{base}/v1/events")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200, "a CC manager reads the activity log");
    let r = client.get(format!("{base}/v1/settings/retention")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 403, "but not the settings: exactly the role asked");
}
