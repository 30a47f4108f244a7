//! Compiled selector parts: globs over names, and event conditions.

use std::fmt;

use regex::Regex;

#[derive(Clone, Debug)]
pub(super) enum CompiledTest {
    Equals(serde_json::Value),
    Exists(bool),
    Prefix(String),
    Regex(Regex),
}

/// A compiled glob. Plain names and `prefix*` / `*suffix` patterns skip the glob engine.
#[derive(Clone)]
pub(super) enum Pattern {
    Any,
    Exact(String),
    Prefix(String),
    Suffix(String),
    Glob(globset::GlobMatcher),
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("Any"),
            Self::Exact(s) => write!(f, "Exact({s:?})"),
            Self::Prefix(s) => write!(f, "Prefix({s:?})"),
            Self::Suffix(s) => write!(f, "Suffix({s:?})"),
            Self::Glob(g) => write!(f, "Glob({:?})", g.glob().glob()),
        }
    }
}

impl Pattern {
    pub(super) fn compile(glob: Option<&str>) -> Result<Self, String> {
        let Some(glob) = glob else {
            return Ok(Self::Any);
        };
        let is_meta = |c: char| matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\');
        if glob == "*" || glob == "**" {
            return Ok(Self::Any);
        }
        if !glob.contains(is_meta) {
            return Ok(Self::Exact(glob.to_owned()));
        }
        if let Some(prefix) = glob.strip_suffix('*')
            && !prefix.contains(is_meta)
        {
            return Ok(Self::Prefix(prefix.to_owned()));
        }
        if let Some(suffix) = glob.strip_prefix('*')
            && !suffix.contains(is_meta)
        {
            return Ok(Self::Suffix(suffix.to_owned()));
        }
        globset::Glob::new(glob)
            .map(|g| Self::Glob(g.compile_matcher()))
            .map_err(|e| format!("invalid glob {glob:?}: {e}"))
    }

    #[inline]
    pub(super) fn matches(&self, text: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(s) => s == text,
            Self::Prefix(p) => text.starts_with(p.as_str()),
            Self::Suffix(s) => text.ends_with(s.as_str()),
            Self::Glob(g) => g.is_match(text),
        }
    }
}
