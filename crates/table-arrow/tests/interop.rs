//! Live interop with pyarrow (from pandas) and apache-arrow (Node): their
//! bytes read here, ours read there, cell by cell, stream and file format.

use natsbridge_table_arrow::{Bytes, IpcFormat, WriteOptions, read_ipc, write_ipc_with};

use crate::util::{assert_same_cells, node, node_reference_batch, python, reference_batch, run};

fn temp(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    (dir, path)
}

fn formats() -> [(IpcFormat, &'static str); 2] {
    [(IpcFormat::Stream, "stream"), (IpcFormat::File, "file")]
}

#[test]
fn pyarrow_from_pandas_to_rust_and_back() {
    for (format, name) in formats() {
        let (_dir, path) = temp("from_python.arrow");
        let mut cmd = python();
        cmd.args(["write", name]).arg(&path);
        run(cmd);
        let received = Bytes::from(std::fs::read(&path).unwrap());
        assert_eq!(IpcFormat::detect(&received), format);
        let table = read_ipc(&received).unwrap();
        assert!(table.schema.metadata().contains_key("pandas"), "pandas metadata dropped");
        assert_eq!(table.batches.len(), 1);
        assert_same_cells(&table.batches[0], &reference_batch());

        // Back to Python, in the same format, metadata and all.
        let options = WriteOptions::new().with_format(format);
        let sent = write_ipc_with(&table.schema, &table.batches, &options).unwrap();
        let (_dir, back) = temp("from_rust.arrow");
        std::fs::write(&back, &sent).unwrap();
        let mut cmd = python();
        cmd.arg("check").arg(&back);
        let report: serde_json::Value = serde_json::from_str(&run(cmd)).unwrap();
        assert_eq!(report["mismatches"], serde_json::json!([]), "{report}");
        assert_eq!(report["metadata_keys"], serde_json::json!(["pandas"]), "{report}");
    }
}

#[test]
fn rust_built_table_reads_in_pyarrow() {
    let batch = reference_batch();
    for (format, _) in formats() {
        let sent = write_ipc_with(
            batch.schema_ref(),
            std::slice::from_ref(&batch),
            &WriteOptions::new().with_format(format),
        )
        .unwrap();
        let (_dir, path) = temp("rust.arrow");
        std::fs::write(&path, &sent).unwrap();
        let mut cmd = python();
        cmd.arg("check").arg(&path);
        let report: serde_json::Value = serde_json::from_str(&run(cmd)).unwrap();
        assert_eq!(report["rows"], 5, "{report}");
        assert_eq!(report["mismatches"], serde_json::json!([]), "{report}");
    }
}

#[test]
fn apache_arrow_node_to_rust_and_back() {
    let want = node_reference_batch();
    for (format, name) in formats() {
        let (_dir, path) = temp("from_node.arrow");
        let mut cmd = node();
        cmd.args(["write", name]).arg(&path);
        run(cmd);
        let received = Bytes::from(std::fs::read(&path).unwrap());
        assert_eq!(IpcFormat::detect(&received), format);
        let table = read_ipc(&received).unwrap();
        assert_eq!(table.num_rows(), 5);
        assert_same_cells(&table.batches[0], &want);

        // Rust's own bytes of the same table, read by Node.
        let options = WriteOptions::new().with_format(format);
        let sent =
            write_ipc_with(want.schema_ref(), std::slice::from_ref(&want), &options).unwrap();
        let (_dir, back) = temp("from_rust.arrow");
        std::fs::write(&back, &sent).unwrap();
        let mut cmd = node();
        cmd.arg("check").arg(&back);
        let report: serde_json::Value = serde_json::from_str(&run(cmd)).unwrap();
        assert_eq!(report["mismatches"], serde_json::json!([]), "{report}");
        assert_eq!(report["cells"]["name"][0], "node 0 ü", "{report}");
    }
}
