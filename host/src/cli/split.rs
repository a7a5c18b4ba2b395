//! Splitting a `-c` command line into words the way a POSIX shell does, minus expansions.

use std::fmt;

/// Why a command line could not be split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitError {
    /// A `'` or `"` is never closed.
    UnterminatedQuote(char),
    /// The line ends with a lone backslash.
    TrailingBackslash,
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitError::UnterminatedQuote(q) => write!(f, "unterminated {q} quote"),
            SplitError::TrailingBackslash => f.write_str("ends with a lone backslash"),
        }
    }
}

impl std::error::Error for SplitError {}

/// Splits `line` into words: blanks separate words; `'...'` is literal; in `"..."` a
/// backslash escapes only `"`, `\`, `$`, `` ` `` and newline; outside quotes a backslash
/// escapes any character (backslash-newline joins lines). No variables, globs or
/// operators: `-c "sh -c '...'"` gives those.
pub fn split_command(line: &str) -> Result<Vec<String>, SplitError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                single_quoted(&mut chars, &mut word)?;
            }
            '"' => {
                in_word = true;
                double_quoted(&mut chars, &mut word)?;
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(escaped) => {
                    in_word = true;
                    word.push(escaped);
                }
                None => return Err(SplitError::TrailingBackslash),
            },
            other => {
                in_word = true;
                word.push(other);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Copies up to the closing `'`, literally.
fn single_quoted(chars: &mut std::str::Chars<'_>, word: &mut String) -> Result<(), SplitError> {
    for c in chars.by_ref() {
        if c == '\'' {
            return Ok(());
        }
        word.push(c);
    }
    Err(SplitError::UnterminatedQuote('\''))
}

/// Copies up to the closing `"`, honouring the backslash escapes POSIX allows there.
fn double_quoted(chars: &mut std::str::Chars<'_>, word: &mut String) -> Result<(), SplitError> {
    while let Some(c) = chars.next() {
        match c {
            '"' => return Ok(()),
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(e @ ('"' | '\\' | '$' | '`')) => word.push(e),
                Some(other) => {
                    word.push('\\');
                    word.push(other);
                }
                None => break,
            },
            other => word.push(other),
        }
    }
    Err(SplitError::UnterminatedQuote('"'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split(line: &str) -> Vec<String> {
        split_command(line).unwrap()
    }

    #[test]
    fn whitespace_separates() {
        assert_eq!(
            split("bash --rcfile /initrc -i"),
            ["bash", "--rcfile", "/initrc", "-i"]
        );
        assert_eq!(split("  sh \t\n"), ["sh"]);
        assert!(split("").is_empty());
        assert!(split("   ").is_empty());
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(
            split(r#"sh -c 'echo "$HOME" \n'"#),
            ["sh", "-c", r#"echo "$HOME" \n"#]
        );
        assert_eq!(split("''"), [""]);
        assert_eq!(split("a'b c'd"), ["ab cd"]);
    }

    #[test]
    fn double_quotes_escape_a_few() {
        assert_eq!(split(r#""a \"b\" \\ \$ \n""#), [r#"a "b" \ $ \n"#]);
        assert_eq!(split(r#""""#), [""]);
        assert_eq!(split("\"a\\\nb\""), ["ab"]);
    }

    #[test]
    fn backslash_outside_quotes() {
        assert_eq!(split(r"a\ b c\'d"), ["a b", "c'd"]);
        assert_eq!(split("a\\\nb"), ["ab"]);
        assert_eq!(split(r"\\"), [r"\"]);
    }

    #[test]
    fn errors() {
        assert_eq!(
            split_command("sh -c 'oops"),
            Err(SplitError::UnterminatedQuote('\''))
        );
        assert_eq!(
            split_command("\"oops"),
            Err(SplitError::UnterminatedQuote('"'))
        );
        assert_eq!(
            split_command("\"oops\\"),
            Err(SplitError::UnterminatedQuote('"'))
        );
        assert_eq!(split_command("oops\\"), Err(SplitError::TrailingBackslash));
    }

    proptest! {
        #[test]
        fn never_panics(line in any::<String>()) {
            let _ = split_command(&line);
        }

        #[test]
        fn single_quoting_round_trips(words in proptest::collection::vec("[^']{0,12}", 1..5)) {
            let line = words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" ");
            prop_assert_eq!(split_command(&line).unwrap(), words);
        }
    }
}
