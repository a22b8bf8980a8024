//! Configuration from the environment, validated at start-up with messages that name the
//! variable. Absent AWS settings mean the embedded store under a data directory.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `AUDITRAIL_DATA_DIR` | embedded store and local keys | `.auditrail` |
//! | `AUDITRAIL_AUTH` | `local` (HS256 tokens), `oidc` (an OpenID Connect issuer's RS256/ES256 tokens) or `apigw` (API Gateway JWT authorizer) | `local` |
//! | `AUDITRAIL_OIDC_ISSUER` | the issuer (`oidc`; on AWS, the authorizer's, for the console) | — |
//! | `AUDITRAIL_OIDC_AUDIENCE` | the `aud` access tokens must carry (`oidc`) | the client id |
//! | `AUDITRAIL_OIDC_AZP_FALLBACK` | `1`: accept a token without that `aud` whose `azp` is the audience (Keycloak) | `0` |
//! | `AUDITRAIL_OIDC_CLIENT_ID` | the console's client id at the issuer | — |
//! | `AUDITRAIL_OIDC_SCOPES` | scopes the console asks for | `openid profile email` |
//! | `AUDITRAIL_OIDC_TENANT_CLAIM` | claim (dotted path) holding the tenant id | `tenant_id` |
//! | `AUDITRAIL_OIDC_ROLES_CLAIM` | claim (dotted path) holding the roles | `realm_access.roles` |
//! | `AUDITRAIL_OIDC_MIN_REFRESH_SECS` | least seconds between key-set fetches for unknown key ids | `30` |
//! | `AUDITRAIL_JWT_SECRET` | local HS256 key (≥ 32 bytes) | generated into the data dir |
//! | `AUDITRAIL_CURSOR_KEY` | HMAC key for page cursors (≥ 32 bytes) | generated into the data dir |
//! | `AUDITRAIL_EXPORT_KEY` | key sealing export passwords in task records (≥ 32 bytes) | generated into the data dir |
//! | `AUDITRAIL_SEAL_KEY` | secret the seal-signing P-256 key is derived from (≥ 32 bytes; embedded store) | generated into the data dir |
//! | `AUDITRAIL_CURSOR_KEY_PARAMETER`, `AUDITRAIL_EXPORT_KEY_PARAMETER` | on AWS: names of SSM SecureString parameters holding those keys, read at start-up (the SAM template sets them) | — |
//! | `AUDITRAIL_TABLE`, `AUDITRAIL_BUCKET` | DynamoDB table and S3 bucket | unset → embedded |
//! | `AUDITRAIL_SEAL_KMS_KEY` | asymmetric KMS key (ECC_NIST_P256) that signs seals on AWS | a key derived from the export key |
//! | `AUDITRAIL_SEAL_BUCKET` | S3 bucket with Object Lock (compliance mode) for seal digests | `AUDITRAIL_BUCKET` |
//! | `AUDITRAIL_KEYCLOAK_URL`, `AUDITRAIL_KEYCLOAK_REALM`, `AUDITRAIL_KEYCLOAK_TENANT`, `AUDITRAIL_KEYCLOAK_CLIENT_ID` | pull that realm's events into that tenant on every housekeeping round (the service account needs `view-events`) | no puller |
//! | `AUDITRAIL_KEYCLOAK_CLIENT_SECRET` or `AUDITRAIL_KEYCLOAK_CLIENT_SECRET_PARAMETER` | the client's secret, or the SSM SecureString holding it (read with the keys, in the same call) | — |
//! | `AUDITRAIL_CHECK_ON_START` | `1`: check the table and bucket exist at start-up (two round trips) | `1` for `serve`, `0` in Lambda |

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::app::App;
use crate::auth::Authenticator;

mod keycloak;
mod logging;
pub use keycloak::KeycloakPullConfig;
pub use logging::{init_tracing, json_log_layer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    Local,
    /// Access tokens of one OpenID Connect issuer, verified here against its JWKS.
    Oidc,
    ApiGateway,
}

