//! The fast path on the generated profiles' cells (`generate`, which `normalize` may not
//! import): it says what `rlibphonenumber` says, and it says it for nearly every cell, so that
//! normalizing a CRM export stays as fast as the profiles' benchmarks measure
//! (`src/normalize/fast/tests.rs` holds random and noisy cells alike).

use phone_enrich::generate::{phone_cells, Profile};
use phone_enrich::normalize::{Normalizer, PhoneMetadata, Region};

#[test]
fn the_fast_path_reads_nearly_every_generated_cell_as_rlibphonenumber() {
    for profile in [Profile::Standard, Profile::Messy] {
        let cells: Vec<String> = phone_cells(profile, 20_000, 1.0, 18)
            .into_iter()
            .flatten()
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect();
        for region in [Region::RU, Region::KZ, Region::DE, Region::US] {
            let n = Normalizer::new(region, PhoneMetadata::built_in());
            let mut told = 0;
            for text in &cells {
                if let Some(fast) = n.fast_path(text) {
                    told += 1;
                    assert_eq!(fast, n.read(text), "{profile:?} {region} {text:?}");
                }
            }
            // Before the fast path read notes and extensions (issue 18), 95.6% of messy cells.
            assert!(
                told * 100 >= cells.len() * 99,
                "{profile:?} {region}: the fast path told {told} of {}",
                cells.len()
            );
        }
    }
}
