//! Seals signed by an asymmetric AWS KMS key (`ECC_NIST_P256`, `SIGN_VERIFY`): the private key
//! never leaves KMS, only the sealing function may `kms:Sign`, and the public key is published
//! (`GET /v1/integrity/seals`, `auditrail public-key`, or `aws kms get-public-key`). The
//! statement's JCS (under 1 KB) is sent as a raw message, signed `ECDSA_SHA_256`.

use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use tokio::sync::OnceCell;

use crate::seal::SealSigner;

pub struct KmsSigner {
    client: Client,
    key: String,
    public: OnceCell<Vec<u8>>,
}

impl KmsSigner {
    /// `key` is the key id, ARN or alias (`AUDITRAIL_SEAL_KMS_KEY`).
    pub fn new(client: Client, key: impl Into<String>) -> Self {
        Self { client, key: key.into(), public: OnceCell::new() }
    }
}

fn kms_error(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> anyhow::Error {
    anyhow::anyhow!("KMS {what}: {}", aws_sdk_kms::error::DisplayErrorContext(e))
}

#[async_trait::async_trait]
impl SealSigner for KmsSigner {
    async fn public_key_der(&self) -> anyhow::Result<Vec<u8>> {
        self.public
            .get_or_try_init(|| async {
                let out = self
                    .client
                    .get_public_key()
                    .key_id(&self.key)
                    .send()
                    .await
                    .map_err(|e| kms_error("GetPublicKey", e))?;
                let der = out.public_key().map(|b| b.as_ref().to_vec()).unwrap_or_default();
                // What matters is the key itself: a P-256 public key (ECC_NIST_P256).
                anyhow::ensure!(
                    crate::seal::public_key_pem(&der).is_ok(),
                    "the seal key {} is not an ECC_NIST_P256 key",
                    self.key
                );
                Ok(der)
            })
            .await
            .cloned()
    }

    async fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        // KMS takes a raw message of up to 4096 bytes; a statement is well under 1 KB.
        anyhow::ensure!(message.len() <= 4096, "a seal statement of {} bytes is over KMS's 4096", message.len());
        let out = self
            .client
            .sign()
            .key_id(&self.key)
            .message(Blob::new(message.to_vec()))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| kms_error("Sign", e))?;
        out.signature().map(|b| b.as_ref().to_vec()).ok_or_else(|| anyhow::anyhow!("KMS Sign returned no signature"))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_kms::types::{KeySpec, KeyUsageType};

    use super::*;
    use crate::seal::{make_seal, verify_signature};

    /// A real P-256 key in the emulator's KMS: seals it signs verify with its public key, and a
    /// statement changed after signing does not.
    #[tokio::test]
    async fn seals_signed_in_kms_verify_with_its_public_key() {
        let sdk = crate::testkit::moto::sdk_config(&crate::testkit::moto::endpoint()).await;
        let client = Client::new(&sdk);
        let key = client
            .create_key()
            .key_spec(KeySpec::EccNistP256)
            .key_usage(KeyUsageType::SignVerify)
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap()
            .key_id;
        let signer = KmsSigner::new(client.clone(), key);
        let der = signer.public_key_der().await.unwrap();
        let seal = make_seal(&signer, None, "acme", "p1".into(), &[], vec![], chrono::Utc::now()).await.unwrap();
        assert_eq!(seal.statement.key_id, crate::seal::key_id(&der));
        let sig = crate::merkle::unb64(&seal.signature).unwrap();
        assert!(verify_signature(&der, &seal.statement.bytes(), &sig));
        let mut forged = seal.statement.clone();
        forged.body.size = 1;
        assert!(!verify_signature(&der, &forged.bytes(), &sig));
        // A symmetric key is refused with a message naming it.
        let sym = client.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
        let err = KmsSigner::new(client, sym.clone()).public_key_der().await.unwrap_err().to_string();
        assert!(err.contains("KMS GetPublicKey") || err.contains(&sym), "{err}");
    }
}
