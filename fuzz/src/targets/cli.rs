//! The `-c` command splitter ([`axs_host::cli::split_command`]).
//!
//! Asserts: print∘parse is stable (the words of any line that splits, quoted back and
//! split again, are the same words); parse∘print round-trips for any word list the input
//! picks (NUL-separated), whatever characters the words hold; a line of plain words
//! splits on blanks; and an error is one of the two documented ones.

use axs_host::cli::{split_command, SplitError};

/// Fuzz target `cli_split`: the input as a command line, and as a list of words.
pub fn split(data: &[u8]) {
    let line = String::from_utf8_lossy(data);
    match split_command(&line) {
        Ok(words) => {
            assert_eq!(
                split_command(&quote_words(&words)),
                Ok(words.clone()),
                "{line:?}"
            );
            let plain = !line.contains(['\'', '"', '\\']);
            if plain {
                let blanks = line.split([' ', '\t', '\n']).filter(|w| !w.is_empty());
                assert!(words.iter().map(String::as_str).eq(blanks), "{line:?}");
            }
        }
        Err(SplitError::TrailingBackslash) => assert!(line.ends_with('\\'), "{line:?}"),
        Err(SplitError::UnterminatedQuote(q)) => {
            assert!(q == '\'' || q == '"' && line.contains('"'))
        }
    }
    let words: Vec<String> = line.split('\0').map(str::to_string).collect();
    assert_eq!(split_command(&quote_words(&words)), Ok(words));
}

/// Each word in single quotes (a `'` inside written `'\''`), joined by spaces: the
/// printer a shell user would write.
pub fn quote_words(words: &[String]) -> String {
    let quoted: Vec<String> = words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
        .collect();
    quoted.join(" ")
}
