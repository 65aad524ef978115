//! Every reading held to libphonenumber itself (issue 18): a seeded corpus of cells (`corpus`)
//! read by the normalizer and by libphonenumber's Python port `phonenumbers` at the plans'
//! version (`tests/oracle/phonenumbers_oracle.py`, run once per corpus on a file), compared
//! cell by cell, with the built-in plans and with a loaded `normalize.metadata` of another
//! version. `.ci/test` installs the reference and exports `PHONE_ENRICH_PYTHON`; without it
//! these tests fail (they cannot hold anything to anything). Each run draws a fresh seed
//! (printed; `PHONE_ENRICH_ORACLE_SEED=N` repeats a run).

mod corpus;

use std::path::{Path, PathBuf};
use std::process::Command;

use phone_enrich::normalize::{Normalized, Normalizer, PhoneMetadata, Region, BUILT_IN_VERSION};

pub use corpus::{Cell, Example};

/// The default regions every corpus is read in (`input.default_region` is a setting).
pub const REGIONS: [&str; 7] = ["RU", "KZ", "BY", "UA", "DE", "GB", "US"];

/// The reference: the Python interpreter `.ci/test` installed `phonenumbers` for, and where
/// another version of it lives, if wanted.
pub struct Oracle {
    python: PathBuf,
    /// A directory holding another `phonenumbers` (`PYTHONPATH`).
    path: Option<PathBuf>,
}

impl Oracle {
    /// The built-in plans' version, from `PHONE_ENRICH_PYTHON`; panics, naming what to do,
    /// without it.
    pub fn installed() -> Oracle {
        let python = std::env::var_os("PHONE_ENRICH_PYTHON").unwrap_or_else(|| {
            panic!(
                "PHONE_ENRICH_PYTHON is not set: these tests hold the normalizer to \
                 libphonenumber's Python port `phonenumbers`; run them through `.ci/test`, which \
                 installs it (.ci/requirements.txt) and sets PHONE_ENRICH_PYTHON"
            )
        });
        Oracle {
            python: python.into(),
            path: None,
        }
    }

    /// `phonenumbers` VERSION, installed by `.ci/test` under the venv as
    /// `phonenumbers-VERSION` (`pip install --target`).
    pub fn at_version(version: &str) -> Oracle {
        let oracle = Oracle::installed();
        let venv = oracle
            .python
            .parent()
            .and_then(Path::parent)
            .expect("PHONE_ENRICH_PYTHON is VENV/bin/python");
        let path = venv.join(format!("phonenumbers-{version}"));
        assert!(
            path.is_dir(),
            "{} is missing: `.ci/test` installs phonenumbers {version} there \
             (pip install --target)",
            path.display()
        );
        Oracle {
            path: Some(path),
            ..oracle
        }
    }

    /// Runs the oracle script; checks that it reports `phonenumbers VERSION` first and
    /// returns the lines after that.
    fn run(&self, args: &[&Path], mode: &str, version: &str) -> Vec<String> {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/oracle/phonenumbers_oracle.py"
        );
        let out_path = args.last().expect("an output file");
        let mut command = Command::new(&self.python);
        command.arg(script).arg(mode).args(args);
        if let Some(path) = &self.path {
            command.env("PYTHONPATH", path);
        }
        let out = command.output().unwrap_or_else(|e| {
            panic!(
                "running {} (PHONE_ENRICH_PYTHON): {e}",
                self.python.display()
            )
        });
        assert!(
            out.status.success(),
            "the oracle failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(out_path).expect("the oracle's output");
        let mut lines = text.lines().map(str::to_string);
        let header = lines.next().unwrap_or_default();
        assert_eq!(
            header,
            format!("phonenumbers {version}"),
            "the oracle is not the plans' version"
        );
        lines.collect()
    }

    /// libphonenumber's example numbers, every region and type.
    pub fn examples(&self, dir: &Path, version: &str) -> Vec<Example> {
        let out = dir.join("examples.jsonl");
        self.run(&[&out], "examples", version)
            .iter()
            .map(|line| serde_json::from_str(line).expect("an example as JSON"))
            .collect()
    }