/// The OpenID Connect settings (`AUDITRAIL_OIDC_*`).
#[derive(Debug, Clone, Default)]
pub struct OidcConfig {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// Accept `azp` = audience when `aud` lacks it (Keycloak access tokens).
    pub azp_fallback: bool,
    pub client_id: Option<String>,
    pub scopes: Option<String>,
    pub tenant_claim: Option<String>,
    pub roles_claim: Option<String>,
    /// The least seconds between two key-set fetches caused by unknown key ids (default 30).
    pub min_refresh_secs: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub auth: AuthMode,
    pub oidc: OidcConfig,
    pub jwt_secret: Option<Vec<u8>>,
    pub cursor_key: Option<Vec<u8>>,
    pub export_key: Option<Vec<u8>>,
    /// The secret the seal-signing P-256 key is derived from (embedded store).
    pub seal_key: Option<Vec<u8>>,
    /// SSM SecureString parameter names the keys are read from (AWS storage only).
    pub cursor_key_parameter: Option<String>,
    pub export_key_parameter: Option<String>,
    pub table: Option<String>,
    pub bucket: Option<String>,
    /// The asymmetric KMS key (ECC_NIST_P256) seals are signed with on AWS.
    pub seal_kms_key: Option<String>,
    /// The Object Lock bucket seal digests are written to on AWS (default: `bucket`).
    pub seal_bucket: Option<String>,
    /// Check at start-up that the table and bucket exist (`AUDITRAIL_CHECK_ON_START=1`; on by
    /// default for `auditrail serve`, off in Lambda so a cold start costs no extra round trips).
    pub check_on_start: bool,
    /// This process serves the embedded store (`auditrail serve`): it owns the store's inbox
    /// (an append is answered once its records are in the inbox's log; an indexer thread moves
    /// them into SQLite behind it) and runs its text indexer. Off for one-off commands beside a
    /// server, which write to SQLite directly.
    pub serving: bool,
    pub keycloak: Option<KeycloakPullConfig>,
}

