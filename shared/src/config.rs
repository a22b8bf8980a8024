//! Configuration from the environment, validated at start-up with messages that name the
//! variable. Absent AWS settings mean the embedded store under a data directory.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `AUDITRAIL_DATA_DIR` | embedded store and local keys | `.auditrail` |
//! | `AUDITRAIL_AUTH` | `local` (HS256 tokens) or `apigw` (API Gateway JWT authorizer) | `local` |
//! | `AUDITRAIL_JWT_SECRET` | local HS256 key (≥ 32 bytes) | generated into the data dir |
//! | `AUDITRAIL_CURSOR_KEY` | HMAC key for page cursors (≥ 32 bytes) | generated into the data dir |
//! | `AUDITRAIL_EXPORT_KEY` | key sealing export passwords in task records (≥ 32 bytes) | generated into the data dir |
//! | `AUDITRAIL_CURSOR_KEY_PARAMETER`, `AUDITRAIL_EXPORT_KEY_PARAMETER` | on AWS: names of SSM SecureString parameters holding those keys, read at start-up (the SAM template sets them) | — |
//! | `AUDITRAIL_TABLE`, `AUDITRAIL_BUCKET` | DynamoDB table and S3 bucket | unset → embedded |

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rand::RngCore;

use crate::api::AppState;
use crate::auth::Authenticator;
use crate::query::CursorKey;
use crate::record::ValidationLimits;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    Local,
    ApiGateway,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub auth: AuthMode,
    pub jwt_secret: Option<Vec<u8>>,
    pub cursor_key: Option<Vec<u8>>,
    pub export_key: Option<Vec<u8>>,
    /// SSM SecureString parameter names the keys are read from (AWS storage only).
    pub cursor_key_parameter: Option<String>,
    pub export_key_parameter: Option<String>,
    pub table: Option<String>,
    pub bucket: Option<String>,
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
            Ok("apigw") => AuthMode::ApiGateway,
            Ok(other) => bail!("AUDITRAIL_AUTH must be `local` or `apigw`, not `{other}`"),
        };
        let nonempty = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Ok(Self {
            data_dir: nonempty("AUDITRAIL_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".auditrail")),
            auth,
            jwt_secret: secret_var("AUDITRAIL_JWT_SECRET")?,
            cursor_key: secret_var("AUDITRAIL_CURSOR_KEY")?,
            export_key: secret_var("AUDITRAIL_EXPORT_KEY")?,
            cursor_key_parameter: nonempty("AUDITRAIL_CURSOR_KEY_PARAMETER"),
            export_key_parameter: nonempty("AUDITRAIL_EXPORT_KEY_PARAMETER"),
            table: nonempty("AUDITRAIL_TABLE"),
            bucket: nonempty("AUDITRAIL_BUCKET"),
        })
    }

    /// The embedded configuration for a data directory (CLI, tests).
    pub fn embedded(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_owned(),
            auth: AuthMode::Local,
            jwt_secret: None,
            cursor_key: None,
            export_key: None,
            cursor_key_parameter: None,
            export_key_parameter: None,
            table: None,
            bucket: None,
        }
    }

    /// A key from the environment, or one kept in the data directory (created on first use,
    /// readable by the owner only) so tokens and cursors survive restarts.
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
        rand::rng().fill_bytes(&mut k);
        write_private(&path, &k)?;
        Ok(k)
    }

    pub fn authenticator(&self) -> anyhow::Result<Authenticator> {
        Ok(match self.auth {
            AuthMode::ApiGateway => Authenticator::ApiGateway,
            AuthMode::Local => Authenticator::local(&self.key(&self.jwt_secret, "jwt.key")?),
        })
    }

    /// One store serving every record-side port, a blob store, and this configuration's keys.
    fn assemble<S, B>(&self, records: S, blobs: B, cursor_key: &[u8], export_key: &[u8]) -> anyhow::Result<AppState>
    where
        S: crate::store::RecordStore
            + crate::store::RequestStore
            + crate::store::SettingsStore
            + crate::store::TaskStore
            + crate::store::SubjectStore
            + Clone,
        B: crate::store::BlobStore,
    {
        Ok(AppState {
            requests: Arc::new(records.clone()),
            settings: Arc::new(records.clone()),
            tasks: Arc::new(records.clone()),
            subjects: Arc::new(records.clone()),
            records: Arc::new(records),
            blobs: Arc::new(blobs),
            auth: Arc::new(self.authenticator()?),
            sealer: crate::export::password::Sealer::new(export_key),
            export_limits: Default::default(),
            jobs_queued: Default::default(),
            cursor_key: CursorKey::new(cursor_key),
            limits: ValidationLimits::default(),
            registered: Default::default(),
        })
    }

    /// Builds the state with the store the configuration names: DynamoDB + S3 when
    /// `AUDITRAIL_TABLE` / `AUDITRAIL_BUCKET` are set, else the embedded store.
    pub async fn state(&self) -> anyhow::Result<AppState> {
        if self.table.is_some() || self.bucket.is_some() {
            return self.aws_state().await;
        }
        self.embedded_state()
    }

    #[cfg(feature = "aws")]
    async fn aws_state(&self) -> anyhow::Result<AppState> {
        use crate::blob::s3::S3BlobStore;
        use crate::store::dynamodb::DynamoStore;
        let table = self.table.clone().context("AUDITRAIL_TABLE must be set together with AUDITRAIL_BUCKET")?;
        let bucket = self.bucket.clone().context("AUDITRAIL_BUCKET must be set together with AUDITRAIL_TABLE")?;
        let sdk = crate::store::dynamodb::sdk_config().await;
        let records = DynamoStore::new(crate::store::dynamodb::dynamodb_client(&sdk), table.clone());
        records.check().await.with_context(|| format!("AUDITRAIL_TABLE={table}"))?;
        // The emulator (AWS_ENDPOINT_URL) needs path-style addressing.
        let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some();
        let s3 =
            aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(path_style).build());
        let blobs = S3BlobStore::new(s3, bucket.clone());
        blobs.check().await.with_context(|| format!("AUDITRAIL_BUCKET={bucket}"))?;
        // Independent round trips at every cold start: read both keys at once.
        let (cursor_key, export_key) = tokio::try_join!(
            self.aws_key(&sdk, &self.cursor_key, &self.cursor_key_parameter, "CURSOR", "cursor.key"),
            self.aws_key(&sdk, &self.export_key, &self.export_key_parameter, "EXPORT", "export.key"),
        )?;
        self.assemble(records, blobs, &cursor_key, &export_key)
    }

    /// A key on AWS storage: given directly, else read from its SSM parameter; with local auth
    /// (`cargo lambda watch` against moto) it may come from the data directory.
    #[cfg(feature = "aws")]
    async fn aws_key(
        &self,
        sdk: &aws_config::SdkConfig,
        direct: &Option<Vec<u8>>,
        parameter: &Option<String>,
        which: &str,
        file: &str,
    ) -> anyhow::Result<Vec<u8>> {
        match (direct, parameter, self.auth) {
            (Some(k), _, _) => Ok(k.clone()),
            (None, Some(name), _) => secret_from_ssm(sdk, name).await,
            (None, None, AuthMode::Local) => self.key(&None, file),
            (None, None, AuthMode::ApiGateway) => bail!(
                "AUDITRAIL_{which}_KEY_PARAMETER (an SSM SecureString parameter name) or AUDITRAIL_{which}_KEY \
                 (≥ 32 bytes) must be set when running on AWS"
            ),
        }
    }

    #[cfg(not(feature = "aws"))]
    async fn aws_state(&self) -> anyhow::Result<AppState> {
        bail!(
            "AUDITRAIL_TABLE / AUDITRAIL_BUCKET are set, but this binary was built without the AWS back end; \
             unset them to use the embedded store"
        )
    }

    #[cfg(feature = "embedded")]
    fn embedded_state(&self) -> anyhow::Result<AppState> {
        crate::private_fs::create_dir(&self.data_dir)
            .with_context(|| format!("AUDITRAIL_DATA_DIR: cannot create {}", self.data_dir.display()))?;
        let records = crate::store::sqlite::SqliteStore::open(&self.data_dir.join("auditrail.db"))
            .with_context(|| format!("opening the embedded store in {}", self.data_dir.display()))?;
        let blobs = crate::blob::fs::FsBlobStore::open(&self.data_dir.join("blobs"))?;
        let cursor_key = self.key(&self.cursor_key, "cursor.key")?;
        let export_key = self.key(&self.export_key, "export.key")?;
        self.assemble(records, blobs, &cursor_key, &export_key)
    }

    #[cfg(not(feature = "embedded"))]
    fn embedded_state(&self) -> anyhow::Result<AppState> {
        bail!("this binary has no embedded store; set AUDITRAIL_TABLE and AUDITRAIL_BUCKET")
    }
}

