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
use std::sync::{LazyLock, OnceLock};

use phonenumber::metadata::{loader, Database, Descriptor, DATABASE};
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
    /// [`PhoneMetadata::unstripped`], made on first use.
    unstripped: OnceLock<Database>,
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
            unstripped: OnceLock::new(),
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

    /// These plans without national prefixes, for the crate to read a number's country code and
    /// its whole national number with: the national prefix is then stripped as libphonenumber
    /// strips it (`reference`). Made on first use.
    pub(super) fn unstripped(&self) -> &'static Database {
        match self.0 {
            None => &BUILT_IN_UNSTRIPPED,
            Some(l) => l
                .unstripped
                .get_or_init(|| without_national_prefixes(*self)),
        }
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

/// A region's descriptors of number types (the crate's `number_type` tries them all): not the
/// general one, nor those of short numbers or `noInternationalDialling`.
pub(super) fn number_types(meta: &phonenumber::Metadata) -> [Option<&Descriptor>; 10] {
    let d = meta.descriptors();
    [
        d.mobile(),
        d.fixed_line(),
        d.premium_rate(),
        d.toll_free(),
        d.shared_cost(),
        d.voip(),
        d.personal_number(),
        d.pager(),
        d.uan(),
        d.voicemail(),
    ]
}

/// A region's possible lengths as libphonenumber's general description has them (its build
/// derives them; the XML, and so the crate, lists none): every type's national lengths but
/// `noInternationalDialling`'s, and their local-only lengths that are no national one.
pub(super) fn general_lengths(meta: &phonenumber::Metadata) -> (Vec<u16>, Vec<u16>) {
    let types = number_types(meta);
    let mut lengths: Vec<u16> = types
        .iter()
        .flatten()
        .flat_map(|t| t.possible_length().iter().copied())
        .collect();
    lengths.sort_unstable();
    lengths.dedup();
    let mut local: Vec<u16> = types
        .iter()
        .flatten()
        .flat_map(|t| t.possible_local_length().iter().copied())
        .filter(|len| !lengths.contains(len))
        .collect();
    local.sort_unstable();
    local.dedup();
    (lengths, local)
}

/// libphonenumber's `parseHelper` keeps a national number stripped of its prefix unless
/// `testNumberLength` calls its length `TOO_SHORT`, `IS_POSSIBLE_LOCAL_ONLY` or
/// `INVALID_LENGTH` (a length the region has none of: all possible without lengths).
pub(super) fn keeps_stripped_length(lengths: &[u16], local: &[u16], len: usize) -> bool {
    let len = u16::try_from(len).unwrap_or(u16::MAX);
    let (Some(&min), Some(&max)) = (lengths.first(), lengths.last()) else {
        return !local.contains(&len);
    };
    !local.contains(&len) && len >= min && (len > max || lengths.contains(&len))
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

static BUILT_IN_UNSTRIPPED: LazyLock<Database> =
    LazyLock::new(|| without_national_prefixes(PhoneMetadata::built_in()));

/// The plans' territories as the crate's loader gives them, without their national prefixes
/// (and without formats, which reading does not use).
fn without_national_prefixes(metadata: PhoneMetadata) -> Database {
    let descriptor = |d: Option<&Descriptor>| {
        d.map(|d| loader::Descriptor {
            national_number: Some(d.national_number().as_str().into()),
            possible_length: d.possible_length().to_vec(),
            possible_local_length: d.possible_local_length().to_vec(),
            example: d.example().map(Into::into),
        })
    };
    let territories = metadata
        .territories()
        .map(|m| {
            let d = m.descriptors();
            loader::Metadata {
                general: descriptor(Some(d.general())),
                fixed_line: descriptor(d.fixed_line()),
                mobile: descriptor(d.mobile()),
                toll_free: descriptor(d.toll_free()),
                premium_rate: descriptor(d.premium_rate()),
                shared_cost: descriptor(d.shared_cost()),
                personal_number: descriptor(d.personal_number()),
                voip: descriptor(d.voip()),
                pager: descriptor(d.pager()),
                uan: descriptor(d.uan()),
                emergency: descriptor(d.emergency()),
                voicemail: descriptor(d.voicemail()),
                short_code: descriptor(d.short_code()),
                standard_rate: descriptor(d.standard_rate()),
                carrier: descriptor(d.carrier()),
                no_international: descriptor(d.no_international()),
                id: Some(m.id().into()),
                country_code: Some(m.country_code()),
                international_prefix: m.international_prefix().map(|r| r.as_str().into()),
                preferred_international_prefix: m.preferred_international_prefix().map(Into::into),
                leading_digits: m.leading_digits().map(|r| r.as_str().into()),
                main_country_for_code: m.is_main_country_for_code(),
                mobile_number_portable: m.is_mobile_number_portable(),
                ..loader::Metadata::default()
            }
        })
        .collect();
    Database::from(territories).expect("the plans' own patterns parse again")
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
        assert!(loaded.has_region(phonenumber::country::Id::RU));
        assert!(loaded.describe().starts_with(&good.display().to_string()));
    }
}
