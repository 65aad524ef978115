//! The numbering plans numbers are read with: the `phonenumber` crate's built-in metadata, or a
//! libphonenumber `PhoneNumberMetadata.xml` loaded at start.
//!
//! Contract: [`PhoneMetadata::load`] either returns metadata that both readings of a cell (the
//! crate's and the fast path's) can use for a whole run — every territory complete, every
//! pattern compiling as each of them compiles it — or a [`MetadataError`] naming the file;
//! [`PhoneMetadata::describe`] says which plans a run used (the built-in version, else the
//! file's path and SHA-256), for the report and the output's metadata. A loaded file lives as
//! long as the process: a run loads one, once.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use phonenumber::metadata::{loader, Database, DATABASE};
use sha2::{Digest, Sha256};

/// The libphonenumber release the `phonenumber` crate's built-in metadata comes from.
pub const BUILT_IN_VERSION: &str = "libphonenumber 9.0.33";

/// Which numbering plans a [`super::Normalizer`] reads with: the crate's built-in metadata
/// (the default, parsed on first use) or a loaded file. Cheap to copy.
#[derive(Clone, Copy, Default)]
pub struct PhoneMetadata(Option<&'static Loaded>);

/// A metadata file as loaded.
struct Loaded {
    database: Database,
    known_codes: Vec<bool>,
    path: PathBuf,
    sha256: String,
}

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
    /// The `phonenumber` crate's own metadata ([`BUILT_IN_VERSION`]).
    pub fn built_in() -> PhoneMetadata {
        PhoneMetadata(None)
    }

    /// Reads and checks a libphonenumber `PhoneNumberMetadata.xml`.
    pub fn load(path: &Path) -> Result<PhoneMetadata, MetadataError> {
        let bytes = std::fs::read(path).map_err(|source| MetadataError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let schema = |reason: String| MetadataError::Schema {
            path: path.to_path_buf(),
            reason,
        };
        let database = parse(&bytes).map_err(schema)?;
        let known_codes = known_codes(&database);
        let loaded: &'static Loaded = Box::leak(Box::new(Loaded {
            database,
            known_codes,
            path: path.to_path_buf(),
            sha256: Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        }));
        let metadata = PhoneMetadata(Some(loaded));
        super::rules::check_patterns(metadata).map_err(schema)?;
        Ok(metadata)
    }

    /// Which plans these are, for people and for the record: `built-in (libphonenumber
    /// 9.0.33)`, or `PATH (sha256 HEX)` for a loaded file (libphonenumber's XML carries no
    /// version).
    pub fn describe(&self) -> String {
        match self.0 {
            None => format!("built-in ({BUILT_IN_VERSION})"),
            Some(l) => format!("{} (sha256 {})", l.path.display(), l.sha256),
        }
    }

    /// The crate's database of these plans.
    pub(super) fn database(&self) -> &'static Database {
        match self.0 {
            None => &DATABASE,
            Some(l) => &l.database,
        }
    }

    /// Every territory of these plans, the non-geographic entities too (which the database's
    /// `iter` holds only one of, since they share the id `001`).
    pub(super) fn territories(&self) -> impl Iterator<Item = &'static phonenumber::Metadata> {
        let database = self.database();
        (0..1000u16).flat_map(move |code| database.by_code(&code).unwrap_or_default())
    }

    /// Whether these plans have a country code (`database().by_code`), without allocating.
    pub(super) fn knows_code(&self, code: u16) -> bool {
        let known = match self.0 {
            None => &BUILT_IN_CODES,
            Some(l) => &l.known_codes,
        };
        known.get(usize::from(code)).copied().unwrap_or(false)
    }

    /// Tells these plans from others, for what a thread keeps per plans (its compiled rules,
    /// its memo): the same for copies of one value, different between two loads.
    pub(super) fn identity(&self) -> usize {
        self.0.map_or(0, |l| l as *const Loaded as usize)
    }

    /// Whether a region is in these plans.
    pub fn has_region(&self, region: phonenumber::country::Id) -> bool {
        self.database().by_id(region.as_ref()).is_some()
    }
}

impl fmt::Debug for PhoneMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The XML as the crate's loader reads it, refused where the crate would fail later (or panic):
/// no territory, a territory without its general description, a description without a
/// pattern, a pattern that does not compile.
fn parse(bytes: &[u8]) -> Result<Database, String> {
    let territories = loader::load(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
    if territories.is_empty() {
        return Err("no <territory> under <phoneNumberMetadata><territories>".into());
    }
    for t in &territories {
        let name = t.id.as_deref().unwrap_or("?");
        if t.country_code.is_some_and(|code| code > 999) {
            return Err(format!("territory {name} has a country code over 999"));
        }
        if t.general.is_none() {
            return Err(format!("territory {name} has no <generalDesc>"));
        }
        let descriptors = [
            &t.general,
            &t.fixed_line,
            &t.mobile,
            &t.toll_free,
            &t.premium_rate,
            &t.shared_cost,
            &t.personal_number,
            &t.voip,
            &t.pager,
            &t.uan,
            &t.emergency,
            &t.voicemail,
            &t.short_code,
            &t.standard_rate,
            &t.carrier,
            &t.no_international,
        ];
        if descriptors
            .into_iter()
            .flatten()
            .any(|d| d.national_number.is_none())
        {
            return Err(format!(
                "territory {name} has a description without <nationalNumberPattern>"
            ));
        }
    }
    Database::from(territories).map_err(|e| e.to_string())
}

/// Every country code below 1000 a database has (`by_code`: its `iter` holds one of the
/// non-geographic entities, which share the id `001`): a table, so that asking costs no
/// allocation.
fn known_codes(database: &Database) -> Vec<bool> {
    (0..1000u16)
        .map(|code| database.by_code(&code).is_some())
        .collect()
}

static BUILT_IN_CODES: LazyLock<Vec<bool>> = LazyLock::new(|| known_codes(&DATABASE));

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
        assert!(loaded.has_region(phonenumber::country::Id::RU));
        assert!(loaded.describe().starts_with(&good.display().to_string()));
    }
}
