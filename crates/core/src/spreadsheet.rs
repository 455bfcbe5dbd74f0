//! CSV for spreadsheets. A cell that a spreadsheet would read as a formula (one starting with
//! `=`, `+`, `-`, `@`, a tab or a carriage return: OWASP's list for CSV injection) is written
//! after a `'`, which spreadsheets show as text. Device names, incident titles, event messages
//! and persons' names come from devices and terminals; a hostile one (`=HYPERLINK(...)`,
//! `=cmd|' /C calc'!A0`) would otherwise run when a reviewer opens an export. A number (`-70`,
//! `+3.5`) is left as it is.
//!
//! Every CSV the console writes goes through [`Writer`] or [`cell`].

use std::borrow::Cow;
use std::io::Write;

use serde::Serialize;

/// `text` as a cell no spreadsheet runs.
pub fn cell(text: &str) -> Cow<'_, str> {
    let risky = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && text.trim().parse::<f64>().is_err() {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// A CSV writer whose every cell goes through [`cell`].
pub struct Writer<W: Write> {
    inner: csv::Writer<W>,
    wrote_header: bool,
    /// Reads each serialised row back into its cells; one for the whole file (building a
    /// parser, its tables, took longer than the row: two thirds of a large export's time).
    parser: csv_core::Reader,
}

impl<W: Write> Writer<W> {
    pub fn from_writer(out: W) -> Self {
        Self {
            inner: csv::Writer::from_writer(out),
            wrote_header: false,
            parser: csv_core::Reader::new(),
        }
    }

    pub fn write_record<I, T>(&mut self, record: I) -> csv::Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        self.inner
            .write_record(record.into_iter().map(|c| cell(c.as_ref()).into_owned()))
    }

    /// Writes `row` as serde and the csv crate would (a header row from its field names before
    /// the first), each cell through [`cell`].
    pub fn serialize<T: Serialize>(&mut self, row: &T) -> csv::Result<()> {
        for record in serde_records(&mut self.parser, row, !self.wrote_header)? {
            self.write_record(record.iter())?;
        }
        self.wrote_header = true;
        Ok(())
    }

    /// Writes the header row of `T` (its field names) unless a row went before: a file with
    /// no rows still says its columns (an empty file broke the tools that read the report).
    pub fn ensure_header<T: Serialize + Default>(&mut self) -> csv::Result<()> {
        if !self.wrote_header {
            let header = serde_records(&mut self.parser, &T::default(), true)?;
            if let Some(header) = header.first() {
                self.write_record(header.iter())?;
            }
            self.wrote_header = true;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The records the csv crate makes of `row` (its header first, when asked), read back with
/// `parser`.
fn serde_records<T: Serialize>(
    parser: &mut csv_core::Reader,
    row: &T,
    with_header: bool,
) -> csv::Result<Vec<csv::StringRecord>> {
    let mut scratch = csv::WriterBuilder::new()
        .has_headers(with_header)
        .from_writer(Vec::new());
    scratch.serialize(row)?;
    let bytes = scratch
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(split_records(parser, &bytes))
}

/// The records of `input`, CSV text the csv crate wrote (so UTF-8, cut at ASCII delimiters).
fn split_records(parser: &mut csv_core::Reader, mut input: &[u8]) -> Vec<csv::StringRecord> {
    use csv_core::ReadRecordResult;
    parser.reset();
    let mut records = Vec::new();
    // A field's text is never longer than its CSV (quotes are only taken away).
    let mut output = vec![0u8; input.len().max(1)];
    let mut ends = vec![0usize; 16];
    let (mut outlen, mut endlen) = (0, 0);
    loop {
        let (result, nin, nout, nend) =
            parser.read_record(input, &mut output[outlen..], &mut ends[endlen..]);
        input = &input[nin..];
        outlen += nout;
        endlen += nend;
        match result {
            // Called again with no input, it ends the last record.
            ReadRecordResult::InputEmpty => {}
            ReadRecordResult::OutputFull => output.resize(output.len() * 2, 0),
            ReadRecordResult::OutputEndsFull => ends.resize(ends.len() * 2, 0),
            ReadRecordResult::Record => {
                let mut record = csv::StringRecord::with_capacity(outlen, endlen);
                let mut start = 0;
                for &end in &ends[..endlen] {
                    record.push_field(&String::from_utf8_lossy(&output[start..end]));
                    start = end;
                }
                records.push(record);
                (outlen, endlen) = (0, 0);
            }
            ReadRecordResult::End => return records,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_quoted_and_numbers_and_plain_text_left_alone() {
        for (given, written) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "'=HYPERLINK(\"http://x\",\"y\")",
            ),
            ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("-70", "-70"),
            ("+3.5", "+3.5"),
            ("Van 7 = ok", "Van 7 = ok"),
            ("", ""),
        ] {
            assert_eq!(cell(given), written, "{given:?}");
        }
    }

    #[test]
    fn rows_written_or_serialized_come_out_quoted_with_one_header() {
        #[derive(Serialize)]
        struct Row<'a> {
            name: &'a str,
            signal: f64,
        }
        let mut w = Writer::from_writer(Vec::new());
        w.serialize(&Row {
            name: "=1+1",
            signal: -70.0,
        })
        .unwrap();
        w.serialize(&Row {
            name: "Ann",
            signal: -3.5,
        })
        .unwrap();
        w.write_record(["@x", "1"]).unwrap();
        let text = String::from_utf8(w.inner.into_inner().unwrap()).unwrap();
        assert_eq!(text, "name,signal\n'=1+1,-70.0\nAnn,-3.5\n'@x,1\n");
    }
    #[test]
    fn rows_read_back_with_one_parser_are_what_the_csv_crate_reads() {
        // Quotes, delimiters and line breaks inside cells, empty cells, text in other scripts,
        // and more cells than the parser's first buffer of field ends holds.
        let cells: Vec<String> = [
            "plain",
            "a,b",
            "say \"hi\"",
            "two\nlines",
            "",
            "crlf\r\nend",
            "Zoë — Łódź 東京",
            "\"",
        ]
        .iter()
        .map(|c| (*c).to_owned())
        .chain((0..20).map(|i| format!("cell {i}")))
        .collect();
        let mut text = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(Vec::new());
        text.write_record(&cells).unwrap();
        text.write_record(["second", "row"]).unwrap();
        let bytes = text.into_inner().unwrap();
        let expected: Vec<csv::StringRecord> = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes.as_slice())
            .records()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut parser = csv_core::Reader::new();
        for _ in 0..3 {
            // The same parser, row after row.
            assert_eq!(split_records(&mut parser, &bytes), expected);
        }
        assert_eq!(expected[0].len(), 28);
        assert_eq!(&expected[0][3], "two\nlines");
    }
}
