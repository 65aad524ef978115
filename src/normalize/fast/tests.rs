//! The fast path held to `rlibphonenumber` (`Normalizer::read`): random cells of the shapes it
//! reads — digits of every country code's lengths, with and without `+`, the default region's
//! national and international prefixes, punctuation, stray pluses, several numbers, with notes,
//! extensions, letters and other characters around them — in several default regions, with the
//! built-in plans and a loaded file. Wherever the fast path tells, it must tell what
//! `rlibphonenumber` tells; and it must tell for most of them.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::normalize::{Normalizer, PhoneMetadata, Region};

const REGIONS: [Region; 10] = [
    Region::RU,
    Region::KZ,
    Region::BY,
    Region::UA,
    Region::DE,
    Region::GB,
    Region::US,
    Region::AR,
    Region::IT,
    Region::BR,
];

/// A random cell of the fast path's characters.
fn cell(rng: &mut StdRng) -> String {
    let prefixes = [
        "", "+", "8", "810", "00", "0", "011", "7", "1", "+7", "+44", "+1", "++", "8 10 ", "+49 0",
        "(0", "+0",
    ];
    let mut text = prefixes[rng.random_range(0..prefixes.len())].to_string();
    let len = rng.random_range(1..15);
    let separators = [" ", "-", ".", "(", ")", "/", "", "", "", ""];
    for _ in 0..len {
        text.push(char::from(b'0' + rng.random_range(0..10u8)));
        if rng.random_bool(0.3) {
            text.push_str(separators[rng.random_range(0..separators.len())]);
        }
    }
    if rng.random_bool(0.03) {
        let at = rng.random_range(0..=text.len());
        text.insert(at, '+');
    }
    text
}

/// What [`noisy_cell`] writes around numbers.
const AROUND: &[&str] = include!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/around_numbers.rs"
));

/// A random cell of the fast path's characters with what people and systems write around
/// numbers: notes in Russian and English, extension labels, several numbers, keypad letters,
/// libphonenumber's other punctuation, RFC 3966 parameters and characters it leaves to
/// `rlibphonenumber`.
fn noisy_cell(rng: &mut StdRng) -> String {
    let mut text = String::new();
    for _ in 0..rng.random_range(0..3) {
        text.push_str(AROUND[rng.random_range(0..AROUND.len())]);
    }
    text.push_str(&cell(rng));
    for _ in 0..rng.random_range(0..3) {
        text.push_str(AROUND[rng.random_range(0..AROUND.len())]);
        if rng.random_bool(0.3) {
            text.push_str(&cell(rng));
        }
    }
    if rng.random_bool(0.1) {
        // Letters of a vanity number (`1-800-FLOWERS`), any case: keypad digits.
        let at = rng.random_range(0..=text.len());
        if text.is_char_boundary(at) {
            let len = rng.random_range(1..8);
            let word: String = (0..len)
                .map(|_| {
                    let upper = rng.random_range(b'A'..=b'Z');
                    let lower = rng.random_bool(0.5);
                    char::from(if lower {
                        upper.to_ascii_lowercase()
                    } else {
                        upper
                    })
                })
                .collect();
            text.insert_str(at, &word);
        }
    }
    text
}

/// Every region's example numbers (as `rlibphonenumber` gives them), in national and
/// international digits.
fn example_cells(metadata: PhoneMetadata) -> Vec<String> {
    let util = metadata.util();
    let mut cells = Vec::new();
    for region in util.get_supported_regions() {
        for kind in util
            .get_supported_types_for_region(region)
            .into_iter()
            .flatten()
        {
            if let Ok(n) = util.get_example_number_for_type_and_region(region, kind) {
                let national = rlibphonenumber::get_national_significant_number_owned(&n);
                cells.push(format!("+{}{national}", n.country_code));
                cells.push(format!("{}{national}", n.country_code));
                cells.push(national.clone());
                cells.push(format!("8{national}"));
                cells.push(format!("0{national}"));
            }
        }
    }
    cells
}

/// Example numbers, random cells and noisy cells: fast path and reference agree wherever the
/// fast path tells, and it tells for at least the given share of each kind. (The generated
/// profiles' cells are held alike by `tests/it/fast_path.rs`: `generate` is above `normalize`.)
fn hold_equal(metadata: PhoneMetadata, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut plain: Vec<String> = (0..40_000).map(|_| cell(&mut rng)).collect();
    plain.extend(example_cells(metadata));
    let noisy: Vec<String> = (0..40_000).map(|_| noisy_cell(&mut rng)).collect();
    for (kind, cells, share) in [("plain", plain, 0.8), ("noisy", noisy, 0.5)] {
        let (mut told, mut checked) = (0, 0);
        for region in REGIONS {
            let n = Normalizer::new(region, metadata);
            for text in cells.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
                checked += 1;
                if let Some(fast) = n.fast_path(text) {
                    told += 1;
                    assert_eq!(fast, n.read(text), "{region} {text:?}");
                }
            }
        }
        println!("{kind}: the fast path told {told} of {checked}");
        assert!(
            told as f64 >= checked as f64 * share,
            "{kind}: the fast path told {told} of {checked}"
        );
    }
}

#[test]
fn the_fast_path_reads_as_rlibphonenumber_with_the_built_in_plans() {
    hold_equal(PhoneMetadata::built_in(), 18);
}

#[test]
fn the_fast_path_reads_as_rlibphonenumber_with_loaded_plans() {
    let gz = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/PhoneNumberMetadata-9.0.33.xml.gz"
    );
    let mut xml = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(gz).unwrap()),
        &mut xml,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("PhoneNumberMetadata.xml");
    std::fs::write(&path, xml).unwrap();
    hold_equal(PhoneMetadata::load(&path).unwrap(), 33);
}
