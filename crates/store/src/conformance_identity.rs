//! The device-identity checks of the conformance suite ([`crate::IdentityRepo`]): certificates and
//! their delete rules, CA certificates, policies and versions, attachments.

use crate::{
    Backend, CaCertificate, CaCertificateStatus, CertificateStatus, Conflict, DeviceCertificate,
    Kind, MAX_POLICY_VERSIONS, Policy, PolicyVersion, StoreError, Thing,
};

fn ok<T>(result: Result<T, StoreError>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn expect_conflict<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
    want: impl Fn(&Conflict) -> bool,
) {
    match result {
        Err(StoreError::Conflict(c)) if want(&c) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
}

fn expect_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, kind: Kind) {
    match result {
        Err(StoreError::NotFound { kind: k, .. }) if k == kind => {}
        other => panic!("expected NotFound({kind:?}), got {other:?}"),
    }
}

fn device(id: &str, ca: Option<&str>) -> DeviceCertificate {
    DeviceCertificate {
        id: id.into(),
        arn: format!("arn:aws:iot:us-east-1:1:cert/{id}"),
        pem: "-----BEGIN CERTIFICATE-----".into(),
        status: CertificateStatus::Active,
        ca_certificate_id: ca.map(str::to_owned),
        owner: "1".into(),
        created_ms: 1,
        modified_ms: 1,
        not_before_ms: 0,
        not_after_ms: 9,
        customer_version: 1,
        generation_id: "g1".into(),
    }
}

fn thing(name: &str) -> Thing {
    Thing {
        name: name.into(),
        arn: format!("arn:aws:iot:us-east-1:1:thing/{name}"),
        id: format!("id-{name}"),
        type_name: None,
        attributes: Default::default(),
        version: 1,
    }
}

