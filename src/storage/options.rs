//! The storage settings and the credentials a client is made with.
//!
//! Contract: [`Storage::set`] takes one setting of the job's `[storage]` table or one
//! `--storage-option`: `spool_dir` and `part_size` are ours, every other key must be one of
//! `object_store`'s configuration keys (the names polars' `storage_options` takes:
//! `aws_endpoint_url`, `aws_region`, `aws_virtual_hosted_style_request`, `aws_allow_http`,
//! `google_...`, `azure_...`), and a secret key is refused, naming where it was given.
//! [`Storage::client`] reads the provider's standard environment as its builder's `from_env`
//! does (for S3, an empty variable counts as unset, so an orchestrator's templated
//! `AWS_ACCESS_KEY_ID=""` does not shadow IRSA), applies the settings over it, and refuses at
//! once a URL with no credentials configured at all, or a plain-http endpoint off loopback.

use std::sync::Arc;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::ObjectStore;

use super::url::{ObjectUrl, Provider};
use super::{Client, StorageError};

/// The part size of uploads unless `storage.part_size` says otherwise.
pub const DEFAULT_PART_SIZE: usize = 16 << 20;

/// The smallest part S3 and GCS accept (but for the last part of an upload).
pub const MIN_PART_SIZE: usize = 5 << 20;

/// The `[storage]` settings, with the command line's `--storage-option`s over them.
#[derive(Debug, Clone)]
pub struct Storage {
    /// `object_store` configuration keys (lower-case) and values, in the order given (a later
    /// one wins); never a secret.
    options: Vec<(String, String)>,
    /// Bytes per part of an upload.
    pub part_size: usize,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            options: Vec::new(),
            part_size: DEFAULT_PART_SIZE,
        }
    }
}

/// What to set when a store has no credentials at all.
const S3_HINT: &str = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN (IRSA), or AWS_CONTAINER_CREDENTIALS_FULL_URI (ECS, EKS Pod Identity); on EC2 with an instance profile set AWS_METADATA_ENDPOINT=http://169.254.169.254; for a public bucket set the storage option aws_skip_signature = true";
const S3_HALF_KEYS: &str =
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together (one of them is empty or missing)";
const GCS_HINT: &str = "set GOOGLE_APPLICATION_CREDENTIALS (or GOOGLE_SERVICE_ACCOUNT) to a credentials file, or run `gcloud auth application-default login`; on Google Cloud with a service account set GCE_METADATA_HOST=metadata.google.internal";
const AZURE_HINT: &str = "set AZURE_STORAGE_ACCOUNT_KEY, or AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and AZURE_TENANT_ID, or AZURE_FEDERATED_TOKEN_FILE (workload identity); with a managed identity set AZURE_MSI_ENDPOINT";

impl Storage {
    /// Takes one setting `key = value`; `origin` names where it was given, for messages
    /// (`storage.aws_region`, `--storage-option aws_region`).
    pub fn set(&mut self, origin: &str, key: &str, value: &str) -> Result<(), StorageError> {
        let refuse = |why: String| StorageError::Setting {
            key: origin.to_string(),
            why,
        };
        let key = key.trim().to_ascii_lowercase();
        if key == "part_size" {
            let size = parse_size(value).map_err(refuse)?;
            if size < MIN_PART_SIZE {
                return Err(refuse(format!("{value} is less than 5 MiB, the smallest part S3 and Google Cloud Storage take")));
            }
            self.part_size = size;
            return Ok(());
        }
        if is_secret(&key) {
            return Err(refuse("a secret is never a setting (it would sit in a job file or a process list): give it in the provider's environment variable (AWS_SECRET_ACCESS_KEY, GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_ACCOUNT_KEY, ...)".into()));
        }
        let known = key.parse::<AmazonS3ConfigKey>().is_ok()
            || key.parse::<GoogleConfigKey>().is_ok()
            || key.parse::<AzureConfigKey>().is_ok();
        if !known {
            return Err(refuse(format!("`{key}` is not a storage setting: use spool_dir, part_size, or a key of polars' storage_options (aws_endpoint_url, aws_region, aws_virtual_hosted_style_request, aws_allow_http, google_..., azure_...)")));
        }
        self.options.retain(|(k, _)| *k != key);
        self.options.push((key, value.to_string()));
        Ok(())
    }

