//! Normalization speed on one core, on the phone cells of generated exports of both profiles
//! (`standard`, `messy`): `Normalizer::normalize` on distinct values (every one a reading by
//! libphonenumber's algorithm), then on every cell as a pass meets them (repeats, the memo).
//! Prints rates (all measured here) and how the cells read.
//!
//! With `--metadata PATH`, every reading uses that libphonenumber `PhoneNumberMetadata.xml`
//! (`normalize.metadata`), and the time loading it took is printed first.
//!
//!     cargo bench --bench normalize [-- DISTINCT] [--metadata PATH]

use std::collections::HashSet;
use std::time::Instant;

use phone_enrich::generate::{phone_cells, Profile};
use phone_enrich::normalize::{Normalized, Normalizer, PhoneMetadata, Region};

const REGION: Region = Region::RU;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let distinct: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(300_000);
    let metadata = match args.iter().position(|a| a == "--metadata") {
        Some(i) => {
            let path = std::path::Path::new(args.get(i + 1).expect("--metadata PATH"));
            let start = Instant::now();
            let loaded = PhoneMetadata::load(path).expect("a metadata file");
            println!(
                "loading {}: {:.0} ms",
                loaded.describe(),
                start.elapsed().as_secs_f64() * 1e3
            );
            loaded
        }
        None => PhoneMetadata::built_in(),
    };
    let start = Instant::now();
    Normalizer::new(REGION, metadata).read("+7 916 123 45 67");
    println!(
        "first reading (plans decoded): {:.0} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    for profile in [Profile::Standard, Profile::Messy] {
        measure(profile, distinct, metadata);
    }
}

/// Each measurement on a thread of its own, named for profilers (`perf report --sort comm`):
/// the normalizer's per-thread rules and memo start empty, as on a pass's worker.
fn on_a_new_thread<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn_scoped(s, f)
            .expect("threads can be started")
            .join()
            .expect("the measurement ran")
    })
}

/// Values per second.
fn rate(values: usize, f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    values as f64 / start.elapsed().as_secs_f64()
}

fn measure(profile: Profile, distinct: usize, metadata: PhoneMetadata) {
    let cells = phone_cells(profile, (distinct as f64 / 0.6 * 1.2) as u64, 0.6, 11);
    let mut seen = HashSet::new();
    let values: Vec<&str> = cells
        .iter()
        .flatten()
        .map(|c| c.trim())
        .filter(|c| !c.is_empty() && seen.insert(*c))
        .take(distinct)
        .collect();
    let n = Normalizer::new(REGION, metadata);

    let mut ours = Vec::new();
    let our_rate = on_a_new_thread("distinct", || {
        rate(values.len(), || {
            ours = values.iter().map(|v| n.normalize(v)).collect();
        })
    });
    let mut every = Vec::new();
    let every_rate = on_a_new_thread("every-cell", || {
        rate(cells.len(), || {
            every = cells
                .iter()
                .map(|c| c.as_deref().map_or(Normalized::Empty, |c| n.normalize(c)))
                .collect();
        })
    });
    println!("profile {profile:?}");
    println!("  distinct values          {:>12}", values.len());
    println!("  phone-enrich normalize   {our_rate:>12.0} values/s");
    println!(
        "  every cell (repeats too) {every_rate:>12.0} cells/s, {} cells",
        cells.len()
    );
    print_spread("cells", &every);
    print_spread("distinct values", &ours);
}

/// How the cells read: empty, invalid, valid in the default region's country code, or foreign.
fn print_spread(what: &str, cells: &[Normalized]) {
    let (mut empty, mut invalid, mut home, mut foreign) = (0, 0, 0, 0);
    for cell in cells {
        match cell {
            Normalized::Empty => empty += 1,
            Normalized::Invalid => invalid += 1,
            Normalized::Valid(n) if n.0 / 10_000_000_000 == 7 => home += 1,
            Normalized::Valid(_) => foreign += 1,
        }
    }
    let share = |n: usize| 100.0 * n as f64 / cells.len() as f64;
    println!(
        "  {what:<24} empty {:.1}%, invalid {:.1}%, valid +7 {:.1}%, valid foreign {:.1}%",
        share(empty),
        share(invalid),
        share(home),
        share(foreign)
    );
}
