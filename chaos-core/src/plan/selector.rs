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

    /// A route selector: the template compared literally (braces are the router's), with a
    /// trailing `*` outside braces as a prefix match and `"*"` as any route.
    pub(super) fn compile_route(route: Option<&str>) -> Self {
        match route {
            None | Some("*") => Self::Any,
            Some(route) => match route.strip_suffix('*') {
                // `{*rest}` is axum's catch-all, so a `*` ends a prefix only outside braces.
                Some(prefix) if prefix.rfind('{') <= prefix.rfind('}') => {
                    Self::Prefix(prefix.to_owned())
                }
                _ => Self::Exact(route.to_owned()),
            },
        }
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

/// Why a glob can never match what its field holds, when that is sure from its text alone:
/// a brace group with no comma (`/orders/{id}`) is an alternation of one choice, so it matches
/// only the literal text inside (`/orders/id`), never a route template or a real path.
pub(super) fn glob_never_matches(glob: &str) -> Option<String> {
    let bytes = glob.as_bytes();
    let mut position = 0;
    while let Some(&byte) = bytes.get(position) {
        match byte {
            b'\\' => position += 2,
            b'{' => {
                let rest = glob.get(position + 1..).unwrap_or_default();
                let close = rest.find('}')?;
                let group = rest.get(..close).unwrap_or_default();
                if !group.contains(',') {
                    let route_hint = glob
                        .find('/')
                        .and_then(|slash| glob.get(slash..))
                        .map(|route| {
                            format!(
                                "to match an HTTP route template write `match.route = {route:?}`; "
                            )
                        })
                        .unwrap_or_default();
                    return Some(format!(
                        "the glob {glob:?} holds `{{{group}}}`, an alternation of one choice: it \
                         matches only the literal text {group:?}; {route_hint}to match the braces \
                         themselves escape them (`\\{{{group}\\}}`)"
                    ));
                }
                position += close + 2;
            }
            _ => position += 1,
        }
    }
    None
}

/// Why a route selector can never match: the routes the HTTP extractor reads (a router's
/// template, else the URI path) start with `/`.
pub(super) fn route_never_matches(route: &str) -> Option<String> {
    (route != "*" && !route.starts_with('/')).then(|| {
        format!(
            "the route {route:?} does not start with `/`, and every route a request matches \
             does: write it as {:?}",
            format!("/{route}")
        )
    })
}
