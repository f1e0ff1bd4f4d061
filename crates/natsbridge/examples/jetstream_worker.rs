//! A JetStream durable worker: jobs that wait for it, and nothing lost.
//!
//! Jobs are published to the stream `EXAMPLE_JOBS` with
//! `Bridge::jetstream_send`, which waits for the stream's ack (and sends
//! the envelope's `msg_id` as `Nats-Msg-Id`, so a retried publish is stored
//! once) before any worker runs: the stream keeps them. One job carries a
//! 2 MB attachment, which goes by link when a file server is configured.
//! Then the durable consumer `example-worker` reads them as a `Stream`:
//! each job is acked once its envelope decoded (links fetched and
//! verified), or naked to be redelivered later. Progress is kept on the
//! server under the durable name, so a worker restarted later goes on
//! where the last one stopped.
//!
//! From the environment: `NATS_URL` (default `nats://127.0.0.1:4222`; the
//! server needs JetStream, `nats-server -js`) and, optionally,
//! `NATSBRIDGE_FILESERVER`.
//!
//! ```sh
//! cargo run -p natsbridge --example jetstream_worker
//! ```

use std::collections::BTreeSet;
use std::error::Error;
use std::time::Duration;

use natsbridge::{Bridge, Payload, PayloadValue, SendOptions};
use serde_json::{Map, json};

const JOBS: usize = 5;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tokio::time::timeout(Duration::from_secs(30), run()).await?
}

async fn run() -> Result<(), Box<dyn Error>> {
    let nats = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let files = std::env::var("NATSBRIDGE_FILESERVER").ok().filter(|f| !f.is_empty());
    let mut builder = Bridge::builder(&nats);
    if let Some(files) = &files {
        builder = builder.fileserver(files);
    }
    let bridge = builder.connect().await?;
    bridge.connection().jetstream().ensure_stream("EXAMPLE_JOBS", &["example.jobs.>"]).await?;

    // This run's jobs are told apart from earlier runs' by a run id in
    // their metadata (a durable consumer on a stream that outlives the
    // program may still hold an earlier run's unfinished jobs).
    let run_id = format!("run-{}-{}", std::process::id(), bridge.connection().new_inbox());
    let mut metadata = Map::new();
    metadata.insert("run".into(), json!(run_id));
    for n in 0..JOBS {
        let mut payloads = vec![Payload::text("task", format!("resize image {n}"))];
        if n == 2 && files.is_some() {
            payloads.push(Payload::binary("attachment", vec![n as u8; 2_000_000]));
        }
        let options = SendOptions::new().with_metadata(metadata.clone());
        let (sent, ack) = bridge.jetstream_send("example.jobs.resize", payloads, options).await?;
        println!(
            "queued job {n}: msg {} stored as {}#{}",
            sent.view()?.msg_id(),
            ack.stream,
            ack.sequence
        );
    }

    // The worker: a durable pull consumer read as a Stream.
    let mut worker = bridge.jetstream_consumer("EXAMPLE_JOBS", "example-worker").await?;
    let mut done = BTreeSet::new();
    while done.len() < JOBS {
        let job = match worker.next().await.ok_or("the consumer stopped")? {
            Ok(job) => job,
            Err(rejected) if rejected.subject.is_empty() => {
                return Err(format!("the consumer failed: {}", rejected.error).into());
            }
            Err(rejected) => {
                println!(
                    "job on {} rejected (naked, will be redelivered): {}",
                    rejected.subject, rejected.error
                );
                continue;
            }
        };
        let envelope = job.to_envelope()?;
        if envelope.metadata.get("run") != Some(&json!(run_id)) {
            println!("acked a job left by an earlier run: {}", envelope.msg_id);
            continue;
        }
        let PayloadValue::Text(task) = envelope.payloads[0].value()? else {
            return Err("a job without a task".into());
        };
        let attachment = envelope.payloads.get(1).map(|p| (p.transport(), p.size().unwrap_or(0)));
        println!("worker: done {task:?} (msg {}), attachment {attachment:?}", envelope.msg_id);
        done.insert(envelope.msg_id);
    }
    println!("all {JOBS} jobs processed and acked");
    Ok(())
}
