//! Normalization speed on one core: the fast path against the `phonenumber` crate on the same
//! distinct values of a generated export. Prints rates and their ratio (both measured here).
//!
//!     cargo bench --bench normalize [-- DISTINCT]

use std::collections::HashSet;
use std::time::Instant;

use phone_enrich::generate::phone_cells;
use phone_enrich::normalize::Normalizer;

fn main() {
    let distinct: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(300_000);
    let cells = phone_cells((distinct as f64 / 0.6 * 1.2) as u64, 0.6, 11);
    let mut seen = HashSet::new();
    let values: Vec<String> = cells
        .into_iter()
        .flatten()
        .filter(|c| seen.insert(c.clone()))
        .take(distinct)
        .collect();
    let n = Normalizer::new(phonenumber::country::Id::RU);

    let start = Instant::now();
    let by_crate: Vec<_> = values.iter().map(|v| n.crate_path(v.trim())).collect();
    let crate_secs = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let ours: Vec<_> = values.iter().map(|v| n.normalize(v)).collect();
    let our_secs = start.elapsed().as_secs_f64();

    let disagreements = by_crate.iter().zip(&ours).filter(|(a, b)| a != b).count();
    let crate_rate = values.len() as f64 / crate_secs;
    let our_rate = values.len() as f64 / our_secs;
    println!("distinct values          {:>12}", values.len());
    println!("phonenumber crate        {:>12.0} values/s", crate_rate);
    println!("phone-enrich normalize   {:>12.0} values/s", our_rate);
    println!("ratio                    {:>12.1}x", our_rate / crate_rate);
    println!("disagreements            {:>12}", disagreements);
    assert_eq!(disagreements, 0, "the fast path disagrees with the crate");
}
