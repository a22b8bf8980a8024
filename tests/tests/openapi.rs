//! The OpenAPI document covers every route the server mounts, and every documented operation is
//! really served.

use auditrail_shared::auth::Role;
use auditrail_tests::TestApp;
use axum::body::Body;

/// Every route of the product; adding a route means adding it here and to the document.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/v1/health"),
    ("get", "/v1/catalogue"),
    ("post", "/v1/events"),
    ("post", "/v1/sources/keycloak/events"),
    ("get", "/v1/events"),
    ("get", "/v1/events/{id}"),
    ("get", "/v1/events/{id}/proof"),
    ("get", "/v1/integrity/seals"),
    ("get", "/v1/integrity/seals/{seq}"),
    ("get", "/v1/integrity/consistency"),
    ("get", "/v1/sign-ins"),
    ("get", "/v1/sessions/{session_id}/events"),
    ("get", "/v1/requests"),
    ("get", "/v1/requests/{correlation_id}"),
    ("post", "/v1/error-reports"),
    ("get", "/v1/error-reports"),
    ("get", "/v1/error-reports/{id}"),
    ("get", "/v1/settings/retention"),
    ("put", "/v1/settings/retention"),
    ("get", "/v1/settings/access"),
    ("put", "/v1/settings/access"),
    ("get", "/v1/settings/keycloak"),
    ("put", "/v1/settings/keycloak"),
    ("post", "/v1/exports"),
    ("get", "/v1/exports"),
    ("get", "/v1/exports/{id}"),
    ("get", "/v1/exports/{id}/download"),
    ("delete", "/v1/exports/{id}"),
    ("post", "/v1/export-schedules"),
    ("get", "/v1/export-schedules"),
    ("delete", "/v1/export-schedules/{id}"),
    ("post", "/v1/attachments"),
    ("post", "/v1/attachments/upload-url"),
    ("post", "/v1/dpo/searches"),
    ("post", "/v1/dpo/reports"),
    ("post", "/v1/dpo/erasures"),
    ("get", "/v1/dpo/erasures/{id}"),
    ("get", "/v1/dpo/attachments/{record_id}/{n}"),
    ("get", "/v1/console/config"),
    ("post", "/v1/console/dev-sign-in"),
];

/// The SAM template's text.
fn template() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml")).unwrap()
}

/// Every route reaches a function through API Gateway: the SAM template has an HttpApi event
/// for each (the OpenAPI document itself included).
#[test]
fn every_route_is_wired_in_the_sam_template() {
    let template = template();
    let squashed: String = template.split_whitespace().collect::<Vec<_>>().join(" ");
    for (method, path) in ROUTES.iter().chain(&[("get", "/v1/openapi.json")]) {
        let wired = format!("Method: {} Path: {path}", method.to_uppercase());
        assert!(
            squashed.contains(&wired),
            "infra/template.yaml has no HttpApi event for {} {path}",
            method.to_uppercase()
        );
    }
}

