//! The test PKI, generated once per test run with rcgen (no committed keys, no certificates that expire
//! under our feet): a CA, a `localhost` leaf (SAN DNS:localhost, IP:127.0.0.1), a leaf for another name,
//! an expired `localhost` leaf, and a `localhost` leaf from a CA the client does not trust. The shapes follow
//! the lab's (`shared/smtp-lab.md`): CA:TRUE with keyCertSign, leaves with serverAuth.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mailshot::smtp::testing::{ScriptServer, timeouts};
use mailshot::smtp::{ClientConfig, Security};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A server's certificate chain and key.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

impl Identity {
    /// A rustls server configuration presenting this identity (TLS 1.2 and 1.3).
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(self.key.clone()));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)
            .unwrap();
        Arc::new(config)
    }
}

pub struct Pki {
    /// The CA the client trusts (in PEM, for job files).
    pub ca_pem: String,
    pub ca: CertificateDer<'static>,
    pub localhost: Identity,
    pub other_name: Identity,
    pub expired: Identity,
    pub unknown_ca: Identity,
}

/// The PKI, generated on first use.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(generate)
}

fn generate() -> Pki {
    let ca = make_ca("mailshot test CA");
    let stranger = make_ca("somebody else's CA");
    let localhost = leaf(&ca, &["localhost"], CN_LOCALHOST, None);
    let other_name = leaf(&ca, &["mail.other.test"], "mail.other.test", None);
    let expired = leaf(&ca, &["localhost"], CN_LOCALHOST, Some((2020, 2021)));
    let unknown_ca = leaf(&stranger, &["localhost"], CN_LOCALHOST, None);
    Pki { ca_pem: ca.pem(), ca: ca.der().clone(), localhost, other_name, expired, unknown_ca }
}

const CN_LOCALHOST: &str = "localhost";

fn make_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A server certificate for `names` (plus IP 127.0.0.1), valid from 2020 for decades unless `years` says.
fn leaf(ca: &CertifiedIssuer<'static, KeyPair>, names: &[&str], cn: &str, years: Option<(i32, i32)>) -> Identity {
    let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.subject_alt_names.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let (from, until) = years.unwrap_or((2020, 2100));
    params.not_before = rcgen::date_time_ymd(from, 1, 1);
    params.not_after = rcgen::date_time_ymd(until, 1, 1);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    Identity { chain: vec![cert.der().clone(), ca.der().clone()], key: key.serialize_der() }
}

/// A client configuration for a scripted server: host `localhost` (the test leaf's name), the test CA
/// trusted, deadlines of a few seconds so a hung test fails instead of waiting minutes.
pub fn client_config(server: &ScriptServer, security: Security) -> ClientConfig {
    let mut config = ClientConfig::new("localhost", server.port());
    config.security = security;
    config.ehlo_name = Some("localhost".into()); // transcripts stay the same on every machine
    config.extra_roots = vec![pki().ca.clone()];
    config.timeouts = timeouts(Duration::from_secs(5));
    config
}
