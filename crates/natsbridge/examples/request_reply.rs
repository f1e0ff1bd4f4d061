//! A request-reply service and its client, in one program.
//!
//! The service joins the queue group `greeters` on `greeter.hello` (run it
//! twice and each request goes to one of them) and answers each request
//! with a greeting and a small dictionary. The client sends three requests
//! with `Bridge::request`, which names its reply subject both as the NATS
//! reply inbox and as the envelope's `reply_to`, so it works with this
//! service and with responders written from the seeds alike. Then it asks
//! a subject nobody serves and gets `NoResponders` at once, not a timeout.
//!
//! From the environment: `NATS_URL` (default `nats://127.0.0.1:4222`) and,
//! optionally, `NATSBRIDGE_FILESERVER` (large answers would go by link).
//!
//! ```sh
//! cargo run -p natsbridge --example request_reply
//! ```

use std::error::Error;
use std::time::Duration;

use natsbridge::transport::ErrorKind as NatsKind;
use natsbridge::{Bridge, BridgeBuilder, ErrorKind, Payload, PayloadValue, SendOptions};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tokio::time::timeout(Duration::from_secs(30), run()).await?
}

fn builder() -> BridgeBuilder {
    let nats = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let builder = Bridge::builder(&nats);
    match std::env::var("NATSBRIDGE_FILESERVER") {
        Ok(files) if !files.is_empty() => builder.fileserver(files),
        _ => builder,
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    // The service, on its own connection and task.
    let service = builder().connect().await?;
    let mut requests = service.queue_subscribe("greeter.hello", "greeters").await?;
    service.connection().sync().await?; // subscribed on the server before any request
    let serving = tokio::spawn(async move {
        let mut answered = 0;
        while let Some(item) = requests.next().await {
            let request = match item {
                Ok(request) => request,
                Err(rejected) => {
                    eprintln!(
                        "service: not an envelope on {}: {}",
                        rejected.subject, rejected.error
                    );
                    continue;
                }
            };
            let name = match request.view().payloads().first().map(|p| p.value()) {
                Some(Ok(PayloadValue::Text(name))) => name,
                _ => "stranger".to_string(),
            };
            let answer = vec![
                Payload::text("greeting", format!("Hello, {name}!")),
                Payload::dictionary(
                    "meta",
                    &json!({"length": name.len(), "served_by": "greeter-1"}),
                )
                .expect("a JSON value serializes"),
            ];
            let options = SendOptions::new().with_sender_name("greeter");
            if let Err(e) = service.reply(&request, answer, options).await {
                eprintln!("service: cannot answer: {e}");
            }
            answered += 1;
        }
        answered
    });

    // The client.
    let client = builder().connect().await?;
    for name in ["Ada", "Grace", "Edsger"] {
        let options = SendOptions::new().with_sender_name("client");
        let started = std::time::Instant::now();
        let answer = client
            .request(
                "greeter.hello",
                vec![Payload::text("name", name)],
                options,
                Duration::from_secs(2),
            )
            .await?;
        let greeting = answer.payloads[0].value()?;
        let meta = answer.payloads[1].value()?;
        println!(
            "request {name:?} -> {greeting:?} {meta:?} from {} in {:?} (answers msg {})",
            answer.sender_name,
            started.elapsed(),
            answer.reply_to_msg_id
        );
        if greeting != PayloadValue::Text(format!("Hello, {name}!")) {
            return Err(format!("unexpected answer to {name}: {greeting:?}").into());
        }
    }

    // Nobody serves this subject: the server says so at once.
    let nobody = client
        .request(
            "greeter.nobody",
            vec![Payload::text("name", "x")],
            SendOptions::default(),
            Duration::from_secs(2),
        )
        .await;
    match nobody {
        Err(e) if e.kind() == &ErrorKind::Nats(NatsKind::NoResponders) => {
            println!("request to greeter.nobody -> no responders, as expected");
        }
        other => return Err(format!("expected no responders, got {other:?}").into()),
    }

    // Stopping the service: its connection closes when the last clone of
    // its bridge goes; here the task is simply aborted.
    serving.abort();
    client.flush().await?;
    Ok(())
}