fn secret_var(name: &str) -> anyhow::Result<Option<Vec<u8>>> {
    match std::env::var(name) {
        Ok(v) if v.len() >= 32 => Ok(Some(v.into_bytes())),
        Ok(_) => bail!("{name} must be at least 32 bytes long"),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(e) => bail!("{name}: {e}"),
    }
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let auth = match std::env::var("AUDITRAIL_AUTH").as_deref() {
            Ok("local") | Err(_) => AuthMode::Local,
            Ok("oidc") => AuthMode::Oidc,
            Ok("apigw") => AuthMode::ApiGateway,
            Ok(other) => bail!("AUDITRAIL_AUTH must be `local`, `oidc` or `apigw`, not `{other}`"),
        };
        let nonempty = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let oidc = OidcConfig {
            issuer: nonempty("AUDITRAIL_OIDC_ISSUER"),
            audience: nonempty("AUDITRAIL_OIDC_AUDIENCE"),
            azp_fallback: match nonempty("AUDITRAIL_OIDC_AZP_FALLBACK").as_deref() {
                None | Some("0" | "false") => false,
                Some("1" | "true") => true,
                Some(other) => bail!("AUDITRAIL_OIDC_AZP_FALLBACK must be 1 or 0, not `{other}`"),
            },
            client_id: nonempty("AUDITRAIL_OIDC_CLIENT_ID"),
            scopes: nonempty("AUDITRAIL_OIDC_SCOPES"),
            tenant_claim: nonempty("AUDITRAIL_OIDC_TENANT_CLAIM"),
            roles_claim: nonempty("AUDITRAIL_OIDC_ROLES_CLAIM"),
            min_refresh_secs: match nonempty("AUDITRAIL_OIDC_MIN_REFRESH_SECS") {
                None => None,
                Some(v) => {
                    Some(v.parse().with_context(|| format!("AUDITRAIL_OIDC_MIN_REFRESH_SECS: `{v}` is not seconds"))?)
                }
            },
        };
        Ok(Self {
            oidc,
            data_dir: nonempty("AUDITRAIL_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".auditrail")),
            auth,
            jwt_secret: secret_var("AUDITRAIL_JWT_SECRET")?,
            cursor_key: secret_var("AUDITRAIL_CURSOR_KEY")?,
            export_key: secret_var("AUDITRAIL_EXPORT_KEY")?,
            seal_key: secret_var("AUDITRAIL_SEAL_KEY")?,
            cursor_key_parameter: nonempty("AUDITRAIL_CURSOR_KEY_PARAMETER"),
            export_key_parameter: nonempty("AUDITRAIL_EXPORT_KEY_PARAMETER"),
            table: nonempty("AUDITRAIL_TABLE"),
            bucket: nonempty("AUDITRAIL_BUCKET"),
            seal_kms_key: nonempty("AUDITRAIL_SEAL_KMS_KEY"),
            seal_bucket: nonempty("AUDITRAIL_SEAL_BUCKET"),
            check_on_start: match nonempty("AUDITRAIL_CHECK_ON_START").as_deref() {
                None | Some("0" | "false") => false,
                Some("1" | "true") => true,
                Some(other) => bail!("AUDITRAIL_CHECK_ON_START must be 1 or 0, not `{other}`"),
            },
            serving: false,
            keycloak: KeycloakPullConfig::from_env(nonempty)?,
        })
    }

    /// The embedded configuration for a data directory (CLI, tests).
    pub fn embedded(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_owned(),
            auth: AuthMode::Local,
            oidc: OidcConfig::default(),
            jwt_secret: None,
            cursor_key: None,
            export_key: None,
            seal_key: None,
            cursor_key_parameter: None,
            export_key_parameter: None,
            table: None,
            bucket: None,
            seal_kms_key: None,
            seal_bucket: None,
            check_on_start: false,
            serving: false,
            keycloak: None,
        }
    }

    /// A key from the environment, or one kept in the data directory (created on first use,
    /// readable by the owner only) so tokens and cursors survive restarts.
    #[cfg(any(feature = "local-auth", feature = "embedded", feature = "aws"))]
    fn key(&self, given: &Option<Vec<u8>>, file: &str) -> anyhow::Result<Vec<u8>> {
        if let Some(k) = given {
            return Ok(k.clone());
        }
        let dir = self.data_dir.join("keys");
        let path = dir.join(file);
        if let Ok(k) = std::fs::read(&path) {
            anyhow::ensure!(k.len() >= 32, "{} is shorter than 32 bytes", path.display());
            return Ok(k);
        }
        crate::private_fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut k = vec![0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut k);
        write_private(&path, &k)?;
        Ok(k)
    }

    pub fn authenticator(&self) -> anyhow::Result<Authenticator> {
        Ok(match self.auth {
            AuthMode::ApiGateway => Authenticator::ApiGateway,
            AuthMode::Oidc => self.oidc_authenticator()?,
            #[cfg(feature = "local-auth")]
            AuthMode::Local => Authenticator::local(&self.key(&self.jwt_secret, "jwt.key")?),
            #[cfg(not(feature = "local-auth"))]
            AuthMode::Local => bail!(
                "AUDITRAIL_AUTH=local, but this build verifies no tokens itself: set AUDITRAIL_AUTH=apigw \
                 behind API Gateway's JWT authorizer, or build with the `local` feature"
            ),
        })
    }

    #[cfg(feature = "oidc")]
    fn oidc_authenticator(&self) -> anyhow::Result<Authenticator> {
        use crate::auth::oidc::{DEFAULT_ROLES_CLAIM, DEFAULT_TENANT_CLAIM, OidcSettings, OidcVerifier};
        let o = &self.oidc;
        let issuer = o.issuer.clone().context("AUDITRAIL_AUTH=oidc needs AUDITRAIL_OIDC_ISSUER (the issuer URL)")?;
        let audience = o.audience.clone().or_else(|| o.client_id.clone()).context(
            "AUDITRAIL_AUTH=oidc needs AUDITRAIL_OIDC_AUDIENCE (the `aud` tokens carry) or AUDITRAIL_OIDC_CLIENT_ID",
        )?;
        let min_refresh = std::time::Duration::from_secs(o.min_refresh_secs.unwrap_or(30));
        Ok(Authenticator::Oidc(Box::new(OidcVerifier::new(OidcSettings {
            issuer,
            audience,
            azp_fallback: o.azp_fallback,
            tenant_claim: o.tenant_claim.clone().unwrap_or_else(|| DEFAULT_TENANT_CLAIM.to_owned()),
            roles_claim: o.roles_claim.clone().unwrap_or_else(|| DEFAULT_ROLES_CLAIM.to_owned()),
            min_refresh,
        })?)))
    }

    #[cfg(not(feature = "oidc"))]
    fn oidc_authenticator(&self) -> anyhow::Result<Authenticator> {
        bail!("AUDITRAIL_AUTH=oidc is for `auditrail serve`; this binary was built without it")
    }

    /// Builds the service container with the store the configuration names: DynamoDB + S3 when
    /// `AUDITRAIL_TABLE` / `AUDITRAIL_BUCKET` are set, else the embedded store.
    pub async fn app(&self) -> anyhow::Result<App> {
        if self.table.is_some() || self.bucket.is_some() {
            return self.aws_app().await;
        }
        self.embedded_app()
    }

    /// The DynamoDB store of `AUDITRAIL_TABLE` alone (maintenance commands).
    #[cfg(feature = "aws")]
    pub fn dynamo_store(&self) -> anyhow::Result<crate::store::dynamodb::DynamoStore> {
        let table = self.table.clone().context("AUDITRAIL_TABLE names the DynamoDB table to upgrade")?;
        let sdk = crate::store::dynamodb::sdk_config()?;
        Ok(crate::store::dynamodb::DynamoStore::new(crate::store::dynamodb::dynamodb_client(&sdk), table))
    }

    #[cfg(feature = "aws")]
    async fn aws_app(&self) -> anyhow::Result<App> {
        use crate::blob::s3::S3BlobStore;
        use crate::store::dynamodb::DynamoStore;
        let table = self.table.clone().context("AUDITRAIL_TABLE must be set together with AUDITRAIL_BUCKET")?;
        let bucket = self.bucket.clone().context("AUDITRAIL_BUCKET must be set together with AUDITRAIL_TABLE")?;
        let sdk = crate::store::dynamodb::sdk_config()?;
        let records = DynamoStore::new(crate::store::dynamodb::dynamodb_client(&sdk), table.clone());
        // The emulator (AWS_ENDPOINT_URL) needs path-style addressing.
        let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some();
        let s3 =
            aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(path_style).build());
        let blobs = S3BlobStore::new(s3.clone(), bucket.clone());
        let seal_blobs = self.seal_bucket.clone().map(|b| S3BlobStore::new(s3, b));
        // A cold start makes at most one round trip before the first event: the keys' one
        // GetParameters. Checking the table and bucket costs two more; `serve` and
        // `AUDITRAIL_CHECK_ON_START=1` ask for it, so a typo fails at start-up, not at first use.
        if self.check_on_start {
            tokio::try_join!(
                async { records.check().await.with_context(|| format!("AUDITRAIL_TABLE={table}")) },
                async { blobs.check().await.with_context(|| format!("AUDITRAIL_BUCKET={bucket}")) },
            )?;
        }
        let (cursor_key, export_key, keycloak_secret) = self.aws_keys(&sdk).await?;
        let mut app = App::new(records, blobs, &cursor_key, &export_key);
        #[cfg(feature = "keycloak-pull")]
        if let Some(k) = &self.keycloak {
            app = app.with_keycloak(k.puller(keycloak_secret.as_deref())?);
        }
        #[cfg(not(feature = "keycloak-pull"))]
        let _ = keycloak_secret;
        if let Some(seal_blobs) = seal_blobs {
            app = app.with_seal_blobs(std::sync::Arc::new(seal_blobs));
        }
        // No call at start-up: the public key is fetched on first use (sealing, the seals route).
        // Functions built without `kms` never sign nor publish the key, so they ignore it.
        #[cfg(feature = "kms")]
        if let Some(key) = &self.seal_kms_key {
            let kms = aws_sdk_kms::Client::new(&sdk);
            app = app.with_signer(std::sync::Arc::new(crate::kms::KmsSigner::new(kms, key.clone())));
        }
        Ok(app)
    }

    /// Both keys on AWS storage: given directly, else read from their SSM parameters in one
    /// GetParameters call (with the Keycloak client's secret, when the puller reads it from SSM);
    /// with local auth (`cargo lambda watch` against moto) they may come from the data directory.
    #[cfg(feature = "aws")]
    async fn aws_keys(&self, sdk: &aws_config::SdkConfig) -> anyhow::Result<(Vec<u8>, Vec<u8>, Option<Vec<u8>>)> {
        let wanted = [
            ("CURSOR", &self.cursor_key, &self.cursor_key_parameter, "cursor.key"),
            ("EXPORT", &self.export_key, &self.export_key_parameter, "export.key"),
        ];
        let mut names: Vec<String> = wanted
            .iter()
            .filter(|(_, direct, _, _)| direct.is_none())
            .filter_map(|(_, _, p, _)| (*p).clone())
            .collect();
        // One name for both keys is read once (and, below, used twice).
        names.sort();
        names.dedup();
        // The Keycloak client's secret rides along (Keycloak's are 32 characters; any length is
        // accepted for it).
        let keycloak_parameter = self
            .keycloak
            .as_ref()
            .filter(|k| k.client_secret.is_none())
            .and_then(|k| k.client_secret_parameter.clone());
        if let Some(p) = &keycloak_parameter {
            names.push(p.clone());
        }
        let from_ssm = if names.is_empty() {
            Default::default()
        } else {
            secrets_from_ssm(sdk, &names, keycloak_parameter.as_slice()).await?
        };
        let mut keys = Vec::new();
        for (which, direct, parameter, file) in wanted {
            keys.push(match (direct, parameter, self.auth) {
                (Some(k), _, _) => k.clone(),
                (None, Some(name), _) => from_ssm.get(name).cloned().context("GetParameters left a parameter out")?,
                (None, None, AuthMode::Local) => self.key(&None, file)?,
                (None, None, AuthMode::ApiGateway | AuthMode::Oidc) => bail!(
                    "AUDITRAIL_{which}_KEY_PARAMETER (an SSM SecureString parameter name) or AUDITRAIL_{which}_KEY \
                     (≥ 32 bytes) must be set when running on AWS"
                ),
            });
        }
        let export = keys.pop().expect("two keys");
        let keycloak = keycloak_parameter.and_then(|p| from_ssm.get(&p).cloned());
        Ok((keys.pop().expect("two keys"), export, keycloak))
    }

    #[cfg(not(feature = "aws"))]
    async fn aws_app(&self) -> anyhow::Result<App> {
        bail!(
            "AUDITRAIL_TABLE / AUDITRAIL_BUCKET are set, but this binary was built without the AWS back end; \
             unset them to use the embedded store"
        )
    }

    #[cfg(feature = "embedded")]
    fn embedded_app(&self) -> anyhow::Result<App> {
        crate::private_fs::create_dir(&self.data_dir)
            .with_context(|| format!("AUDITRAIL_DATA_DIR: cannot create {}", self.data_dir.display()))?;
        let records = crate::store::sqlite::SqliteStore::open(&self.data_dir.join("auditrail.db"))
            .with_context(|| format!("opening the embedded store in {}", self.data_dir.display()))?;
        if self.serving {
            records.start_inbox().context("starting the embedded store's inbox")?;
            records.start_text_indexer();
        }
        let blobs = crate::blob::fs::FsBlobStore::open(&self.data_dir.join("blobs"))?;
        let cursor_key = self.key(&self.cursor_key, "cursor.key")?;
        let export_key = self.key(&self.export_key, "export.key")?;
        let seal_key = self.key(&self.seal_key, "seal.key")?;
        let app = App::new(records, blobs, &cursor_key, &export_key)
            .with_signer(std::sync::Arc::new(crate::seal::LocalSigner::from_secret(&seal_key)));
        #[cfg(feature = "keycloak-pull")]
        if let Some(k) = &self.keycloak {
            return Ok(app.with_keycloak(k.puller(None)?));
        }
        Ok(app)
    }

    #[cfg(not(feature = "embedded"))]
    fn embedded_app(&self) -> anyhow::Result<App> {
        bail!(
            "this binary has no embedded store (Lambda functions run on DynamoDB + S3 only); set AUDITRAIL_TABLE \
             and AUDITRAIL_BUCKET"
        )
    }
}

