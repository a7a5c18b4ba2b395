//! CI without AFL: every corpus file replayed through its target, and a bounded number
//! of arbitrary inputs per target (proptest), so a regression fails `cargo test`.

use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

/// `fuzz/corpus/<target>/`.
fn corpus_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(name)
}

#[test]
fn every_target_has_a_seed_corpus_and_replays_it() {
    for (name, target) in axs_fuzz::TARGETS {
        let entries =
            fs::read_dir(corpus_dir(name)).unwrap_or_else(|e| panic!("corpus/{name}: {e}"));
        let mut files = 0;
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("corpus/{name}: {e}"))
                .path();
            let data = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            println!("{}", path.display());
            target(&data);
            files += 1;
        }
        assert!(files > 0, "corpus/{name} is empty");
    }
}

#[test]
fn the_afl_harness_names_every_target() {
    for (name, _) in axs_fuzz::TARGETS {
        assert!(axs_fuzz::target(name).is_some());
    }
    assert!(axs_fuzz::target("no-such-target").is_none());
}

/// Arbitrary inputs, and corpus-shaped ones: a seed with a few bytes overwritten.
fn inputs(name: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let seeds: Vec<Vec<u8>> = fs::read_dir(corpus_dir(name))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| fs::read(e.path()).ok())
        .filter(|d| !d.is_empty())
        .collect();
    let mutated = (
        0..seeds.len().max(1),
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..8),
    )
        .prop_map(move |(i, edits)| {
            let mut data = seeds.get(i).cloned().unwrap_or_default();
            for (at, byte) in edits {
                if !data.is_empty() {
                    let at = at % data.len();
                    data[at] = byte;
                }
            }
            data
        });
    prop_oneof![prop::collection::vec(any::<u8>(), 0..600), mutated]
}

macro_rules! arbitrary_bytes {
    ($($test:ident => $name:literal,)*) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]
            $(
                #[test]
                fn $test(data in inputs($name)) {
                    let target = axs_fuzz::target($name).ok_or("unknown target").map_err(TestCaseError::fail)?;
                    target(&data);
                }
            )*
        }
    };
}

arbitrary_bytes! {
    arbitrary_http_head => "http_head",
    arbitrary_query => "query",
    arbitrary_conn => "conn",
    arbitrary_json_body => "json_body",
    arbitrary_cli_split => "cli_split",
    arbitrary_term_replay => "term_replay",
    arbitrary_ws_control => "ws_control",
    arbitrary_lsp_codec => "lsp_codec",
}