/// Device and CA certificates: create once, update, list by order, the delete rules (ACTIVE,
/// attached to a thing or a policy, a CA with certificates), the registration code.
pub fn identity_certificates(b: &dyn Backend) {
    let ca = CaCertificate {
        id: "ca1".into(),
        arn: "arn:aws:iot:us-east-1:1:cacert/ca1".into(),
        pem: "-----BEGIN CERTIFICATE-----".into(),
        status: CaCertificateStatus::Active,
        auto_registration: false,
        registration_config: None,
        owner: "1".into(),
        created_ms: 1,
        modified_ms: 1,
        not_before_ms: 0,
        not_after_ms: 9,
        customer_version: 1,
        generation_id: "g".into(),
    };
    ok(b.create_ca_certificate(&ca), "create CA");
    assert!(matches!(
        b.create_ca_certificate(&ca),
        Err(StoreError::AlreadyExists {
            kind: Kind::CaCertificate,
            ..
        })
    ));
    ok(b.create_device_certificate(&device("c1", None)), "create");
    ok(
        b.create_device_certificate(&device("c2", Some("ca1"))),
        "create",
    );
    assert!(matches!(
        b.create_device_certificate(&device("c1", None)),
        Err(StoreError::AlreadyExists {
            kind: Kind::DeviceCertificate,
            ..
        })
    ));
    let ids: Vec<String> = ok(b.list_device_certificates(), "list")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, ["c1", "c2"]);
    expect_not_found(
        b.update_device_certificate(&device("nope", None)),
        Kind::DeviceCertificate,
    );

    // The CA cannot go while ACTIVE, nor while c2 names it.
    expect_conflict(b.delete_ca_certificate("ca1"), |c| {
        matches!(c, Conflict::CaCertificateActive(_))
    });
    let mut inactive_ca = ca.clone();
    inactive_ca.status = CaCertificateStatus::Inactive;
    ok(b.update_ca_certificate(&inactive_ca), "update CA");
    assert_eq!(ok(b.get_ca_certificate("ca1"), "get CA"), Some(inactive_ca));
    expect_conflict(b.delete_ca_certificate("ca1"), |c| {
        matches!(
            c,
            Conflict::CaCertificateInUse {
                certificates: 1,
                ..
            }
        )
    });

    // c1: ACTIVE, then attached to a thing and a policy.
    let c1 = device("c1", None);
    ok(b.create_thing(&thing("t1")), "thing");
    ok(b.attach_thing_principal("t1", &c1.arn), "attach principal");
    ok(
        b.create_policy(&policy("p1", 1), &version("p1", 1)),
        "policy",
    );
    ok(b.attach_policy("p1", &c1.arn), "attach policy");
    expect_conflict(b.delete_device_certificate("c1", true), |c| {
        matches!(c, Conflict::CertificateActive(_))
    });
    let mut revoked = c1.clone();
    revoked.status = CertificateStatus::Revoked;
    revoked.customer_version = 2;
    ok(b.update_device_certificate(&revoked), "revoke");
    assert_eq!(ok(b.get_device_certificate("c1"), "get"), Some(revoked));
    expect_conflict(b.delete_device_certificate("c1", true), |c| {
        matches!(c, Conflict::CertificateInUse { things: 1, .. })
    });
    assert!(ok(b.detach_thing_principal("t1", &c1.arn), "detach"));
    expect_conflict(b.delete_device_certificate("c1", false), |c| {
        matches!(c, Conflict::CertificateInUse { policies: 1, .. })
    });
    assert!(ok(b.get_device_certificate("c1"), "a refused delete keeps it").is_some());
    ok(b.delete_device_certificate("c1", true), "force delete");
    assert!(ok(b.get_device_certificate("c1"), "get").is_none());
    assert!(
        ok(b.targets_for_policy("p1"), "targets").is_empty(),
        "a forced delete detaches its policies"
    );
    expect_not_found(
        b.delete_device_certificate("c1", true),
        Kind::DeviceCertificate,
    );

    let mut c2 = device("c2", Some("ca1"));
    c2.status = CertificateStatus::Inactive;
    ok(b.update_device_certificate(&c2), "deactivate");
    ok(b.delete_device_certificate("c2", false), "delete");
    ok(b.delete_ca_certificate("ca1"), "delete CA");
    expect_not_found(b.delete_ca_certificate("ca1"), Kind::CaCertificate);
    assert!(ok(b.list_ca_certificates(), "list CAs").is_empty());

    let code = ok(b.registration_code("code-1"), "code");
    assert_eq!(code, "code-1");
    assert_eq!(
        ok(b.registration_code("code-2"), "code"),
        "code-1",
        "the code stays the same once handed out"
    );
}

fn policy(name: &str, default: u64) -> Policy {
    Policy {
        name: name.into(),
        arn: format!("arn:aws:iot:us-east-1:1:policy/{name}"),
        default_version_id: default,
        next_version_id: default + 1,
        created_ms: 1,
        modified_ms: 1,
        generation_id: "g".into(),
    }
}

fn version(name: &str, id: u64) -> PolicyVersion {
    PolicyVersion {
        policy_name: name.into(),
        version_id: id,
        document: format!("{{\"v\":{id}}}"),
        created_ms: id,
    }
}

