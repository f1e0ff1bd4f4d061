//! CSV text to a [`Table`] (crate feature `csv`): how a spreadsheet export
//! becomes an `arrowtable`.

use std::io::Cursor;
use std::sync::Arc;

use arrow_csv::reader::{Format, ReaderBuilder};

use crate::error::{Error, ErrorKind, Result};
use crate::ipc::Table;

/// Reads CSV text with a header row into a [`Table`], inferring each
/// column's type from every row.
///
/// Columns become `Int64`, `Float64`, `Boolean`, dates and timestamps where
/// every non-empty value parses as one, and `Utf8` otherwise; an empty field
/// is a null. The column names are the header's. Input that is not UTF-8,
/// has no header row, or has a row with more or fewer fields than the header
/// is an [`ErrorKind::Csv`] error naming the line, never a panic.
///
/// Write the table with [`write_ipc_with`](crate::write_ipc_with) to get
/// `arrowtable` bytes (a header-only CSV gives a table with no batches).
///
/// ```
/// use natsbridge_table_arrow::arrow_schema::DataType;
/// use natsbridge_table_arrow::read_csv;
///
/// let table = read_csv(b"id,name,score\n1,Alice,95.5\n2,Bob,\n")?;
/// assert_eq!(table.num_rows(), 2);
/// assert_eq!(table.schema.field(0).data_type(), &DataType::Int64);
/// assert_eq!(table.schema.field(1).data_type(), &DataType::Utf8);
/// assert_eq!(table.schema.field(2).data_type(), &DataType::Float64);
/// # Ok::<(), natsbridge_table_arrow::Error>(())
/// ```
pub fn read_csv(bytes: &[u8]) -> Result<Table> {
    let csv_error =
        |e: arrow_schema::ArrowError| Error::with_source(ErrorKind::Csv, "cannot read CSV", e);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::new(ErrorKind::Csv, "empty CSV: no header row"));
    }
    let format = Format::default().with_header(true);
    let (schema, _) = format.infer_schema(Cursor::new(bytes), None).map_err(csv_error)?;
    let schema = Arc::new(schema);
    let reader = ReaderBuilder::new(schema.clone())
        .with_format(format)
        .build(Cursor::new(bytes))
        .map_err(csv_error)?;
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>().map_err(csv_error)?;
    Ok(Table::new(schema, batches))
}

#[cfg(test)]
mod tests {
    use arrow_array::{Array, Int64Array, StringArray};
    use arrow_schema::DataType;

    use super::*;

    #[test]
    fn infers_types_and_keeps_nulls() {
        let table = read_csv(b"id,name,ok\n1,Alice,true\n2,,false\n3,\"Smith, J\",true\n").unwrap();
        assert_eq!(table.num_rows(), 3);
        let fields: Vec<_> = table.schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(fields, ["id", "name", "ok"]);
        assert_eq!(table.schema.field(2).data_type(), &DataType::Boolean);
        let batch = &table.batches[0];
        let ids = batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(ids.values(), &[1, 2, 3]);
        let names = batch.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        assert!(names.is_null(1));
        assert_eq!(names.value(2), "Smith, J");
    }

    #[test]
    fn header_only_gives_no_rows() {
        let table = read_csv(b"a,b\n").unwrap();
        assert_eq!(table.num_rows(), 0);
        assert_eq!(table.schema.fields().len(), 2);
    }

    #[test]
    fn bad_input_is_a_csv_error() {
        for input in [&b""[..], b"  \n", b"a,b\n1,2\n3\n", b"a,b\n1,\xff\xfe\n"] {
            let err = read_csv(input).unwrap_err();
            assert_eq!(*err.kind(), ErrorKind::Csv, "{input:?}: {err}");
        }
    }

    #[test]
    fn round_trips_through_ipc() {
        let table = read_csv(b"x,y\n1,a\n2,b\n").unwrap();
        let bytes =
            crate::write_ipc_with(&table.schema, &table.batches, &Default::default()).unwrap();
        let back = crate::read_ipc(&bytes).unwrap();
        assert_eq!(back.batches, table.batches);
    }
}