/// Each function behind API Gateway gets exactly the routes its router serves: an HttpApi event
/// for every route of its route set, and no event for a route it would answer with 404. The
/// health and catalogue routes every function mounts are wired once, to `query`, which alone
/// serves the OpenAPI document.
#[tokio::test]
async fn each_function_is_wired_to_exactly_the_routes_it_serves() {
    use auditrail_shared::api::{routes, served};
    let app = TestApp::new().await;
    let template = template();
    // Per function (`Binary: name`), the `Method:` / `Path:` pairs of its events.
    let mut wired: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut method = None;
    for line in template.lines().map(str::trim) {
        if let Some(bin) = line.strip_prefix("Binary: ") {
            wired.push((bin.to_owned(), Vec::new()));
        } else if let Some(m) = line.strip_prefix("Method: ") {
            method = Some(m.to_lowercase());
        } else if let (Some(p), Some((_, routes))) = (line.strip_prefix("Path: "), wired.last_mut()) {
            routes.push((method.take().expect("Method before Path"), p.to_owned()));
        }
    }
    let functions: Vec<&str> = wired.iter().map(|(b, _)| b.as_str()).collect();
    let mut dirs: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../functions"))
        .unwrap()
        .map(|e| e.unwrap())
        // functions/.cargo is the Lambda builds' cargo configuration, not a function.
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut in_template = functions.clone();
    in_template.sort();
    assert_eq!(in_template, dirs, "every function crate is a function in the template, and only those");
    let always = [("get", "/v1/health"), ("get", "/v1/catalogue"), ("get", "/v1/openapi.json")];
    let always: Vec<(String, String)> = always.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    for (bin, mut events) in wired {
        let state = app.state.clone();
        let mut serves = match bin.as_str() {
            "ingest" => served::<routes::Ingest>(state),
            "query" => served::<routes::Query>(state),
            "exports" => served::<routes::Exports>(state),
            "dpo" => served::<routes::Dpo>(state),
            "error-reports" => served::<routes::ErrorReports>(state),
            // The console's public routes, and its files at `/` and every other GET path.
            "console" => {
                let mut s = served::<routes::Console>(state);
                s.extend([("get".to_owned(), "/".to_owned()), ("get".to_owned(), "/{proxy+}".to_owned())]);
                s.sort();
                s
            }
            // Workers and the scheduler serve no HTTP.
            _ => {
                assert!(events.is_empty(), "{bin} serves no routes but has HttpApi events {events:?}");
                continue;
            }
        };
        if bin != "query" {
            serves.retain(|r| !always.contains(r));
        }
        events.sort();
        assert_eq!(events, serves, "{bin}: template events vs the routes its router serves");
    }
}

/// Every function but `console` builds the whole state on AWS, which needs both keys: the template passes
/// every function the two SecureString parameter names and the policy to read them, and no
/// key value (or parameter-typed value) reaches any function's configuration.
#[test]
fn every_function_reads_both_keys_from_securestring_parameters() {
    let template = template();
    let globals = &template[template.find("Globals:").unwrap()..template.find("Resources:").unwrap()];
    for var in [
        "AUDITRAIL_CURSOR_KEY_PARAMETER: !Ref CursorKeyParameter",
        "AUDITRAIL_EXPORT_KEY_PARAMETER: !Ref ExportKeyParameter",
    ] {
        assert!(globals.contains(var), "Globals pass {var}");
    }
    assert!(
        !template.contains("AUDITRAIL_CURSOR_KEY:") && !template.contains("AUDITRAIL_EXPORT_KEY:"),
        "no key values in env"
    );
    assert!(!template.contains("AWS::SSM::Parameter::Value"), "no parameter values resolved into the template");
    // The functions read both keys in one GetParameters call (config::secrets_from_ssm).
    assert!(template.contains("Action: [ssm:GetParameters]"), "the policy allows the call the code makes");
    // Every function but `console`, which holds no data and reads no key.
    let functions = template.matches("Type: AWS::Serverless::Function").count();
    assert_eq!(
        template.matches("        - !Ref ReadKeysPolicy").count(),
        functions - 1,
        "every function but console may read the keys"
    );
    let console = &template[template.find("  ConsoleFunction:").unwrap()..template.find("  ConsoleLogs:").unwrap()];
    assert!(!console.contains("Policies"), "the console function gets no access beyond its logs");
}

/// The lines nested under the first of `lines` whose trimmed text starts with `key`: every
/// following line indented deeper, blank lines and comments included.
fn block<'a>(lines: &[&'a str], key: &str) -> Vec<&'a str> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let Some(at) = lines.iter().position(|l| l.trim_start().starts_with(key)) else {
        panic!("infra/template.yaml: no `{key}`");
    };
    let depth = indent(lines[at]);
    lines[at + 1..].iter().take_while(|l| l.trim().is_empty() || indent(l) > depth).copied().collect()
}

/// Every top-level entry of the template's `Resources:` (its name and its lines).
fn resources(template: &str) -> Vec<(String, Vec<&str>)> {
    let lines: Vec<&str> = template.lines().collect();
    let body = block(&lines, "Resources:");
    let mut out: Vec<(String, Vec<&str>)> = Vec::new();
    for l in body {
        match l.strip_prefix("  ").and_then(|r| r.strip_suffix(':')) {
            Some(name) if !name.starts_with([' ', '#']) => out.push((name.to_owned(), Vec::new())),
            _ => out.last_mut().expect("a resource first").1.push(l),
        }
    }
    out
}

