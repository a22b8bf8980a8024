//! The service container: the adapters behind every port, the keys and the limits, built once
//! per process by [`crate::config`] and shared by every face — the HTTP router (which wraps it
//! in [`crate::api::AppState`] with what only HTTP needs), the job workers, housekeeping, the
//! Lambda mains and the CLI. It knows no router.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::crypto::Sealer;
use crate::dpo::erasure::ErasureWorker;
use crate::export::worker::ExportWorker;
use crate::export::writer::Limits;
use crate::integrity::sealer::Sealing;
use crate::query::CursorKey;
use crate::record::ValidationLimits;
use crate::seal::{LocalSigner, SealSigner};
use crate::store::{
    BlobStore, RecordStore, RequestStore, SealStore, SettingsStore, StoreError, SubjectStore, TaskStore,
};

/// How long a worker's lease on a task lasts before another may take it over.
pub const LEASE: chrono::Duration = chrono::Duration::minutes(5);

/// Everything the product's code needs, built once per process. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub records: Arc<dyn RecordStore>,
    pub requests: Arc<dyn RequestStore>,
    pub settings: Arc<dyn SettingsStore>,
    pub blobs: Arc<dyn BlobStore>,
    /// Where seal digests are kept: on AWS a bucket with Object Lock in compliance mode
    /// (`AUDITRAIL_SEAL_BUCKET`), else `blobs`.
    pub seal_blobs: Arc<dyn BlobStore>,
    pub tasks: Arc<dyn TaskStore>,
    pub subjects: Arc<dyn SubjectStore>,
    /// The journal and the seals of tamper evidence.
    pub seals: Arc<dyn SealStore>,
    /// Signs seals (`with_signer`; by default a P-256 key derived from the export key).
    pub signer: Arc<dyn SealSigner>,
    /// Seals export passwords and erasure identifiers (never stored in plaintext), and keys
    /// the fingerprints of DPO criteria.
    pub sealer: Sealer,
    pub export_limits: Limits,
    /// Wakes the in-process job workers when a task is queued (`auditrail serve`).
    pub jobs_queued: Arc<tokio::sync::Notify>,
    pub cursor_key: CursorKey,
    pub limits: ValidationLimits,
    /// Tenants already registered by this process, so ingest writes the registry once.
    pub registered: Arc<Mutex<HashSet<String>>>,
    /// Pulls a Keycloak realm's events into a tenant (`AUDITRAIL_KEYCLOAK_*`), when configured.
    #[cfg(feature = "keycloak-pull")]
    pub keycloak: Option<Arc<crate::keycloak_pull::Puller>>,
}

impl App {
    /// One store serving every record-side port, a blob store, and the keys.
    pub fn new<S, B>(store: S, blobs: B, cursor_key: &[u8], export_key: &[u8]) -> Self
    where
        S: RecordStore + RequestStore + SettingsStore + TaskStore + SubjectStore + SealStore + Clone,
        B: BlobStore,
    {
        let blobs: Arc<dyn BlobStore> = Arc::new(blobs);
        Self {
            requests: Arc::new(store.clone()),
            settings: Arc::new(store.clone()),
            tasks: Arc::new(store.clone()),
            subjects: Arc::new(store.clone()),
            seals: Arc::new(store.clone()),
            signer: Arc::new(LocalSigner::from_secret(
                &[b"auditrail seal from export key\0".as_slice(), export_key].concat(),
            )),
            records: Arc::new(store),
            seal_blobs: blobs.clone(),
            blobs,
            sealer: Sealer::new(export_key),
            export_limits: Limits::default(),
            jobs_queued: Default::default(),
            cursor_key: CursorKey::new(cursor_key),
            limits: ValidationLimits::default(),
            registered: Default::default(),
            #[cfg(feature = "keycloak-pull")]
            keycloak: None,
        }
    }

    /// The stores the retention purge works on.
    pub fn purge_stores(&self) -> crate::retention::PurgeStores<'_> {
        crate::retention::PurgeStores {
            records: &*self.records,
            subjects: &*self.subjects,
            blobs: &*self.blobs,
            settings: &*self.settings,
            seals: &*self.seals,
        }
    }

    /// Pulls Keycloak events with `puller` on every housekeeping round.
    #[cfg(feature = "keycloak-pull")]
    pub fn with_keycloak(mut self, puller: crate::keycloak_pull::Puller) -> Self {
        self.keycloak = Some(Arc::new(puller));
        self
    }

    /// Keeps seal digests in `blobs` (the Object Lock bucket) instead.
    pub fn with_seal_blobs(mut self, blobs: Arc<dyn BlobStore>) -> Self {
        self.seal_blobs = blobs;
        self
    }

    /// Signs seals with `signer` instead (the configured seal key, or KMS).
    pub fn with_signer(mut self, signer: Arc<dyn SealSigner>) -> Self {
        self.signer = signer;
        self
    }

    /// The sealer over this container's stores and key.
    pub fn sealing(&self) -> Sealing {
        Sealing::new(self.seals.clone(), self.seal_blobs.clone(), self.signer.clone())
    }

    /// Registers a tenant that is about to have data (once per process), so retention finds it.
    pub async fn note_tenant(&self, tenant: &str) -> Result<(), StoreError> {
        if self.registered.lock().unwrap_or_else(|p| p.into_inner()).contains(tenant) {
            return Ok(());
        }
        self.settings.register_tenant(tenant).await?;
        self.registered.lock().unwrap_or_else(|p| p.into_inner()).insert(tenant.to_owned());
        Ok(())
    }

    /// An erasure worker over this container's stores.
    pub fn erasure_worker(&self, owner: &str) -> ErasureWorker {
        ErasureWorker {
            records: self.records.clone(),
            tasks: self.tasks.clone(),
            blobs: self.blobs.clone(),
            sealer: self.sealer.clone(),
            lease: LEASE,
            owner: owner.to_owned(),
        }
    }

    /// An export worker over this container's stores.
    pub fn export_worker(&self, owner: &str) -> ExportWorker {
        ExportWorker {
            records: self.records.clone(),
            tasks: self.tasks.clone(),
            blobs: self.blobs.clone(),
            settings: self.settings.clone(),
            sealer: self.sealer.clone(),
            limits: self.export_limits,
            lease: LEASE,
            margin: std::time::Duration::from_secs(60),
            owner: owner.to_owned(),
            page: crate::export::worker::PAGE,
        }
    }
}
