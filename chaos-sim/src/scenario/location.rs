//! Error locations: field paths, their spans in the text, line and column.

use super::*;

/// An error with a field path, before it is given a position.
pub(super) struct Located {
    pub(super) path: String,
    pub(super) message: String,
}

#[derive(Default)]
pub(super) struct Spans {
    pub(super) by_path: BTreeMap<String, Range<usize>>,
}

impl Spans {
    pub(super) fn record(&mut self, path: impl Into<String>, span: Range<usize>) {
        self.by_path.entry(path.into()).or_insert(span);
    }

    pub(super) fn error(&self, text: &str, file: &str, e: Located) -> ScenarioError {
        // The recorded span of the path, else of its closest recorded ancestor.
        let mut path = e.path.as_str();
        let offset = loop {
            if let Some(span) = self.by_path.get(path) {
                break Some(span.start);
            }
            match path.rsplit_once('.') {
                Some((parent, _)) => path = parent,
                None => break None,
            }
        };
        let offset = offset.unwrap_or_else(|| section_offset(text, &e.path));
        positioned(text, file, offset, e.path, e.message)
    }
}

/// Offset of the section a path starts with (`[load]`, `[[function]]`), else 0.
pub(super) fn section_offset(text: &str, path: &str) -> usize {
    let section = path.split('.').next().unwrap_or("");
    for pattern in [format!("[{section}]"), format!("[[{section}]]")] {
        if let Some(i) = text.find(&pattern) {
            return i;
        }
    }
    0
}

pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize, &str) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    (line, column, &text[line_start..line_end])
}

pub(super) fn positioned(
    text: &str,
    file: &str,
    offset: usize,
    field: String,
    message: String,
) -> ScenarioError {
    let (line, column, source) = line_col(text, offset);
    ScenarioError {
        file: file.to_string(),
        line,
        column,
        field,
        message,
        snippet: Some(render_snippet(source, line, column)),
    }
}

/// The source line with the column marked, rendered by annotate-snippets (which also trims a
/// long line around the column, so a mark at column 100,000 costs nothing special).
fn render_snippet(source: &str, line: usize, column: usize) -> String {
    use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
    // The 1-based character column as a byte range of one character (empty at line end).
    let start = source
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(source.len(), |(i, _)| i);
    let end = source[start..]
        .chars()
        .next()
        .map_or(start, |c| start + c.len_utf8());
    let report = [Group::with_level(Level::ERROR).element(
        Snippet::source(source)
            .line_start(line)
            .annotation(AnnotationKind::Primary.span(start..end)),
    )];
    Renderer::plain().render(&report).to_string()
}

/// The dotted field path at `offset`: the enclosing `[table]` plus the nearest `key =`.
/// `fault` for a line `[[fault]]`, `simulation` for `[simulation]`.
fn header_name(line: &str) -> String {
    line.trim_start_matches('[')
        .split(']')
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

pub(super) fn field_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    // An error spanning a whole table (one a rule's checks reject) starts at its header.
    let line_so_far = &before[before.rfind('\n').map_or(0, |n| n + 1)..];
    if line_so_far.trim().is_empty() && text[offset..].starts_with('[') {
        return header_name(&text[offset..]);
    }
    let mut section = String::new();
    for line in before.lines().rev() {
        let t = line.trim_start();
        if t.starts_with('[') {
            section = header_name(t);
            break;
        }
    }
    // The span may sit on the key itself (unknown field) or on the value.
    let after = &text[offset..];
    let word: String = after
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    let key = if !word.is_empty() && after[word.len()..].trim_start().starts_with('=') {
        Some(word)
    } else {
        before.rfind('=').map(|eq| {
            let k: String = before[..eq]
                .trim_end()
                .chars()
                .rev()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            k.chars().rev().collect::<String>()
        })
    };
    match key {
        Some(k) if !k.is_empty() && !section.is_empty() => format!("{section}.{k}"),
        Some(k) if !k.is_empty() => k,
        _ => section,
    }
}

pub(super) fn toml_error(text: &str, file: &str, e: &toml::de::Error) -> ScenarioError {
    let offset = e.span().map_or(0, |s| s.start);
    let mut message = e.message().trim().to_string();
    if let Some(s) = suggest_from_message(&message) {
        message.push_str(&format!("; did you mean `{s}`?"));
    }
    positioned(text, file, offset, field_at(text, offset), message)
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" (and variants), the closest
/// expected name.
pub(super) fn suggest_from_message(message: &str) -> Option<String> {
    let rest = message
        .split_once("unknown field ")
        .or_else(|| message.split_once("unknown variant "))?
        .1;
    let names: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    let (found, expected) = names.split_first()?;
    closest(found, expected.iter().copied())
}