/// Reads keys from SSM SecureString parameters (decrypted) in one GetParameters call: name →
/// bytes. Only SecureStrings are accepted, and at least 32 bytes (but for the names in
/// `any_length`); errors name the parameter, never its value.
#[cfg(feature = "aws")]
pub async fn secrets_from_ssm(
    sdk: &aws_config::SdkConfig,
    names: &[String],
    any_length: &[String],
) -> anyhow::Result<std::collections::HashMap<String, Vec<u8>>> {
    use aws_sdk_ssm::types::ParameterType;
    let out = aws_sdk_ssm::Client::new(sdk)
        .get_parameters()
        .set_names(Some(names.to_vec()))
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "reading the SSM parameters {}: {}",
                names.join(", "),
                aws_sdk_ssm::error::DisplayErrorContext(&e)
            )
        })?;
    if let Some(missing) = out.invalid_parameters.as_ref().filter(|m| !m.is_empty()) {
        bail!("the SSM parameter(s) {} do not exist (ParameterNotFound)", missing.join(", "));
    }
    let mut keys = std::collections::HashMap::new();
    for param in out.parameters.unwrap_or_default() {
        let name = param.name.clone().unwrap_or_default();
        match param.r#type {
            Some(ParameterType::SecureString) => {}
            other => bail!(
                "the SSM parameter {name} must be a SecureString (it is {}): keys are not kept in plain parameters",
                other.as_ref().map_or("untyped", |t| t.as_str())
            ),
        }
        let value = param.value.with_context(|| format!("the SSM parameter {name} has no value"))?;
        if value.len() < 32 && !any_length.contains(&name) {
            bail!("the SSM parameter {name} must hold at least 32 bytes");
        }
        keys.insert(name, value.into_bytes());
    }
    for n in names {
        anyhow::ensure!(keys.contains_key(n), "the SSM parameter {n} has no value");
    }
    Ok(keys)
}

