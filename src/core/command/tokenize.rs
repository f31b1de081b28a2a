//! The console line tokenizer: `/name key:value key:"two words"`.

use super::CommandError;

/// Splits a console line such as `/request app:figma reason:"landing page mock-ups"` into the
/// command's name (without `/`) and its `name:value` pairs, in the order typed.
///
/// Bare words right after the name, before the first `name:value`, belong to the name,
/// joined by one space: `/mfa confirm code:123456` is `mfa confirm` with `code`. A bare word
/// after a `name:value` is an error.
///
/// A value is either bare (up to the next whitespace) or double-quoted, where `\"` stands for
/// a quote and `\\` for a backslash (any other backslash is kept as typed). Nothing is checked
/// against the command files here; [`Registry::validate`](super::Registry::validate) does that.
pub fn tokenize(line: &str) -> Result<(String, Vec<(String, String)>), CommandError> {
    let line = line.trim();
    let Some(rest) = line.strip_prefix('/') else {
        return Err(CommandError::NotACommand {
            line: line.to_owned(),
        });
    };
    let (name, mut rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if name.is_empty() {
        return Err(CommandError::NotACommand {
            line: line.to_owned(),
        });
    }
    let mut name = name.to_owned();
    loop {
        rest = rest.trim_start();
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        if word_end == 0 || rest[..word_end].contains(':') {
            break;
        }
        name.push(' ');
        name.push_str(&rest[..word_end]);
        rest = &rest[word_end..];
    }
    let mut pairs = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let Some(colon) = rest[..word_end].find(':').filter(|&i| i > 0) else {
            return Err(CommandError::BareToken {
                token: rest[..word_end].to_owned(),
            });
        };
        let key = rest[..colon].to_owned();
        let after = &rest[colon + 1..];
        if let Some(quoted) = after.strip_prefix('"') {
            let (value, used) =
                read_quoted(quoted).ok_or_else(|| CommandError::UnterminatedQuote {
                    option: key.clone(),
                })?;
            rest = &quoted[used..];
            if rest.starts_with(|c: char| !c.is_whitespace()) {
                return Err(CommandError::AfterQuote { option: key });
            }
            pairs.push((key, value));
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            if end == 0 {
                return Err(CommandError::EmptyValue { option: key });
            }
            pairs.push((key, after[..end].to_owned()));
            rest = &after[end..];
        }
    }
    Ok((name, pairs))
}

/// Reads a quoted value just after its opening quote; returns it unescaped and the number of
/// bytes used (closing quote included), or `None` when the quote never closes.
fn read_quoted(s: &str) -> Option<(String, usize)> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, i + 1)),
            '\\' => match chars.next() {
                Some((_, e @ ('"' | '\\'))) => value.push(e),
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => return None,
            },
            other => value.push(other),
        }
    }
    None
}
