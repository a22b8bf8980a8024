//! `auditrail serve --auth oidc` against a real OpenID Connect discovery document and JWKS
//! served by a small axum server on 127.0.0.1, with ES256 keys made at test time: a valid
//! token gets the tenant and the roles of `realm_access.roles`; every bad token is a 401 problem
//! naming the reason; a rotated key is picked up by fetching the key set again.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rand::RngCore;
use serde_json::{Value, json};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An ES256 key pair: the signing key and its public JWK.
struct Key {
    kid: String,
    signing: EncodingKey,
    jwk: Value,
}

impl Key {
    fn new(kid: &str) -> Self {
        let secret = loop {
            let mut d = [0u8; 32];
            rand::rng().fill_bytes(&mut d);
            if let Ok(k) = p256::SecretKey::from_slice(&d) {
                break k;
            }
        };
        // PKCS#8 of a P-256 private key (RFC 5208 around RFC 5915, no optional fields).
        let mut der = hex("3041020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420");
        der.extend_from_slice(&secret.to_bytes());
        let point = secret.public_key().to_encoded_point(false);
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()),
        });
        Self { kid: kid.to_owned(), signing: EncodingKey::from_ec_der(&der), jwk }
    }

    /// The committed test-only RS256 key (RSA key generation is slow in a debug build).
    fn rs256(kid: &str) -> Self {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        let der = std::fs::read(format!("{dir}/oidc-test-rs256.der")).unwrap();
        let mut jwk: Value =
            serde_json::from_slice(&std::fs::read(format!("{dir}/oidc-test-rs256.jwk.json")).unwrap()).unwrap();
        jwk["kid"] = json!(kid);
        Self { kid: kid.to_owned(), signing: EncodingKey::from_rsa_der(&der), jwk }
    }

    fn sign(&self, claims: &Value) -> String {
        let alg = if self.jwk["kty"] == "RSA" { Algorithm::RS256 } else { Algorithm::ES256 };
        let mut h = Header::new(alg);
        h.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&h, claims, &self.signing).unwrap()
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// The identity provider: discovery and JWKS, counting key-set fetches.
#[derive(Clone)]
struct Idp {
    issuer: String,
    keys: Arc<Mutex<Vec<Value>>>,
    jwks_fetches: Arc<Mutex<u32>>,
}

async fn discovery(State(idp): State<Idp>) -> Json<Value> {
    Json(json!({"issuer": idp.issuer, "jwks_uri": format!("{}/protocol/openid-connect/certs", idp.issuer)}))
}

async fn jwks(State(idp): State<Idp>) -> Json<Value> {
    *idp.jwks_fetches.lock().unwrap() += 1;
    Json(json!({"keys": *idp.keys.lock().unwrap()}))
}

async fn start_idp() -> Idp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}/realms/test", listener.local_addr().unwrap());
    let idp = Idp { issuer, keys: Arc::default(), jwks_fetches: Arc::default() };
    let app = axum::Router::new()
        .route("/realms/test/.well-known/openid-configuration", get(discovery))
        .route("/realms/test/protocol/openid-connect/certs", get(jwks))
        .with_state(idp.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    idp
}

async fn start_server(dir: &std::path::Path, idp: &Idp) -> (Server, String) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_auditrail"))
        .args(["serve", "--addr", &addr, "--auth", "oidc", "--oidc-issuer", &idp.issuer])
        .args(["--oidc-client-id", "auditrail-console", "--oidc-audience", "auditrail", "--oidc-azp-fallback"])
        .arg("--data-dir")
        .arg(dir)
        .env("AUDITRAIL_OIDC_MIN_REFRESH_SECS", "1")
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
    panic!("auditrail serve --auth oidc did not answer /v1/health within 30 s");
}

fn claims(idp: &Idp, tweak: impl FnOnce(&mut Value)) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut c = json!({
        "iss": idp.issuer, "aud": ["auditrail", "account"], "azp": "auditrail-console", "sub": "f3a1-user",
        "preferred_username": "maria", "tenant_id": "acme", "iat": now, "exp": now + 300,
        "realm_access": {"roles": ["compliance_analyst", "offline_access", "uma_authorization"]},
    });
    tweak(&mut c);
    c
}