#[cfg(any(feature = "local-auth", feature = "embedded", feature = "aws"))]
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The embedded data directory (built by the configuration) is private.
    #[cfg(all(unix, feature = "embedded"))]
    mod private_data_dir {
        use std::os::unix::fs::PermissionsExt;

        use crate::config::Config;
        use crate::record::{Actor, Record};
        use crate::store::BlobKey;

        fn walk(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, bool, u32)>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let e = e.unwrap();
                let meta = e.metadata().unwrap();
                out.push((e.path(), meta.is_dir(), meta.permissions().mode() & 0o777));
                if meta.is_dir() {
                    walk(&e.path(), out);
                }
            }
        }

        #[tokio::test]
        async fn the_data_directory_is_readable_by_its_owner_only() {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("data");
            let state = Config::embedded(&dir).app().await.unwrap();
            Config::embedded(&dir).authenticator().unwrap(); // the token key
            let rec = Record::system("acme", "AUDIT_SEARCH", Actor::default(), None, serde_json::json!({"q": "x"}));
            state.records.append("acme", &[rec]).await.unwrap();
            let key = BlobKey::new("acme", "attachments", "a1").unwrap();
            state.blobs.put(&key, bytes::Bytes::from_static(b"secret"), "text/plain").await.unwrap();
            let up = BlobKey::new("acme", "exports", "e1").unwrap();
            let id = state.blobs.start_upload(&up, "application/zip").await.unwrap();
            state.blobs.upload_part(&up, &id, 1, bytes::Bytes::from_static(b"part")).await.unwrap();

            let mut seen = vec![(dir.clone(), true, std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777)];
            walk(&dir, &mut seen);
            let names: Vec<String> = seen.iter().map(|(p, _, _)| p.display().to_string()).collect();
            for needed in ["auditrail.db", "auditrail.db-wal", "auditrail.db-shm", "a1", "part-00001", "jwt.key"] {
                assert!(names.iter().any(|n| n.ends_with(needed)), "{needed} in {names:#?}");
            }
            for (path, is_dir, mode) in seen {
                let want = if is_dir { 0o700 } else { 0o600 };
                assert_eq!(mode, want, "{} is {mode:o}", path.display());
            }
        }
    }

    /// Keys from SSM.
    #[cfg(feature = "aws")]
    mod ssm {
        use aws_sdk_ssm::types::ParameterType;

        use crate::config::secrets_from_ssm;

        async fn secret_from_ssm(sdk: &aws_config::SdkConfig, name: &str) -> anyhow::Result<Vec<u8>> {
            Ok(secrets_from_ssm(sdk, &[name.to_owned()], &[]).await?.remove(name).unwrap())
        }
        use crate::testkit::moto as testenv;

        /// Keys come only from SecureStrings of ≥ 32 bytes; no error ever shows a value.
        #[tokio::test]
        async fn keys_are_read_from_securestring_parameters_only() {
            let sdk = testenv::sdk_config(&testenv::endpoint()).await;
            let ssm = aws_sdk_ssm::Client::new(&sdk);
            let run = ulid::Ulid::generate().to_string().to_lowercase();
            let put = |name: &str, value: &str, kind: ParameterType| {
                ssm.put_parameter().name(format!("/auditrail/{run}/{name}")).value(value).r#type(kind).send()
            };
            let good = "k".repeat(24) + "-secret-cursor-key-01";
            put("good", &good, ParameterType::SecureString).await.unwrap();
            put("plain", &("p".repeat(24) + "-plain-text-key-0001"), ParameterType::String).await.unwrap();
            put("short", "short-secret-value", ParameterType::SecureString).await.unwrap();

            let key = secret_from_ssm(&sdk, &format!("/auditrail/{run}/good")).await.unwrap();
            assert_eq!(key, good.as_bytes());

            let e = secret_from_ssm(&sdk, &format!("/auditrail/{run}/plain")).await.unwrap_err().to_string();
            assert!(e.contains("must be a SecureString") && e.contains("/plain"), "{e}");
            assert!(!e.contains("plain-text-key"), "no value in errors: {e}");
            let e = secret_from_ssm(&sdk, &format!("/auditrail/{run}/short")).await.unwrap_err().to_string();
            assert!(e.contains("at least 32 bytes") && !e.contains("short-secret-value"), "{e}");
            let e = secret_from_ssm(&sdk, &format!("/auditrail/{run}/missing")).await.unwrap_err().to_string();
            assert!(e.contains(&format!("/auditrail/{run}/missing")) && e.contains("ParameterNotFound"), "{e}");

            // Both keys in one call, each under its name.
            let other = "o".repeat(24) + "-secret-export-key-01";
            put("other", &other, ParameterType::SecureString).await.unwrap();
            let both =
                secrets_from_ssm(&sdk, &[format!("/auditrail/{run}/good"), format!("/auditrail/{run}/other")], &[])
                    .await
                    .unwrap();
            assert_eq!(both[&format!("/auditrail/{run}/good")], good.as_bytes());
            assert_eq!(both[&format!("/auditrail/{run}/other")], other.as_bytes());
        }
    }
}