    /// The settings given, as `key = value` pairs (never a secret), for the output's metadata.
    pub fn options(&self) -> impl Iterator<Item = (&str, &str)> {
        self.options.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// A client for `url`, with the provider's environment and these settings; refused, before
    /// any request, when no credentials are configured or an endpoint is plain http off
    /// loopback.
    pub fn client(&self, url: &ObjectUrl) -> Result<Client, StorageError> {
        let built = match url.provider() {
            Provider::S3 => self
                .s3(url)?
                .build()
                .map(|s| Arc::new(s) as Arc<dyn ObjectStore>),
            Provider::Gcs => self
                .gcs(url)?
                .build()
                .map(|s| Arc::new(s) as Arc<dyn ObjectStore>),
            Provider::Azure => self
                .azure(url)?
                .build()
                .map(|s| Arc::new(s) as Arc<dyn ObjectStore>),
        };
        let store = built.map_err(|e| StorageError::Url {
            url: url.to_string(),
            why: format!("cannot make a client: {e}"),
        })?;
        Ok(Client {
            store,
            url: url.clone(),
            part_size: self.part_size,
        })
    }

    /// The settings whose keys `parse` reads as the provider's, in order.
    fn provider_options<K>(&self, parse: impl Fn(&str) -> Option<K>) -> Vec<(K, String)> {
        self.options
            .iter()
            .filter_map(|(k, v)| Some((parse(k)?, v.clone())))
            .collect()
    }

    fn s3(&self, url: &ObjectUrl) -> Result<AmazonS3Builder, StorageError> {
        // `AmazonS3Builder::from_env`, but an empty variable counts as unset.
        let mut b = AmazonS3Builder::new();
        for (name, value) in std::env::vars() {
            if name.starts_with("AWS_") && !value.is_empty() {
                if let Ok(key) = name.to_ascii_lowercase().parse() {
                    b = b.with_config(key, value);
                }
            }
        }
        b = b.with_url(url.as_str());
        for (key, value) in self.provider_options(|k| k.parse::<AmazonS3ConfigKey>().ok()) {
            b = b.with_config(key, value);
        }
        let set = |key: AmazonS3ConfigKey| b.get_config_value(&key).filter(|v| !v.is_empty());
        let yes = |key: AmazonS3ConfigKey| set(key).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let no_credentials = |hint| StorageError::NoCredentials {
            url: url.to_string(),
            store: "S3",
            hint,
        };
        let key_id = set(AmazonS3ConfigKey::AccessKeyId).is_some();
        if key_id != set(AmazonS3ConfigKey::SecretAccessKey).is_some() {
            return Err(no_credentials(S3_HALF_KEYS));
        }
        let any = key_id
            || (set(AmazonS3ConfigKey::WebIdentityTokenFile).is_some()
                && set(AmazonS3ConfigKey::RoleArn).is_some())
            || set(AmazonS3ConfigKey::ContainerCredentialsRelativeUri).is_some()
            || set(AmazonS3ConfigKey::ContainerCredentialsFullUri).is_some()
            || set(AmazonS3ConfigKey::MetadataEndpoint).is_some()
            || yes(AmazonS3ConfigKey::SkipSignature);
        if !any {
            return Err(no_credentials(S3_HINT));
        }
        let endpoint = set(AmazonS3ConfigKey::S3Endpoint).or(set(AmazonS3ConfigKey::Endpoint));
        check_endpoint(url, "aws_endpoint_url", endpoint.as_deref())?;
        Ok(b)
    }

    fn gcs(&self, url: &ObjectUrl) -> Result<GoogleCloudStorageBuilder, StorageError> {
        let mut b = GoogleCloudStorageBuilder::from_env().with_url(url.as_str());
        for (key, value) in self.provider_options(|k| k.parse::<GoogleConfigKey>().ok()) {
            b = b.with_config(key, value);
        }
        let set = |key: GoogleConfigKey| b.get_config_value(&key).filter(|v| !v.is_empty());
        let well_known = std::env::var_os("HOME").is_some_and(|home| {
            std::path::Path::new(&home)
                .join(".config/gcloud/application_default_credentials.json")
                .is_file()
        });
        let any = set(GoogleConfigKey::ServiceAccount).is_some()
            || set(GoogleConfigKey::ApplicationCredentials).is_some()
            || set(GoogleConfigKey::SkipSignature).is_some_and(|v| v == "true")
            || std::env::var_os("GCE_METADATA_HOST").is_some()
            || well_known;
        if !any {
            return Err(StorageError::NoCredentials {
                url: url.to_string(),
                store: "Google Cloud Storage",
                hint: GCS_HINT,
            });
        }
        check_endpoint(
            url,
            "google_base_url",
            set(GoogleConfigKey::BaseUrl).as_deref(),
        )?;
        Ok(b)
    }

    fn azure(&self, url: &ObjectUrl) -> Result<MicrosoftAzureBuilder, StorageError> {
        let mut b = MicrosoftAzureBuilder::from_env().with_url(url.as_str());
        for (key, value) in self.provider_options(|k| k.parse::<AzureConfigKey>().ok()) {
            b = b.with_config(key, value);
        }
        let set = |key: AzureConfigKey| b.get_config_value(&key).filter(|v| !v.is_empty());
        let yes = |key: AzureConfigKey| set(key).is_some_and(|v| v == "true");
        let any = [
            AzureConfigKey::AccessKey,
            AzureConfigKey::SasKey,
            AzureConfigKey::Token,
            AzureConfigKey::ClientSecret,
            AzureConfigKey::FederatedTokenFile,
            AzureConfigKey::MsiEndpoint,
        ]
        .into_iter()
        .any(|k| set(k).is_some())
            || yes(AzureConfigKey::UseAzureCli)
            || yes(AzureConfigKey::UseEmulator)
            || yes(AzureConfigKey::SkipSignature);
        if !any {
            return Err(StorageError::NoCredentials {
                url: url.to_string(),
                store: "Azure Blob Storage",
                hint: AZURE_HINT,
            });
        }
        check_endpoint(
            url,
            "azure_endpoint",
            set(AzureConfigKey::Endpoint).as_deref(),
        )?;
        Ok(b)
    }
}

/// A plain-http endpoint is allowed on loopback only (a local test server): anywhere else the
/// requests and their signatures would travel in clear text.
fn check_endpoint(url: &ObjectUrl, key: &str, endpoint: Option<&str>) -> Result<(), StorageError> {
    let Some(endpoint) = endpoint else {
        return Ok(());
    };
    let parsed = reqwest::Url::parse(endpoint).map_err(|e| StorageError::Setting {
        key: key.to_string(),
        why: format!("`{endpoint}` is not a URL ({e})"),
    })?;
    let host = parsed.host_str().unwrap_or("");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if parsed.scheme() == "http" && !loopback {
        return Err(StorageError::Setting {
            key: key.to_string(),
            why: format!("{url}: the endpoint `{endpoint}` is plain http off loopback; use https (allow_http is for a local endpoint only)"),
        });
    }
    Ok(())
}

/// Whether a configuration key names a secret of any provider.
fn is_secret(key: &str) -> bool {
    use AmazonS3ConfigKey as S3;
    let s3 = match key.parse::<S3>() {
        Ok(S3::AccessKeyId | S3::SecretAccessKey | S3::Token) => true,
        // SSE-C's key (`object_store` does not export the encryption keys' type).
        Ok(S3::Encryption(_)) => key.ends_with("sse_customer_key_base64"),
        _ => false,
    };
    let gcs = matches!(key.parse(), Ok(GoogleConfigKey::ServiceAccountKey));
    let azure = matches!(
        key.parse(),
        Ok(AzureConfigKey::AccessKey
            | AzureConfigKey::ClientSecret
            | AzureConfigKey::SasKey
            | AzureConfigKey::Token
            | AzureConfigKey::FabricSessionToken)
    );
    s3 || gcs || azure
}

/// A size in bytes: a number, or a number with `KiB`, `MiB` or `GiB` (`16MiB`).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        _ => return Err(format!("`{text}` is not a size such as 16MiB")),
    };
    number
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("`{text}` is not a size such as 16MiB"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_object_stores_keys_and_never_secrets() {
        let mut storage = Storage::default();
        for (key, value) in [
            ("aws_endpoint_url", "http://127.0.0.1:9000"),
            ("aws_region", "ru-central1"),
            ("aws_virtual_hosted_style_request", "false"),
            ("aws_allow_http", "true"),
            ("allow_http", "true"),
            ("google_bucket", "b"),
            ("azure_storage_account_name", "acct"),
            ("part_size", "32MiB"),
        ] {
            storage.set(&format!("storage.{key}"), key, value).unwrap();
        }
        assert_eq!(storage.part_size, 32 << 20);
        for (key, want) in [
            ("aws_secret_access_key", "a secret is never a setting"),
            ("aws_access_key_id", "a secret is never a setting"),
            ("aws_session_token", "a secret is never a setting"),
            ("google_service_account_key", "a secret is never a setting"),
            ("azure_storage_account_key", "a secret is never a setting"),
            ("azure_client_secret", "a secret is never a setting"),
            ("azure_storage_sas_key", "a secret is never a setting"),
            ("aws_sse_customer_key_base64", "a secret is never a setting"),
            ("colour", "not a storage setting"),
            ("part_size", "less than 5 MiB"),
        ] {
            let value = if key == "part_size" { "1MiB" } else { "x" };
            let err = storage
                .set(&format!("storage.{key}"), key, value)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(&format!("storage.{key}: ")), "{err}");
            assert!(err.contains(want), "{key}: {err}");
            assert!(!err.contains(": x"), "{err} repeats the value");
        }
        assert!(storage.options().all(|(_, v)| v != "x"));
    }

    #[test]
    fn sizes_read_with_binary_units() {
        for (text, bytes) in [
            ("1024", 1024),
            ("64KiB", 64 << 10),
            ("16 MiB", 16 << 20),
            ("1GiB", 1 << 30),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in ["", "16MB", "MiB", "-1", "1.5MiB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