/// `GET /v1/events` with a token: the status and the problem's detail.
async fn events(base: &str, token: &str) -> (u16, String) {
    let r = reqwest::Client::new().get(format!("{base}/v1/events")).bearer_auth(token).send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    if status != 200 {
        assert_eq!(ct, "application/problem+json", "{body}");
    }
    (status, body["detail"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn oidc_mode_accepts_the_issuers_tokens_only() {
    let idp = start_idp().await;
    let k1 = Key::new("k1");
    idp.keys.lock().unwrap().push(k1.jwk.clone());
    let dir = tempfile::tempdir().unwrap();
    let (_server, base) = start_server(dir.path(), &idp).await;

    // The console learns where to sign in; there is no development sign-in.
    let config: Value = reqwest::get(format!("{base}/v1/console/config")).await.unwrap().json().await.unwrap();
    assert_eq!(config["auth_mode"], "oidc");
    assert_eq!(config["issuer"], idp.issuer.as_str());
    assert_eq!(config["client_id"], "auditrail-console");
    assert_eq!(config["dev_sign_in"], false);
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/console/dev-sign-in"))
        .json(&json!({"tenant": "acme", "role": "dpo", "user": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let csp = reqwest::get(format!("{base}/")).await.unwrap().headers()["content-security-policy"].clone();
    let origin = idp.issuer.trim_end_matches("/realms/test");
    assert!(csp.to_str().unwrap().contains(&format!("connect-src 'self' {origin};")), "{csp:?}");

    // A valid token: tenant and roles from its claims (Keycloak's own roles ignored).
    let good = k1.sign(&claims(&idp, |_| {}));
    assert_eq!(events(&base, &good).await, (200, String::new()));
    let r =
        reqwest::Client::new().get(format!("{base}/v1/settings/retention")).bearer_auth(&good).send().await.unwrap();
    assert_eq!(r.status(), 403, "a compliance analyst, nothing more");
    let dpo = k1.sign(&claims(&idp, |c| c["realm_access"]["roles"] = json!(["dpo"])));
    assert_eq!(events(&base, &dpo).await.0, 403, "roles come from realm_access.roles");
    // Keycloak's access tokens: `aud` without Auditrail, `azp` naming it (the fallback is on).
    let by_azp = k1.sign(&claims(&idp, |c| {
        c["aud"] = json!("account");
        c["azp"] = json!("auditrail");
    }));
    assert_eq!(events(&base, &by_azp).await.0, 200);

    // Bad tokens, each with its reason.
    let now = chrono::Utc::now().timestamp();
    let header_none = b64(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
    let payload = b64(claims(&idp, |_| {}).to_string().as_bytes());
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("k1".into());
    let hs256 =
        jsonwebtoken::encode(&hs, &claims(&idp, |_| {}), &EncodingKey::from_secret(k1.jwk.to_string().as_bytes()))
            .unwrap();
    let stranger = Key::new("k9");
    // The signature of one token over the claims of another (another tenant's).
    let other = k1.sign(&claims(&idp, |c| c["tenant_id"] = json!("globex")));
    let parts: Vec<&str> = good.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], other.split('.').nth(1).unwrap(), parts[2]);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong issuer",
            k1.sign(&claims(&idp, |c| c["iss"] = json!("http://127.0.0.1:1/realms/evil"))),
            "not issued by",
        ),
        ("wrong audience", k1.sign(&claims(&idp, |c| c["aud"] = json!("account"))), "not meant for Auditrail"),
        ("expired", k1.sign(&claims(&idp, |c| c["exp"] = json!(now - 3600))), "expired"),
        ("alg none", format!("{header_none}.{payload}."), "RS256 or ES256"),
        ("HS256 with the public key", hs256, "RS256- or ES256"),
        ("unknown kid", stranger.sign(&claims(&idp, |_| {})), "kid `k9`"),
        ("no tenant", k1.sign(&claims(&idp, |c| c.as_object_mut().unwrap().retain(|k, _| k != "tenant_id"))), "tenant"),
        ("forged claims", forged, "signature is not valid"),
    ];
    for (what, token, reason) in cases {
        let (status, detail) = events(&base, &token).await;
        assert_eq!(status, 401, "{what}: {detail}");
        assert!(detail.contains(reason), "{what}: `{detail}` should say `{reason}`");
    }
    // Unknown key ids do not make the server fetch the key set on every request.
    let before = *idp.jwks_fetches.lock().unwrap();
    for _ in 0..5 {
        assert_eq!(events(&base, &stranger.sign(&claims(&idp, |_| {}))).await.0, 401);
    }
    assert!(*idp.jwks_fetches.lock().unwrap() <= before + 1, "at most one fetch per refresh interval");

    // Key rotation: the issuer publishes a new key; its tokens are accepted after a refetch.
    let k2 = Key::new("k2");
    idp.keys.lock().unwrap().push(k2.jwk.clone());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(events(&base, &k2.sign(&claims(&idp, |_| {}))).await, (200, String::new()));
    assert_eq!(events(&base, &good).await.0, 200, "the old key still works while published");

    // An RS256 key (Keycloak's default) works the same way.
    let rsa = Key::rs256("rsa-1");
    idp.keys.lock().unwrap().push(rsa.jwk.clone());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(events(&base, &rsa.sign(&claims(&idp, |_| {}))).await, (200, String::new()));
    // A token whose header claims ES256 under the RSA key's id is refused.
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("rsa-1".into());
    let mixed = jsonwebtoken::encode(&h, &claims(&idp, |_| {}), &k1.signing).unwrap();
    let (status, detail) = events(&base, &mixed).await;
    assert_eq!(status, 401, "{detail}");
    assert!(detail.contains("signs RS256 tokens"), "{detail}");
}
