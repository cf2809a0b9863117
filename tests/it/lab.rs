//! The lab works from Rust: implicit TLS trusting the lab CA, greeting, EHLO, QUIT.
//! (Deliberately not using our SMTP client, so that a lab problem is told apart from a client bug.)

use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::common::lab_env::lab;

/// Reads one (possibly multi-line) reply and returns its lines.
async fn reply<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert!(r.read_line(&mut line).await.unwrap() > 0, "server closed the connection");
        let done = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line.trim_end().to_owned());
        if done {
            return lines;
        }
    }
}

#[tokio::test]
async fn implicit_tls_port_greets_and_offers_auth() {
    let Some(lab) = lab("implicit_tls_port_greets_and_offers_auth") else { return };
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(&lab.ca_file).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect((lab.host.as_str(), lab.tls_port)).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake with the lab CA");
    let mut io = BufReader::new(tls);

    let greeting = reply(&mut io).await;
    assert!(greeting[0].starts_with("220 "), "{greeting:?}");
    io.write_all(b"EHLO test.example\r\n").await.unwrap();
    let ehlo = reply(&mut io).await;
    assert!(ehlo.iter().all(|l| l.starts_with("250")), "{ehlo:?}");
    assert!(ehlo.iter().any(|l| l[4..].starts_with("AUTH") && l.contains("PLAIN")), "{ehlo:?}");
    io.write_all(b"QUIT\r\n").await.unwrap();
    assert!(reply(&mut io).await[0].starts_with("221"));
}
