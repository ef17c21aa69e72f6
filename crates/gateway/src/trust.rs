//! Who may connect on the mTLS port: [`DeviceTrust`] decides, once the TLS handshake proved that the
//! client holds the key of its certificate, whether that certificate is trusted and which thing it
//! acts for. [`StoreTrust`] is AWS IoT's rule over the store's registered certificates.

use std::sync::Arc;

use otastream_iot_policy::{Policy, ResourceArns};
use otastream_pki::Certificate;
use otastream_store::{Backend, CaCertificateStatus, CertificateStatus, DeviceCertificate};

use crate::authorize::Authorization;

/// The outcome of [`DeviceTrust::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustDecision {
    /// The connection may go on, acting for this thing.
    Accept {
        /// The thing name the session is keyed by.
        thing: String,
        /// For a registered certificate, what its policies grant (None: the fixed rule of
        /// [`crate::policy`]).
        authorization: Option<Arc<Authorization>>,
    },
    /// The connection is closed; the reason goes to the log.
    Refuse(String),
}

/// Decides whether a client certificate (DER) may connect. Blocking (it may read the store): the
/// gateway calls it on the blocking pool.
pub trait DeviceTrust: Send + Sync {
    /// The decision for `certificate_der` at Unix time `now`.
    fn check(&self, certificate_der: &[u8], now: i64) -> TrustDecision;
}

/// AWS IoT's rule: a registered certificate is accepted while `ACTIVE` (and its CA, if it has one,
/// is `ACTIVE`) and acts for the thing it is attached to (the one named like its CN when it is
/// attached to several). An unregistered certificate signed directly by the dev CA (`otastream
/// dev-cert` before it registered certificates, or `DevPki::issue_device_cert`) is still accepted,
/// acting for its CN. Everything else is refused.
pub struct StoreTrust {
    store: Arc<dyn Backend>,
    dev_ca: Certificate,
    arns: ResourceArns,
}

impl StoreTrust {
    /// Trust over `store`, with `dev_ca_pem` as the dev CA and ARNs of `region` / `account`.
    pub fn new(
        store: Arc<dyn Backend>,
        dev_ca_pem: &str,
        region: &str,
        account: &str,
    ) -> Result<Self, otastream_pki::CertError> {
        Ok(Self {
            store,
            dev_ca: Certificate::from_pem(dev_ca_pem)?,
            arns: ResourceArns::new(region, account),
        })
    }

    /// The default versions of the policies attached to `record`, and its things.
    fn authorization(
        &self,
        cert: &Certificate,
        record: &DeviceCertificate,
        things: &[String],
    ) -> Result<Authorization, otastream_store::StoreError> {
        let mut policies = Vec::new();
        for name in self.store.policies_for_target(&record.arn)? {
            let Some(policy) = self.store.get_policy(&name)? else {
                continue;
            };
            let Some(version) = self
                .store
                .get_policy_version(&name, policy.default_version_id)?
            else {
                continue;
            };
            match Policy::parse(&version.document) {
                Ok(parsed) => policies.push(parsed),
                // Stored documents were checked when written; a bad one grants nothing.
                Err(e) => {
                    tracing::warn!(policy = %name, error = %e, "stored policy does not parse")
                }
            }
        }
        let mut attached_things = Vec::new();
        for name in things {
            if let Some(thing) = self.store.get_thing(name)? {
                attached_things.push(otastream_iot_policy::Thing {
                    name: thing.name,
                    type_name: thing.type_name,
                    attributes: thing.attributes,
                });
            }
        }
        Ok(Authorization {
            policies,
            arns: self.arns.clone(),
            attached_things,
            certificate: cert.policy_variables(),
        })
    }

    fn decide(&self, cert: &Certificate) -> Result<TrustDecision, otastream_store::StoreError> {
        let refuse = |why: String| Ok(TrustDecision::Refuse(why));
        let cn = cert.common_name();
        let Some(record) = self.store.get_device_certificate(&cert.id())? else {
            return match (cert.check_signed_by(&self.dev_ca), cn) {
                (Ok(()), Some(thing)) => Ok(TrustDecision::Accept {
                    thing,
                    authorization: None,
                }),
                (Ok(()), None) => refuse("the dev certificate has no CN".into()),
                (Err(_), _) => refuse(format!("certificate {} is not registered", cert.id())),
            };
        };
        if record.status != CertificateStatus::Active {
            return refuse(format!(
                "certificate {} is {}",
                record.id,
                record.status.as_str()
            ));
        }
        if let Some(ca_id) = &record.ca_certificate_id {
            let active = self
                .store
                .get_ca_certificate(ca_id)?
                .is_some_and(|ca| ca.status == CaCertificateStatus::Active);
            if !active {
                return refuse(format!("the CA certificate {ca_id} is not ACTIVE"));
            }
        }
        let things = self.store.principal_things(&record.arn)?;
        let thing = match cn {
            Some(cn) if things.is_empty() || things.contains(&cn) => Some(cn),
            _ => things.first().cloned(),
        };
        match thing {
            Some(thing) => Ok(TrustDecision::Accept {
                thing,
                authorization: Some(Arc::new(self.authorization(cert, &record, &things)?)),
            }),
            None => refuse(format!(
                "certificate {} has no CN and no attached thing",
                record.id
            )),
        }
    }
}

