//! Pretty JSON with arrays of numbers on one line: serde_json's pretty layout puts every
//! element on its own line, which turns a report's per-interval series into thousands of
//! lines. Objects, and arrays of strings or objects, keep the pretty layout.

use serde::Serialize;
use serde_json::ser::{Formatter, Serializer};
use std::io::{self, Write};

/// `value` as pretty JSON with arrays of numbers (and `null`s) kept on one line.
pub(crate) fn to_string(value: &impl Serialize) -> serde_json::Result<String> {
    let mut out = Vec::new();
    let mut ser = Serializer::with_formatter(&mut out, CompactArrays::default());
    value.serialize(&mut ser)?;
    // serde_json writes only UTF-8.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    Undecided,
    Inline,
    Block,
}

#[derive(Default)]
struct CompactArrays {
    indent: usize,
    has_value: bool,
    arrays: Vec<Layout>,
    /// An array element is about to be written: `Some(first)` until its first token decides
    /// the array's layout.
    pending: Option<bool>,
}

impl CompactArrays {
    fn newline<W: ?Sized + Write>(&self, w: &mut W) -> io::Result<()> {
        w.write_all(b"\n")?;
        for _ in 0..self.indent {
            w.write_all(b"  ")?;
        }
        Ok(())
    }

    /// Writes the separator before an array element, once its first token shows whether it is
    /// a number (`scalar`) or not.
    fn element<W: ?Sized + Write>(&mut self, w: &mut W, scalar: bool) -> io::Result<()> {
        let Some(first) = self.pending.take() else {
            return Ok(());
        };
        let layout = self.arrays.last_mut().map_or(Layout::Block, |l| {
            if *l == Layout::Undecided {
                *l = if scalar {
                    Layout::Inline
                } else {
                    Layout::Block
                };
            }
            *l
        });
        match (layout, first) {
            (Layout::Inline, true) => Ok(()),
            (Layout::Inline, false) => w.write_all(b", "),
            (_, true) => self.newline(w),
            (_, false) => {
                w.write_all(b",")?;
                self.newline(w)
            }
        }
    }
}

macro_rules! scalar {
    ($($name:ident: $t:ty),*) => {$(
        fn $name<W: ?Sized + Write>(&mut self, w: &mut W, value: $t) -> io::Result<()> {
            self.element(w, true)?;
            serde_json::ser::CompactFormatter.$name(w, value)
        }
    )*};
}

impl Formatter for CompactArrays {
    scalar!(write_bool: bool, write_i8: i8, write_i16: i16, write_i32: i32, write_i64: i64,
        write_i128: i128, write_u8: u8, write_u16: u16, write_u32: u32, write_u64: u64,
        write_u128: u128, write_f32: f32, write_f64: f64, write_number_str: &str);

    fn write_null<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.element(w, true)?;
        w.write_all(b"null")
    }

    fn begin_string<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.element(w, false)?;
        w.write_all(b"\"")
    }

    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.element(w, false)?;
        self.arrays.push(Layout::Undecided);
        self.indent += 1;
        self.has_value = false;
        w.write_all(b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.indent -= 1;
        let layout = self.arrays.pop();
        if self.has_value && layout == Some(Layout::Block) {
            self.newline(w)?;
        }
        w.write_all(b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, _w: &mut W, first: bool) -> io::Result<()> {
        self.pending = Some(first);
        Ok(())
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.element(w, false)?;
        // Keys and values inside are not array elements.
        self.arrays.push(Layout::Block);
        self.indent += 1;
        self.has_value = false;
        w.write_all(b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.arrays.pop();
        self.indent -= 1;
        if self.has_value {
            self.newline(w)?;
        }
        w.write_all(b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        self.newline(w)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn numbers_stay_on_one_line_and_the_rest_is_pretty() {
        let value = json!({
            "a": [1, 2.5, null],
            "b": ["x", "y"],
            "c": [{"d": []}, {}],
            "e": {}
        });
        let text = super::to_string(&value).unwrap_or_default();
        assert_eq!(
            text,
            "{\n  \"a\": [1, 2.5, null],\n  \"b\": [\n    \"x\",\n    \"y\"\n  ],\n  \"c\": [\n    \
             {\n      \"d\": []\n    },\n    {}\n  ],\n  \"e\": {}\n}"
        );
    }

    #[test]
    fn without_arrays_of_numbers_it_matches_serde_json_pretty() {
        let value = json!({"k": [{"x": 1, "y": ["s"]}], "n": null, "s": "t", "o": {"p": true}});
        let ours = super::to_string(&value).unwrap_or_default();
        let theirs = serde_json::to_string_pretty(&value).unwrap_or_default();
        assert_eq!(ours, theirs);
    }
}
