//! The numbering plans numbers are read with: the built-in metadata (`rlibphonenumber`'s own,
//! libphonenumber 9.0.42), or a libphonenumber `PhoneNumberMetadata.xml` loaded at start.
//!
//! Contract: [`PhoneMetadata::load`] either returns plans the reading of a cell can use for a
//! whole run — every territory complete, every pattern compiling — or a [`MetadataError`]
//! naming the file; [`PhoneMetadata::describe`] says which plans a run used (the built-in
//! version, else the file's path and SHA-256), for the report and the output's metadata. Both
//! readings of a cell, `rlibphonenumber`'s ([`PhoneMetadata::util`]) and the fast path's
//! (`rules`, from the same `PhoneMetadataCollection`), read the very same plans. A loaded file
//! lives as long as the process: a run loads one, once.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use prost::Message;
use rlibphonenumber::{PhoneMetadataCollection, PhoneNumberUtil, Region};
use sha2::{Digest, Sha256};

/// The libphonenumber release of the built-in plans.
pub const BUILT_IN_VERSION: &str = "libphonenumber 9.0.42";

/// `rlibphonenumber` 2.2.15's own compiled metadata (`src/generated/metadata/metadata.bin`,
/// libphonenumber 9.0.42), kept here so that the fast path can read the plans
/// `rlibphonenumber` reads with (it does not hand its own out).
static BUILT_IN_BYTES: &[u8] = include_bytes!("metadata-9.0.42.bin");

/// Which numbering plans a [`super::Normalizer`] reads with: the built-in ones (the default,
/// decoded on first use) or a loaded file. Cheap to copy.
#[derive(Clone, Copy, Default)]
pub struct PhoneMetadata(Option<&'static Plans>);

/// Plans as both readings use them.
pub(super) struct Plans {
    pub(super) util: PhoneNumberUtil,
    pub(super) collection: PhoneMetadataCollection,
    /// A loaded file's path and SHA-256.
    file: Option<(PathBuf, String)>,
}

static BUILT_IN: LazyLock<Plans> = LazyLock::new(|| {
    let collection = PhoneMetadataCollection::decode(BUILT_IN_BYTES).expect("the built-in plans");
    Plans {
        util: PhoneNumberUtil::new_for_metadata(collection.clone()).expect("the built-in plans"),
        collection,
        file: None,
    }
});

/// Why a metadata file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The file cannot be read.
    #[error("reading {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not libphonenumber's `PhoneNumberMetadata.xml` (not XML, another schema, or
    /// incomplete).
    #[error("{} is not a libphonenumber PhoneNumberMetadata.xml: {reason}", path.display())]
    Schema { path: PathBuf, reason: String },
}

impl PhoneMetadata {
    /// The built-in plans ([`BUILT_IN_VERSION`]).
    pub fn built_in() -> PhoneMetadata {
        PhoneMetadata(None)
    }

    /// Reads and checks a libphonenumber `PhoneNumberMetadata.xml` (`super::xml`: every
    /// pattern parses), then builds the plans from it.
    pub fn load(path: &Path) -> Result<PhoneMetadata, MetadataError> {
        let bytes = std::fs::read(path).map_err(|source| MetadataError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let schema = |reason: String| MetadataError::Schema {
            path: path.to_path_buf(),
            reason,
        };
        let collection = super::xml::collection(&bytes).map_err(schema)?;
        super::xml::check_patterns(&collection).map_err(schema)?;
        let util = PhoneNumberUtil::new_for_metadata(collection.clone())
            .map_err(|e| schema(e.to_string()))?;
        let sha256 = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let plans: &'static Plans = Box::leak(Box::new(Plans {
            util,
            collection,
            file: Some((path.to_path_buf(), sha256)),
        }));
        Ok(PhoneMetadata(Some(plans)))
    }

    /// Which plans these are, for people and for the record: `built-in (libphonenumber
    /// 9.0.42)`, or `PATH (sha256 HEX)` for a loaded file (libphonenumber's XML carries no
    /// version).
    pub fn describe(&self) -> String {
        match &self.plans().file {
            None => format!("built-in ({BUILT_IN_VERSION})"),
            Some((path, sha256)) => format!("{} (sha256 {sha256})", path.display()),
        }
    }

    pub(super) fn plans(&self) -> &'static Plans {
        match self.0 {
            None => &BUILT_IN,
            Some(plans) => plans,
        }
    }

    /// libphonenumber's `PhoneNumberUtil` on these plans.
    pub(super) fn util(&self) -> &'static PhoneNumberUtil {
        &self.plans().util
    }

    /// Tells these plans from others, for what a thread keeps per plans (its rules, its memo):
    /// the same for copies of one value, different between two loads.
    pub(super) fn identity(&self) -> usize {
        self.0.map_or(0, |l| l as *const Plans as usize)
    }

    /// Whether a region is in these plans.
    pub fn has_region(&self, region: Region) -> bool {
        self.util().get_country_code_for_region(region).is_some()
    }
}

impl fmt::Debug for PhoneMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bad file is refused naming it, whatever is wrong with it.
    #[test]
    fn bad_files_are_refused_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let territory = |body: &str| {
            format!(
                "<phoneNumberMetadata><territories><territory id=\"RU\" countryCode=\"7\">\
                 {body}</territory></territories></phoneNumberMetadata>"
            )
        };
        let pattern = |p: &str| format!("<nationalNumberPattern>{p}</nationalNumberPattern>");
        let general = format!("<generalDesc>{}</generalDesc>", pattern("9\\d{9}"));
        let cases: &[(&str, Option<String>, &str)] = &[
            ("missing.xml", None, "reading"),
            ("empty.xml", Some(String::new()), "is not a libphonenumber"),
            (
                "text.xml",
                Some("phone,operator\n".into()),
                "is not a libphonenumber",
            ),
            (
                "other.xml",
                Some("<html><body/></html>".into()),
                "is not a libphonenumber",
            ),
            (
                "no-territory.xml",
                Some(
                    "<phoneNumberMetadata><territories></territories></phoneNumberMetadata>".into(),
                ),
                "no <territory>",
            ),
            (
                "no-general.xml",
                Some(territory(
                    "<mobile><possibleLengths national=\"10\"/></mobile>",
                )),
                "has no <generalDesc>",
            ),
            (
                "no-pattern.xml",
                Some(territory(&format!(
                    "{general}<mobile><exampleNumber>1</exampleNumber></mobile>"
                ))),
                "without <nationalNumberPattern>",
            ),
            (
                "bad-pattern.xml",
                Some(territory(&format!(
                    "{general}<mobile>{}</mobile>",
                    pattern("9(\\d")
                ))),
                "is not a libphonenumber",
            ),
        ];
        for (name, text, want) in cases {
            let path = dir.path().join(name);
            if let Some(text) = text {
                std::fs::write(&path, text).unwrap();
            }
            let error = PhoneMetadata::load(&path).map(drop).unwrap_err();
            let message = format!("{:#}", anyhow::Error::new(error));
            assert!(
                message.contains(&path.display().to_string()),
                "{name}: {message}"
            );
            assert!(message.contains(want), "{name}: {message}");
        }
        let good = dir.path().join("good.xml");
        std::fs::write(
            &good,
            territory(&format!("{general}<mobile>{}</mobile>", pattern("9\\d{9}"))),
        )
        .unwrap();
        let loaded = PhoneMetadata::load(&good).unwrap();
        assert!(loaded.has_region(Region::RU));
        assert!(loaded.describe().starts_with(&good.display().to_string()));
    }
}
