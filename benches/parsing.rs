//! Parsing and checking speed: one procedure, a 10 MB file, and the whole starter library.

use std::path::Path;

use procbot::core::check::check_repository;
use procbot::core::parse::parse_procedure;
use procbot::repo::{DIRECTORY_FILE, read_folder};

fn main() {
    divan::main();
}

fn starter_procedure() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("procedures/operations/backup-customer-data.md"),
    )
    .expect("the starter library has the backup procedure")
}

/// A real procedure padded with prose to 10 MB, the size `check` promises to handle quickly.
fn ten_megabyte_procedure() -> Vec<u8> {
    let mut text = starter_procedure();
    let paragraph = b"Lorem ipsum dolor sit amet, with `inline code`, **bold** and [links](https://example.com).\n\n1. A numbered line that is not in the Steps section.\n\n";
    while text.len() < 10 * 1024 * 1024 {
        text.extend_from_slice(paragraph);
    }
    text
}

#[divan::bench]
fn parse_one_starter_procedure(bencher: divan::Bencher) {
    let bytes = starter_procedure();
    bencher
        .counter(divan::counter::BytesCount::new(bytes.len()))
        .bench(|| {
            parse_procedure(
                "operations/backup-customer-data.md",
                divan::black_box(&bytes),
            )
        });
}

#[divan::bench(sample_count = 10)]
fn parse_ten_megabyte_file(bencher: divan::Bencher) {
    let bytes = ten_megabyte_procedure();
    bencher
        .counter(divan::counter::BytesCount::new(bytes.len()))
        .bench(|| parse_procedure("big.md", divan::black_box(&bytes)));
}

#[divan::bench(sample_count = 20)]
fn check_starter_library_from_disk() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("procedures");
    let files =
        read_folder(&root, Path::new(DIRECTORY_FILE)).expect("the starter library is readable");
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).expect("a valid date");
    divan::black_box(check_repository(files.procedures, files.directory, today));
}