/// Whether an IAM or key-policy text allows `kms:Sign`: by name, `kms:*`, a wildcard that covers
/// it (`kms:S*`), or `Action: "*"`.
fn grants_sign(lines: &[&str]) -> bool {
    lines.iter().map(|l| l.split('#').next().unwrap_or("")).any(|l| {
        let all = l.split([' ', '[', ']', ',', '"', '\'']).any(|t| t == "*") && l.trim_start().starts_with("Action:");
        all || l
            .split([' ', '[', ']', ',', '"', '\''])
            .filter_map(|t| t.strip_prefix("kms:"))
            .any(|a| a == "Sign" || a.strip_suffix('*').is_some_and(|prefix| "Sign".starts_with(prefix)))
    })
}

/// Tamper evidence on AWS (docs/integrity.md, issue #16): the signing key is an asymmetric
/// P-256 KMS key, only the scheduler (the sealer) may sign with it — by its IAM policy and by
/// the key policy — and the seal digests go to a bucket under Object Lock in compliance mode.
#[test]
fn the_sam_template_provisions_sealing_with_least_privilege() {
    let template = template();
    let resources = resources(&template);
    let resource = |name: &str| &resources.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name}")).1;
    let setting = |lines: &[&str], key: &str| {
        lines
            .iter()
            .map(|l| l.trim())
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .map(str::trim)
            .map(str::to_owned)
    };

    let key = resource("SealKey");
    assert_eq!(setting(key, "Type").as_deref(), Some("AWS::KMS::Key"));
    let props = block(key, "Properties:");
    assert_eq!(setting(&props, "KeySpec").as_deref(), Some("ECC_NIST_P256"));
    assert_eq!(setting(&props, "KeyUsage").as_deref(), Some("SIGN_VERIFY"));

    // Only the scheduler's role gets kms:Sign from an IAM policy; no other resource grants it.
    let signers: Vec<&str> =
        resources.iter().filter(|(n, lines)| n != "SealKey" && grants_sign(lines)).map(|(n, _)| n.as_str()).collect();
    assert_eq!(signers, ["SchedulerFunction"], "kms:Sign is granted only to the scheduler");
    assert_eq!(setting(resource("SchedulerFunction"), "Type").as_deref(), Some("AWS::Serverless::Function"));

    // The key policy: the one statement that allows Sign names the scheduler's role alone.
    let policy = block(&props, "KeyPolicy:");
    let statements: Vec<&[&str]> = policy.split(|l| l.trim_start().starts_with("- Sid:")).skip(1).collect();
    let effects = policy.iter().filter(|l| l.trim_start().starts_with("Effect:")).count();
    assert_eq!(statements.len(), effects, "every key-policy statement has a Sid");
    let signing: Vec<&&[&str]> = statements.iter().filter(|s| grants_sign(s)).collect();
    assert_eq!(signing.len(), 1, "one key-policy statement allows kms:Sign: {signing:?}");
    let text = signing[0].join("\n");
    assert!(text.contains("Effect: Allow") && text.contains("ArnLike:") && text.contains("aws:PrincipalArn:"));
    let functions: Vec<&str> = resources
        .iter()
        .filter(|(_, lines)| setting(lines, "Type").as_deref() == Some("AWS::Serverless::Function"))
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(functions.len() > 5, "{functions:?}");
    let named: Vec<&str> = functions.iter().copied().filter(|f| text.contains(&format!("-{f}Role-"))).collect();
    assert_eq!(named, ["SchedulerFunction"], "the key lets only the scheduler function's role sign: {text}");

    let bucket = resource("SealBucket");
    assert_eq!(setting(bucket, "Type").as_deref(), Some("AWS::S3::Bucket"));
    let props = block(bucket, "Properties:");
    assert!(props.iter().any(|l| l.trim() == "ObjectLockEnabled: true"), "Object Lock is on");
    let lock = block(&props, "ObjectLockConfiguration:");
    assert_eq!(setting(&lock, "ObjectLockEnabled").as_deref(), Some("Enabled"));
    let retention = block(&lock, "DefaultRetention:");
    assert_eq!(setting(&retention, "Mode").as_deref(), Some("COMPLIANCE"));
    assert!(setting(&retention, "Days").is_some() || setting(&retention, "Years").is_some(), "a lock period");
    // The digests are written where the scheduler writes them: the AUDITRAIL_SEAL_* variables
    // name this key and this bucket.
    assert!(template.contains("AUDITRAIL_SEAL_KMS_KEY: !Ref SealKey"));
    assert!(template.contains("AUDITRAIL_SEAL_BUCKET: !Ref SealBucket"));
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_route_is_served() {
    let app = TestApp::new().await;
    let doc = app.call("GET", "/v1/openapi.json", None, None, Body::empty()).await;
    assert_eq!(doc.status.as_u16(), 200);
    assert_eq!(doc.body["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    let paths = doc.body["paths"].as_object().expect("paths");
    let mut documented: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(p, item)| item.as_object().unwrap().keys().map(move |m| (m.clone(), p.clone())))
        .collect();
    documented.sort();
    let mut want: Vec<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    want.sort();
    assert_eq!(documented, want);

    let token = app.token("acme", &[Role::TenantAdmin]);
    for (method, path) in ROUTES {
        let op = &paths[*path][*method];
        let responses = op["responses"].as_object().unwrap();
        assert!(responses.keys().any(|k| k.starts_with('2')), "{method} {path} documents its success");
        if op.get("security").is_none() {
            for code in ["401", "403"] {
                assert!(responses.contains_key(code), "{method} {path} documents {code}");
            }
        }
        let uri = path
            .replace("{session_id}", "s-1")
            .replace("{correlation_id}", "c-1")
            .replace("{id}", "r-1")
            .replace("{record_id}", "r-1")
            .replace("{n}", "0");
        let r = app.call(&method.to_uppercase(), &uri, Some(&token), Some("application/json"), Body::from("[]")).await;
        let not_found =
            r.status.as_u16() == 404 && r.body["detail"].as_str().unwrap_or("").starts_with("no such route");
        assert!(!not_found, "{method} {path} is documented but not served");
        assert_ne!(r.status.as_u16(), 405, "{method} {path} is documented but not served");
    }
}

/// Tamper evidence as provisioned (docs/integrity.md): an asymmetric P-256 key only the
/// scheduler may sign with, and a bucket whose digests are locked in compliance mode, which no
/// function may delete from.
#[test]
fn the_seal_key_and_the_object_lock_bucket_are_least_privilege() {
    let template = template();
    // A resource's text: from its `  Name:` line to the next resource's.
    let section = |start: &str| {
        let from = template.find(start).unwrap_or_else(|| panic!("{start} in the template"));
        let mut out = String::new();
        for (i, line) in template[from..].lines().enumerate() {
            let next_resource = line.len() > 2 && line.starts_with("  ") && line.as_bytes()[2].is_ascii_alphabetic();
            if i > 0 && next_resource {
                break;
            }
            out.push_str(line);
            out.push('\n');
        }
        out
    };
    let key = section("  SealKey:\n");
    assert!(key.contains("KeySpec: ECC_NIST_P256") && key.contains("KeyUsage: SIGN_VERIFY"), "{key}");
    let bucket = section("  SealBucket:\n");
    assert!(bucket.contains("Mode: COMPLIANCE") && bucket.contains("ObjectLockEnabled: true"), "{bucket}");
    assert!(bucket.contains("Status: Enabled"), "Object Lock needs versioning");
    let signers: Vec<&str> = [
        "IngestFunction",
        "QueryFunction",
        "ExportsFunction",
        "ExportWorkerFunction",
        "DpoFunction",
        "DpoWorkerFunction",
        "ErrorReportsFunction",
        "SchedulerFunction",
    ]
    .into_iter()
    .filter(|f| section(&format!("  {f}:\n")).contains("kms:Sign"))
    .collect();
    assert_eq!(signers, ["SchedulerFunction"], "only the sealer signs");
    for f in ["QueryFunction", "SchedulerFunction"] {
        let s = section(&format!("  {f}:\n"));
        assert!(s.contains("${SealBucket.Arn}/tenants/*/seals/*"), "{f} reads the digests");
    }
    assert!(!template.contains("s3:BypassGovernanceRetention") && !template.contains("s3:PutObjectRetention"));
    let on_seal_bucket = |action: &str| {
        template.lines().zip(template.lines().skip(1)).any(|(a, b)| a.contains(action) && b.contains("SealBucket.Arn"))
    };
    assert!(!on_seal_bucket("s3:DeleteObject"), "no function deletes a digest");
}

/// The shared library's features and the packages cargo resolves when run in `dir`, the way
/// `sam build` runs `cargo lambda build` in a function's CodeUri.
fn resolved_in(dir: &str) -> (Vec<String>, Vec<String>) {
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let tree = |args: &[&str]| {
        let out = std::process::Command::new(cargo)
            .args(["tree", "--locked", "--offline", "--prefix", "none"])
            .args(args)
            .current_dir(dir)
            .output()
            .expect("cargo tree runs");
        assert!(out.status.success(), "cargo tree in {dir}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let mut features: Vec<String> = tree(&["-e", "features", "-i", "auditrail-shared"])
        .lines()
        .filter_map(|l| l.strip_prefix("auditrail-shared feature \"")?.split('"').next().map(str::to_owned))
        .collect();
    features.sort();
    features.dedup();
    let mut packages: Vec<String> =
        tree(&["-e", "normal"]).lines().filter_map(|l| l.split(' ').next().map(str::to_owned)).collect();
    packages.sort();
    packages.dedup();
    (features, packages)
}

/// What a deployed function links is what cargo resolves in its CodeUri: every function's
/// CodeUri is its own package, and resolved there the shared library has no embedded store, no
/// local tokens, no OIDC client and no test kit, and only `query` and `scheduler` link the KMS
/// client. At the workspace root (where SAM would build with `CodeUri: ..`) every member's
/// features are unified into each function: the test kit and SQLite with them.
#[test]
fn sam_builds_each_function_from_its_own_package_with_only_what_it_uses() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let (unified, packages) = resolved_in(root);
    assert!(unified.contains(&"testkit".to_owned()) && packages.contains(&"rusqlite".to_owned()), "{unified:?}");

    let template = template();
    let mut binary = None;
    let mut functions = 0;
    for line in template.lines().map(str::trim) {
        if let Some(b) = line.strip_prefix("Binary: ") {
            binary = Some(b.to_owned());
        } else if let Some(uri) = line.strip_prefix("CodeUri: ") {
            let bin = binary.take().expect("BuildProperties.Binary before CodeUri");
            assert_eq!(uri, format!("../functions/{bin}"), "{bin}: CodeUri");
            let (features, packages) = resolved_in(&format!("{root}/functions/{bin}"));
            let expected: &[&str] = match bin.as_str() {
                "console" => &["lambda"],
                // mimalloc: the ingest path's allocation-heavy parse (`shared::allocator`).
                "ingest" => &["aws", "lambda", "mimalloc"],
                "query" => &["aws", "kms", "lambda"],
                "scheduler" => &["aws", "keycloak-pull", "kms", "lambda"],
                _ => &["aws", "lambda"],
            };
            assert_eq!(features, expected, "{bin}: auditrail-shared features as SAM builds it");
            for never in ["rusqlite", "libsqlite3-sys", "jsonwebtoken", "reqwest", "auditrail-tests", "auditrail"] {
                assert!(!packages.iter().any(|p| p == never), "{bin} links {never}");
            }
            let kms = packages.iter().any(|p| p == "aws-sdk-kms");
            assert_eq!(kms, expected.contains(&"kms"), "{bin}: aws-sdk-kms linked = {kms}");
            functions += 1;
        }
    }
    assert_eq!(functions, 9, "every function in the template was checked");
}
