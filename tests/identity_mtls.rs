//! The mTLS port trusts registered certificates and enforces their policies, as AWS IoT does: a
//! certificate made with `aws iot create-keys-and-certificate --set-as-active`, attached to a thing
//! and to a policy written with `${iot:Connection.Thing.ThingName}`, connects only with that
//! policy, acts for that thing (it downloads a stream on the thing's own topics) and may use
//! nothing else (another client id, an ordinary topic, an explicitly denied topic);
//! `update-certificate --new-status INACTIVE` closes its live session and the next connect is
//! refused. A device certificate signed by the user's own CA (openssl), registered with
//! register-ca-certificate + register-certificate, connects; an unregistered one does not.

mod control_plane_support;
mod gateway_support;

use control_plane_support::identity::{openssl, signed_by_ca, text};
use control_plane_support::{ROLE, Serve};
use gateway_support::{Device, Seen};
use otastream_chunker::Format;
use rumqttc::{QoS, SubscribeReasonCode};
use serde_json::json;

/// Connect as the thing; its own reserved topics; nothing else; `.../denied` explicitly denied.
fn own_topics_policy() -> serde_json::Value {
    let arn = "arn:aws:iot:us-east-1:123456789012";
    let own = "$aws/things/${iot:Connection.Thing.ThingName}";
    json!({
        "Version": "2012-10-17",
        "Statement": [
            { "Effect": "Allow", "Action": "iot:Connect",
              "Resource": format!("{arn}:client/${{iot:Connection.Thing.ThingName}}") },
            { "Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
              "Resource": format!("{arn}:topic/{own}/*") },
            { "Effect": "Allow", "Action": "iot:Subscribe",
              "Resource": format!("{arn}:topicfilter/{own}/*") },
            { "Effect": "Deny", "Action": "iot:Publish",
              "Resource": format!("{arn}:topic/{own}/denied") }
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_certificates_connect_until_deactivated() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let home = tempfile::tempdir()?;
    let server = Serve::start(data.path(), home.path());
    let server_ca = std::fs::read_to_string(data.path().join("pki").join("ca.pem"))?;

    // A stream the device will download on its own thing's topics.
    let image: Vec<u8> = (0..20_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(home.path().join("img.bin"), &image)?;
    server.aws("s3 mb s3://firmware");
    server.aws("s3api put-object --bucket firmware --key img.bin --body img.bin");
    let files = server.json_file(
        "files.json",
        &json!([{ "fileId": 0, "s3Location": { "bucket": "firmware", "key": "img.bin" } }]),
    );
    server.aws(&format!(
        "iot create-stream --stream-id img --files {files} --role-arn {ROLE}"
    ));

    let made = server.aws("iot create-keys-and-certificate --set-as-active");
    let (arn, id) = (text(&made["certificateArn"]), text(&made["certificateId"]));
    let cert = text(&made["certificatePem"]);
    let key = text(&made["keyPair"]["PrivateKey"]);
    server.aws("iot create-thing --thing-name dev1");
    server.aws(&format!(
        "iot attach-thing-principal --thing-name dev1 --principal {arn}"
    ));

    let no_policy = Device::tls(server.mqtts, "dev1", &server_ca, Some((&cert, &key))).await;
    assert!(
        no_policy.is_err(),
        "a certificate without a policy connected"
    );
    let policy = server.json_file("policy.json", &own_topics_policy());
    server.aws(&format!(
        "iot create-policy --policy-name own-topics --policy-document {policy}"
    ));
    server.aws(&format!(
        "iot attach-policy --policy-name own-topics --target {arn}"
    ));
    let other_client = Device::tls(server.mqtts, "not-dev1", &server_ca, Some((&cert, &key))).await;
    assert!(
        other_client.is_err(),
        "iot:Connect allowed another client id"
    );

    let mut dev = Device::tls(server.mqtts, "dev1", &server_ca, Some((&cert, &key))).await?;
    for refused in ["lobby", "#", "$aws/things/dev2/jobs/notify-next"] {
        let suback = dev.subscribe(refused, QoS::AtLeastOnce).await?;
        assert_eq!(
            suback.return_codes,
            vec![SubscribeReasonCode::Failure],
            "{refused}"
        );
    }
    let suback = dev
        .subscribe("$aws/things/dev1/jobs/notify-next", QoS::AtLeastOnce)
        .await?;
    assert_eq!(
        suback.return_codes,
        vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    let (got, _) = dev
        .download("img", Format::Cbor, image.len(), 4096, None)
        .await?;
    assert_eq!(got, image, "the certificate acts for thing dev1");
    // An explicit Deny wins over the Allow of the thing's own topics: AWS disconnects.
    dev.client
        .publish(
            "$aws/things/dev1/denied",
            QoS::AtMostOnce,
            false,
            b"x".to_vec(),
        )
        .await?;
    assert!(
        matches!(dev.next().await?, Seen::Error(_)),
        "a denied publish did not disconnect"
    );
    let mut dev = Device::tls(server.mqtts, "dev1", &server_ca, Some((&cert, &key))).await?;

    server.aws(&format!(
        "iot update-certificate --certificate-id {id} --new-status INACTIVE"
    ));
    assert!(
        matches!(dev.next().await?, Seen::Error(_)),
        "the live session was not closed"
    );
    let again = Device::tls(server.mqtts, "dev1", &server_ca, Some((&cert, &key))).await;
    assert!(again.is_err(), "an INACTIVE certificate connected");
    server.aws(&format!(
        "iot update-certificate --certificate-id {id} --new-status ACTIVE"
    ));
    Device::tls(server.mqtts, "dev1", &server_ca, Some((&cert, &key))).await?;

    // The user's own CA.
    let dir = home.path();
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "ca.key",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-subj",
            "/CN=Fleet CA",
            "-days",
            "30",
            "-sha256",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-out",
            "ca.pem",
        ],
    );
    let code = text(&server.aws("iot get-registration-code")["registrationCode"]);
    signed_by_ca(dir, "verification", &code);
    signed_by_ca(dir, "fleet-1", "fleet-1");
    signed_by_ca(dir, "fleet-2", "fleet-2");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("pem");
    let unregistered = Device::tls(
        server.mqtts,
        "fleet-1",
        &server_ca,
        Some((&read("fleet-1.pem"), &read("fleet-1.key"))),
    )
    .await;
    assert!(
        unregistered.is_err(),
        "an unregistered certificate connected"
    );
    server.aws(
        "iot register-ca-certificate --ca-certificate file://ca.pem \
         --verification-certificate file://verification.pem --set-as-active",
    );
    let fleet_cert = server.aws(
        "iot register-certificate --certificate-pem file://fleet-1.pem \
         --ca-certificate-pem file://ca.pem --set-as-active",
    );
    let fleet_arn = text(&fleet_cert["certificateArn"]);
    server.aws("iot create-thing --thing-name fleet-1");
    server.aws(&format!(
        "iot attach-thing-principal --thing-name fleet-1 --principal {fleet_arn}"
    ));
    server.aws(&format!(
        "iot attach-policy --policy-name own-topics --target {fleet_arn}"
    ));
    let fleet = Device::tls(
        server.mqtts,
        "fleet-1",
        &server_ca,
        Some((&read("fleet-1.pem"), &read("fleet-1.key"))),
    )
    .await;
    if let Err(e) = fleet {
        panic!("a registered user-CA certificate was refused: {e:#}");
    }
    let other = Device::tls(
        server.mqtts,
        "fleet-2",
        &server_ca,
        Some((&read("fleet-2.pem"), &read("fleet-2.key"))),
    )
    .await;
    assert!(other.is_err(), "the CA alone made fleet-2 trusted");
    server.kill();
    Ok(())
}