impl DeviceTrust for StoreTrust {
    fn check(&self, certificate_der: &[u8], now: i64) -> TrustDecision {
        let cert = match Certificate::from_der(certificate_der.to_vec()) {
            Ok(cert) => cert,
            Err(e) => return TrustDecision::Refuse(e.to_string()),
        };
        if let Err(e) = cert.check_valid_at(now) {
            return TrustDecision::Refuse(e.to_string());
        }
        self.decide(&cert).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "certificate lookup failed");
            TrustDecision::Refuse(format!("certificate lookup failed: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otastream_store::{DeviceCertificate, IdentityRepo, Store, Thing, ThingRepo};

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
    }

    fn register(store: &Store, cert: &Certificate, status: CertificateStatus) -> String {
        let arn = format!("arn:aws:iot:us-east-1:1:cert/{}", cert.id());
        store
            .create_device_certificate(&DeviceCertificate {
                id: cert.id(),
                arn: arn.clone(),
                pem: cert.to_pem(),
                status,
                ca_certificate_id: None,
                owner: "1".into(),
                created_ms: 0,
                modified_ms: 0,
                not_before_ms: 0,
                not_after_ms: 0,
                customer_version: 1,
                generation_id: "g".into(),
            })
            .expect("register");
        arn
    }

    #[test]
    fn registered_certificates_follow_their_status_and_attached_thing() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(dir.path()).expect("store");
        let pki = otastream_pki::DevPki::load_or_create(&store.pki_dir()).expect("pki");
        let trust = StoreTrust::new(Arc::new(store.clone()), &pki.ca_cert_pem, "us-east-1", "1")
            .expect("trust");

        // Unregistered, signed by the dev CA: accepted as its CN.
        let (pem, _) = pki.issue_device_cert("legacy").expect("cert");
        let legacy = Certificate::from_pem(&pem).expect("pem");
        assert_eq!(
            trust.check(legacy.der(), now()),
            TrustDecision::Accept {
                thing: "legacy".into(),
                authorization: None
            }
        );
        // Unregistered from another CA: refused.
        let other = tempfile::tempdir().expect("dir");
        let other = otastream_pki::DevPki::load_or_create(other.path()).expect("pki");
        let (pem, _) = other.issue_device_cert("legacy").expect("cert");
        let foreign = Certificate::from_pem(&pem).expect("pem");
        assert!(matches!(
            trust.check(foreign.der(), now()),
            TrustDecision::Refuse(_)
        ));
        // Registered by CreateKeysAndCertificate (CN "AWS IoT Certificate"), attached to dev1.
        let made = pki
            .create_keys_and_certificate(std::time::SystemTime::now())
            .expect("made");
        let cert = Certificate::from_pem(&made.certificate_pem).expect("pem");
        let arn = register(&store, &cert, CertificateStatus::Active);
        store
            .create_thing(&Thing {
                name: "dev1".into(),
                arn: "arn:t".into(),
                id: "i".into(),
                type_name: None,
                attributes: Default::default(),
                version: 1,
            })
            .expect("thing");
        store.attach_thing_principal("dev1", &arn).expect("attach");
        let TrustDecision::Accept {
            thing,
            authorization: Some(authorization),
        } = trust.check(cert.der(), now())
        else {
            panic!("a registered ACTIVE certificate was refused");
        };
        assert_eq!(thing, "dev1");
        assert!(authorization.policies.is_empty(), "no policy attached yet");
        assert_eq!(authorization.attached_things[0].name, "dev1");
        // INACTIVE (and a registered dev certificate that is INACTIVE): refused.
        let mut record = store
            .get_device_certificate(&cert.id())
            .expect("get")
            .expect("stored");
        record.status = CertificateStatus::Inactive;
        store.update_device_certificate(&record).expect("update");
        assert!(matches!(
            trust.check(cert.der(), now()),
            TrustDecision::Refuse(_)
        ));
        register(&store, &legacy, CertificateStatus::Revoked);
        assert!(matches!(
            trust.check(legacy.der(), now()),
            TrustDecision::Refuse(_)
        ));
        // Outside its validity window: refused.
        assert!(matches!(
            trust.check(foreign.der(), 0),
            TrustDecision::Refuse(_)
        ));
    }
}