/// Reads a key from an SSM SecureString parameter (decrypted). Only SecureStrings are accepted,
/// and at least 32 bytes; errors name the parameter, never its value.
#[cfg(feature = "aws")]
pub async fn secret_from_ssm(sdk: &aws_config::SdkConfig, name: &str) -> anyhow::Result<Vec<u8>> {
    use aws_sdk_ssm::types::ParameterType;
    let out =
        aws_sdk_ssm::Client::new(sdk).get_parameter().name(name).with_decryption(true).send().await.map_err(|e| {
            anyhow::anyhow!("reading the SSM parameter {name}: {}", aws_sdk_ssm::error::DisplayErrorContext(&e))
        })?;
    let param = out.parameter.with_context(|| format!("the SSM parameter {name} has no value"))?;
    match param.r#type {
        Some(ParameterType::SecureString) => {}
        other => bail!(
            "the SSM parameter {name} must be a SecureString (it is {}): keys are not kept in plain parameters",
            other.as_ref().map_or("untyped", |t| t.as_str())
        ),
    }
    let value = param.value.with_context(|| format!("the SSM parameter {name} has no value"))?;
    if value.len() < 32 {
        bail!("the SSM parameter {name} must hold at least 32 bytes");
    }
    Ok(value.into_bytes())
}

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

/// Tracing for binaries: JSON when `AWS_LAMBDA_LOG_FORMAT=JSON` (Lambda) or `json` is asked for,
/// level from `RUST_LOG` / `AWS_LAMBDA_LOG_LEVEL`.
pub fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL").map(|l| EnvFilter::new(l.to_lowercase())))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = json || std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = if json { builder.json().flatten_event(true).try_init() } else { builder.try_init() };
}

#[cfg(all(test, feature = "aws"))]
mod ssm_tests {
    use aws_sdk_ssm::types::ParameterType;

    use super::secret_from_ssm;
    use crate::store::dynamodb::testenv;

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
    }
}
