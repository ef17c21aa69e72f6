use otastream_jobs::afr_ota::{DocumentError, OtaDocument, OtaFile, Protocol, SIG_SHA256_ECDSA};

fn file() -> OtaFile {
    OtaFile {
        file_path: "/device/updates".into(),
        file_size: 309_929,
        file_id: 0,
        cert_file: "/certs/signer.pem".into(),
        file_type: Some(0),
        attr: None,
        update_data_url: None,
        signature_key: SIG_SHA256_ECDSA.into(),
        signature: "MEQCIFllAbc+/=NGQ==".into(),
    }
}

/// PROTOCOL §3.1, MQTT shape: compact, key order as captured, `/` not escaped.
#[test]
fn mqtt_document_bytes() {
    let doc = OtaDocument {
        protocols: vec![Protocol::Mqtt],
        stream_name: Some("AFR_OTA-d38ac95e-ad29-4565-b082-745995474046".into()),
        files: vec![file()],
    };
    assert_eq!(
        doc.to_json().expect("valid"),
        r#"{"afr_ota":{"protocols":["MQTT"],"streamname":"AFR_OTA-d38ac95e-ad29-4565-b082-745995474046","files":[{"filepath":"/device/updates","filesize":309929,"fileid":0,"certfile":"/certs/signer.pem","fileType":0,"sig-sha256-ecdsa":"MEQCIFllAbc+/=NGQ=="}]}}"#
    );
}

/// PROTOCOL §3.1, HTTP shape: no streamname, update_data_url + auth_scheme before the signature.
#[test]
fn http_document_bytes() {
    let mut f = file();
    f.file_path = "test".into();
    f.file_size = 448_952;
    f.cert_file = "test".into();
    f.file_type = None;
    f.update_data_url = Some(
        "${aws:iot:s3-presigned-url:https://b.s3.us-east-1.amazonaws.com/SignedImages/x}".into(),
    );
    let doc = OtaDocument {
        protocols: vec![Protocol::Http],
        stream_name: None,
        files: vec![f],
    };
    assert_eq!(
        doc.to_json().expect("valid"),
        r#"{"afr_ota":{"protocols":["HTTP"],"files":[{"filepath":"test","filesize":448952,"fileid":0,"certfile":"test","update_data_url":"${aws:iot:s3-presigned-url:https://b.s3.us-east-1.amazonaws.com/SignedImages/x}","auth_scheme":"aws.s3.presigned","sig-sha256-ecdsa":"MEQCIFllAbc+/=NGQ=="}]}}"#
    );
}

/// Both protocols, numeric attr, an RSA key name.
#[test]
fn both_protocols_attr_and_rsa_key() {
    let mut f = file();
    f.attr = Some(3);
    f.signature_key = "sig-sha256-rsa".into();
    f.update_data_url = Some("https://h/k".into());
    let doc = OtaDocument {
        protocols: vec![Protocol::Mqtt, Protocol::Http],
        stream_name: Some("s".into()),
        files: vec![f],
    };
    let text = doc.to_json().expect("valid");
    assert!(
        text.starts_with(r#"{"afr_ota":{"protocols":["MQTT","HTTP"],"streamname":"s","files":[{"#)
    );
    assert!(text.contains(r#""fileType":0,"attr":3,"update_data_url":"https://h/k","auth_scheme":"aws.s3.presigned","sig-sha256-rsa":"#));
}

/// Anything the agent could not read back is refused instead of escaped or emitted.
#[test]
fn refusals() {
    let ok = OtaDocument {
        protocols: vec![Protocol::Mqtt],
        stream_name: Some("s".into()),
        files: vec![file()],
    };
    let mut quoted = ok.clone();
    quoted.files[0].file_path = "a\"b".into();
    assert_eq!(
        quoted.to_json(),
        Err(DocumentError::NeedsEscaping { field: "filepath" })
    );
    let mut ctl = ok.clone();
    ctl.files[0].cert_file = "a\nb".into();
    assert_eq!(
        ctl.to_json(),
        Err(DocumentError::NeedsEscaping { field: "certfile" })
    );
    let cases: Vec<OtaDocument> = vec![
        OtaDocument {
            stream_name: None,
            ..ok.clone()
        },
        OtaDocument {
            protocols: vec![],
            ..ok.clone()
        },
        OtaDocument {
            protocols: vec![Protocol::Mqtt, Protocol::Mqtt],
            ..ok.clone()
        },
        OtaDocument {
            protocols: vec![Protocol::Http],
            ..ok.clone()
        },
        OtaDocument {
            files: vec![],
            ..ok.clone()
        },
        OtaDocument {
            files: vec![OtaFile {
                file_size: 0,
                ..file()
            }],
            ..ok.clone()
        },
        OtaDocument {
            files: vec![OtaFile {
                signature_key: "signature".into(),
                ..file()
            }],
            ..ok.clone()
        },
        OtaDocument {
            files: vec![OtaFile {
                signature_key: "sig-SHA256-ecdsa".into(),
                ..file()
            }],
            ..ok.clone()
        },
    ];
    for doc in cases {
        assert!(
            matches!(doc.to_json(), Err(DocumentError::Invalid(_))),
            "{doc:?}"
        );
    }
    assert!(ok.to_json().is_ok());
}