/// Policies, versions (ids never reused, at most five, the default cannot go), attachments and
/// thing principals.
pub fn identity_policies(b: &dyn Backend) {
    ok(b.create_policy(&policy("p", 1), &version("p", 1)), "create");
    assert!(matches!(
        b.create_policy(&policy("p", 1), &version("p", 1)),
        Err(StoreError::AlreadyExists {
            kind: Kind::Policy,
            ..
        })
    ));
    for n in 2..=MAX_POLICY_VERSIONS as u64 {
        let (p, v) = ok(b.create_policy_version("p", "{}", n == 3, n), "version");
        assert_eq!(v.version_id, n);
        assert_eq!(p.default_version_id, if n >= 3 { 3 } else { 1 });
    }
    expect_conflict(b.create_policy_version("p", "{}", false, 9), |c| {
        matches!(c, Conflict::PolicyVersionsLimit { max: 5, .. })
    });
    expect_conflict(b.delete_policy_version("p", 3), |c| {
        matches!(c, Conflict::DefaultPolicyVersion { version_id: 3, .. })
    });
    expect_not_found(b.delete_policy_version("p", 42), Kind::PolicyVersion);
    expect_not_found(
        b.set_default_policy_version("p", 42, 10),
        Kind::PolicyVersion,
    );
    ok(b.delete_policy_version("p", 5), "delete v5");
    let (_, v6) = ok(b.create_policy_version("p", "{}", false, 11), "v6");
    assert_eq!(v6.version_id, 6, "version ids are never reused");
    ok(b.set_default_policy_version("p", 6, 12), "set default");
    assert_eq!(
        ok(b.get_policy("p"), "get").map(|p| p.default_version_id),
        Some(6)
    );
    let ids: Vec<u64> = ok(b.list_policy_versions("p"), "versions")
        .into_iter()
        .map(|v| v.version_id)
        .collect();
    assert_eq!(ids, [1, 2, 3, 4, 6]);
    assert_eq!(
        ok(b.get_policy_version("p", 1), "get v1"),
        Some(version("p", 1))
    );
    expect_not_found(b.list_policy_versions("nope"), Kind::Policy);
    expect_not_found(b.create_policy_version("nope", "{}", true, 1), Kind::Policy);

    // Attachments.
    expect_not_found(b.attach_policy("nope", "arn:t"), Kind::Policy);
    ok(b.attach_policy("p", "arn:t1"), "attach");
    ok(b.attach_policy("p", "arn:t1"), "attach again");
    ok(
        b.create_policy(&policy("q", 1), &version("q", 1)),
        "create q",
    );
    ok(b.attach_policy("q", "arn:t1"), "attach q");
    ok(b.attach_policy("p", "arn:t2"), "attach");
    assert_eq!(
        ok(b.policies_for_target("arn:t1"), "for target"),
        ["p", "q"]
    );
    assert_eq!(
        ok(b.targets_for_policy("p"), "targets"),
        ["arn:t1", "arn:t2"]
    );
    expect_conflict(b.delete_policy("p"), |c| {
        matches!(c, Conflict::PolicyInUse { targets: 2, .. })
    });
    assert!(ok(b.detach_policy("p", "arn:t1"), "detach"));
    assert!(!ok(b.detach_policy("p", "arn:t1"), "detach again"));
    assert!(ok(b.detach_policy("p", "arn:t2"), "detach"));
    expect_conflict(b.delete_policy("p"), |c| {
        matches!(c, Conflict::PolicyHasVersions { versions: 5, .. })
    });
    for id in [1, 2, 3, 4] {
        ok(b.delete_policy_version("p", id), "delete version");
    }
    ok(b.delete_policy("p"), "delete");
    expect_not_found(b.delete_policy("p"), Kind::Policy);
    let names: Vec<String> = ok(b.list_policies(), "list")
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["q"]);

    // Thing principals.
    expect_not_found(b.attach_thing_principal("ghost", "arn:c"), Kind::Thing);
    ok(b.create_thing(&thing("a")), "thing");
    ok(b.create_thing(&thing("b")), "thing");
    ok(b.attach_thing_principal("a", "arn:c1"), "attach");
    ok(b.attach_thing_principal("a", "arn:c1"), "attach again");
    ok(b.attach_thing_principal("a", "arn:c2"), "attach");
    ok(b.attach_thing_principal("b", "arn:c1"), "attach");
    assert_eq!(
        ok(b.thing_principals("a"), "principals"),
        ["arn:c1", "arn:c2"]
    );
    assert_eq!(ok(b.principal_things("arn:c1"), "things"), ["a", "b"]);
    assert!(ok(b.detach_thing_principal("a", "arn:c1"), "detach"));
    assert!(!ok(b.detach_thing_principal("a", "arn:c1"), "detach again"));
    assert!(ok(b.delete_thing("b"), "delete thing"));
    assert!(
        ok(b.principal_things("arn:c1"), "things").is_empty(),
        "deleting a thing drops its principals"
    );
}