    /// libphonenumber's reading of each cell: `empty`, `invalid` or `+E164`.
    pub fn readings(&self, dir: &Path, cells: &[Cell], version: &str) -> Vec<String> {
        let input = dir.join("cells.jsonl");
        let lines: Vec<String> = cells
            .iter()
            .map(|c| serde_json::to_string(&(c.region, &c.text)).expect("JSON"))
            .collect();
        std::fs::write(&input, lines.join("\n") + "\n").expect("writing the cells");
        let out = dir.join("readings.txt");
        let readings = self.run(&[&input, &out], "read", version);
        assert_eq!(readings.len(), cells.len(), "one reading per cell");
        readings
    }
}

/// The normalizer's reading, written as the oracle writes it.
pub fn ours(normalizer: &Normalizer, text: &str) -> String {
    match normalizer.normalize(text) {
        Normalized::Empty => "empty".into(),
        Normalized::Invalid => "invalid".into(),
        Normalized::Valid(n) => format!("+{n}"),
    }
}

/// The seed of this run: `PHONE_ENRICH_ORACLE_SEED`, else a fresh one; printed either way.
fn seed() -> u64 {
    let seed = std::env::var("PHONE_ENRICH_ORACLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_nanos() as u64
        });
    println!("corpus seed {seed} (PHONE_ENRICH_ORACLE_SEED={seed} repeats this run)");
    seed
}

/// Builds the corpus from the oracle's examples, reads it both ways, and fails listing the
/// first disagreements.
fn hold_to_libphonenumber(oracle: &Oracle, metadata: PhoneMetadata, version: &str) {
    let dir = tempfile::tempdir().unwrap();
    let examples = oracle.examples(dir.path(), version);
    assert!(examples.len() > 1000, "{} examples", examples.len());
    let cells = corpus::cells(&examples, seed());
    assert!(cells.len() >= 50_000, "{} cells", cells.len());
    let theirs = oracle.readings(dir.path(), &cells, version);
    dump(&cells, &theirs, version);
    let mut disagreements = Vec::new();
    for (cell, theirs) in cells.iter().zip(&theirs) {
        let region: Region = cell.region.parse().expect("a region");
        let ours = ours(&Normalizer::new(region, metadata), &cell.text);
        if ours != *theirs {
            disagreements.push(format!(
                "{} {:?} ({}): ours {ours}, libphonenumber {theirs}",
                cell.region, cell.text, cell.kind
            ));
        }
    }
    let valid = theirs.iter().filter(|r| r.starts_with('+')).count();
    println!(
        "{} cells ({valid} valid to libphonenumber), {} disagreements, plans {}",
        cells.len(),
        disagreements.len(),
        metadata.describe()
    );
    assert!(
        disagreements.is_empty(),
        "{} of {} cells read differently from libphonenumber {version}; the first:\n{}",
        disagreements.len(),
        cells.len(),
        disagreements[..disagreements.len().min(40)].join("\n")
    );
}

/// With `PHONE_ENRICH_ORACLE_DUMP=DIR`, the corpus and libphonenumber's readings as
/// `DIR/corpus-VERSION.jsonl` (`[region, cell, kind, reading]`), to compare another build with.
fn dump(cells: &[Cell], theirs: &[String], version: &str) {
    let Some(dir) = std::env::var_os("PHONE_ENRICH_ORACLE_DUMP") else {
        return;
    };
    let lines: Vec<String> = cells
        .iter()
        .zip(theirs)
        .map(|(c, r)| serde_json::to_string(&(c.region, &c.text, c.kind, r)).expect("JSON"))
        .collect();
    let path = Path::new(&dir).join(format!("corpus-{version}.jsonl"));
    std::fs::write(&path, lines.join("\n") + "\n").expect("writing the dump");
}

/// The version `BUILT_IN_VERSION` names (`libphonenumber 9.0.42`).
fn built_in_version() -> &'static str {
    BUILT_IN_VERSION.rsplit(' ').next().expect("a version")
}

#[test]
fn every_cell_reads_as_libphonenumber_reads_it_with_the_built_in_plans() {
    hold_to_libphonenumber(
        &Oracle::installed(),
        PhoneMetadata::built_in(),
        built_in_version(),
    );
}

/// libphonenumber's XML of another release, loaded as `normalize.metadata`, against
/// `phonenumbers` of that release.
#[test]
fn every_cell_reads_as_libphonenumber_reads_it_with_loaded_plans() {
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("PhoneNumberMetadata-9.0.33.xml");
    std::fs::write(&xml, crate::common::plans_9_0_33()).unwrap();
    let metadata = PhoneMetadata::load(&xml).expect("the 9.0.33 XML loads");
    hold_to_libphonenumber(&Oracle::at_version("9.0.33"), metadata, "9.0.33");
}
