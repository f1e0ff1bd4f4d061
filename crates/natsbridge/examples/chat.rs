//! A chat message with a file by link: the seeds' first walkthrough.
//!
//! One program plays both peers, each on its own connection. The receiver
//! subscribes to `chat.room1`; the sender smartsends a text, a small image
//! and a 3 MB document. Text and image ride inside the envelope as base64;
//! the document is over the size threshold, so it is uploaded to the file
//! server and only its URL travels (the claim-check pattern). The receiver
//! gets all three, the document downloaded and checked against its size
//! and SHA-256, and answers on the message's `reply_to`.
//!
//! Needs a nats-server and a Plik-compatible file server, from the
//! environment: `NATS_URL` (default `nats://127.0.0.1:4222`) and
//! `NATSBRIDGE_FILESERVER` (required). `cargo run -p natsbridge-cli -- dev`
//! starts both and prints them. Then:
//!
//! ```sh
//! cargo run -p natsbridge --example chat
//! ```

use std::error::Error;
use std::time::Duration;

use natsbridge::{Bridge, Payload, PayloadValue, SendOptions, Transport, sha256_hex};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tokio::time::timeout(Duration::from_secs(30), run()).await?
}

async fn run() -> Result<(), Box<dyn Error>> {
    let nats = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let files = std::env::var("NATSBRIDGE_FILESERVER")
        .map_err(|_| "NATSBRIDGE_FILESERVER is not set: this example sends a file by link")?;

    let receiver = Bridge::builder(&nats).fileserver(&files).connect().await?;
    let mut room = receiver.subscribe("chat.room1").await?;
    let mut replies = receiver.subscribe("chat.replies").await?;
    // The server has both subscriptions before the other connection sends.
    receiver.connection().sync().await?;

    let sender = Bridge::builder(&nats).fileserver(&files).connect().await?;
    let document: Vec<u8> =
        (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let avatar = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d];
    let options = SendOptions::new().with_reply_to("chat.replies").with_sender_name("alice");
    let (sent, json) = sender
        .smartsend(
            "chat.room1",
            vec![
                Payload::text("message_text", "Hello! The report is attached."),
                Payload::image("user_avatar", avatar.clone()),
                Payload::binary("large_document", document.clone()),
            ],
            options,
        )
        .await?
        .into_parts()?;
    println!("sent {} to chat.room1: {} bytes on the wire", sent.msg_id, json.len());

    let received = room.next().await.ok_or("subscription ended")?.map_err(|r| r.error)?;
    let received_envelope = received.to_envelope()?;
    println!(
        "received {} from {} on {}",
        received_envelope.msg_id,
        received_envelope.sender_name,
        received.subject()
    );
    for record in &received_envelope.payloads {
        let how = match record.url() {
            Some(url) => format!("by link {url}"),
            None => "direct".to_string(),
        };
        println!(
            "  {:<15} {:<6} {:>9} bytes, {how}",
            record.dataname,
            record.payload_type.as_str(),
            record.size().unwrap_or(0)
        );
    }
    let payloads = &received_envelope.payloads;
    if payloads[0].value()? != PayloadValue::Text("Hello! The report is attached.".into()) {
        return Err("the text differs".into());
    }
    if payloads[1].bytes().map(|b| b.as_ref()) != Some(avatar.as_slice())
        || payloads[1].transport() != Transport::Direct
    {
        return Err("the image should arrive direct and whole".into());
    }
    let got = payloads[2].bytes().ok_or("the document was not downloaded")?;
    if payloads[2].transport() != Transport::Link || sha256_hex(got) != sha256_hex(&document) {
        return Err("the document should arrive by link, byte for byte".into());
    }
    println!("  the document's SHA-256 matches: {}", sha256_hex(got));

    // The receiver answers on the envelope's reply_to (the seeds' convention).
    let answer = vec![Payload::text("message_text", "Thanks, got it.")];
    receiver.reply(&received, answer, SendOptions::new().with_sender_name("bob")).await?;
    let reply = replies.next().await.ok_or("subscription ended")?.map_err(|r| r.error)?;
    let reply_envelope = reply.to_envelope()?;
    if reply_envelope.reply_to_msg_id != sent.msg_id {
        return Err("the reply should name the message it answers".into());
    }
    println!(
        "reply from {}: {:?}",
        reply_envelope.sender_name,
        reply_envelope.payloads[0].value()?
    );
    receiver.flush().await?;
    Ok(())
}
