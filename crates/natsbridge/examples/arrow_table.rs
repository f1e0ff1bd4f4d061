//! A table exchanged as Arrow: the seeds' table walkthrough.
//!
//! The sender builds two Arrow record batches (`id`, `name`, `score`): a
//! small one of 5 rows and a large one of 200,000 rows. Both go as
//! `arrowtable` payloads (Arrow IPC stream bytes, what pyarrow, Arrow.jl and
//! apache-arrow read): the small one inside the envelope, the large one (a
//! few MB) by link through the file server. The receiver reads them back
//! into Arrow tables (zero-copy over the received bytes) and checks them.
//!
//! From the environment: `NATS_URL` (default `nats://127.0.0.1:4222`) and
//! `NATSBRIDGE_FILESERVER` (required, for the large table).
//!
//! ```sh
//! cargo run -p natsbridge --example arrow_table
//! ```

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use natsbridge::table::arrow_array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray,
};
use natsbridge::table::{arrow_payload, read_ipc};
use natsbridge::{Bridge, PayloadType, SendOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tokio::time::timeout(Duration::from_secs(30), run()).await?
}

fn people(rows: usize) -> Result<RecordBatch, Box<dyn Error>> {
    let ids: Vec<i64> = (0..rows as i64).collect();
    let names: Vec<String> = (0..rows).map(|i| format!("person-{i}")).collect();
    let scores: Vec<f64> = (0..rows).map(|i| (i % 1000) as f64 / 10.0).collect();
    Ok(RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from(ids)) as ArrayRef),
        ("name", Arc::new(StringArray::from(names)) as ArrayRef),
        ("score", Arc::new(Float64Array::from(scores)) as ArrayRef),
    ])?)
}

async fn run() -> Result<(), Box<dyn Error>> {
    let nats = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let files = std::env::var("NATSBRIDGE_FILESERVER")
        .map_err(|_| "NATSBRIDGE_FILESERVER is not set: the large table goes by link")?;

    let receiver = Bridge::builder(&nats).fileserver(&files).connect().await?;
    let mut tables = receiver.subscribe("tables.people").await?;
    receiver.connection().sync().await?;

    let sender = Bridge::builder(&nats).fileserver(&files).connect().await?;
    let (small, large) = (people(5)?, people(200_000)?);
    let payloads = vec![
        arrow_payload("small_table", std::slice::from_ref(&small))?,
        arrow_payload("large_table", std::slice::from_ref(&large))?,
    ];
    let sent = sender.smartsend("tables.people", payloads, SendOptions::default()).await?;
    println!("sent {} ({} bytes on the wire)", sent.view()?.msg_id(), sent.json().len());

    let received = tables.next().await.ok_or("subscription ended")?.map_err(|r| r.error)?;
    for (record, expected) in received.to_envelope()?.payloads.iter().zip([&small, &large]) {
        if record.payload_type != PayloadType::ArrowTable {
            return Err(
                format!("{} arrived as {}", record.dataname, record.payload_type.as_str()).into()
            );
        }
        let bytes = record.bytes().ok_or("a link was not fetched")?;
        let table = read_ipc(bytes)?;
        println!(
            "received {:<11} {:?} {:>9} bytes: {} rows, columns {:?}",
            record.dataname,
            record.transport(),
            bytes.len(),
            table.num_rows(),
            table.schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>()
        );
        if table.batches.as_slice() != std::slice::from_ref(expected) {
            return Err(format!("{} differs from what was sent", record.dataname).into());
        }
    }
    let first = &received.to_envelope()?.payloads;
    if first[0].url().is_some() || first[1].url().is_none() {
        return Err("the small table should go direct and the large one by link".into());
    }
    println!("both tables arrived intact");
    Ok(())
}
