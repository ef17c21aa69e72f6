//! Schema migration 2 of the embedded backend: converts the untyped `resources` rows written by
//! earlier builds (AWS-shaped JSON documents with `_`-prefixed private members) into the typed
//! record tables, then drops `resources`. Runs once, inside the migration's transaction, so a data
//! directory either opens fully converted or not at all.

use rusqlite::{Connection, params};
use serde_json::Value;

use crate::sqlite_records::{
    CERTIFICATES, JOBS, OTA_UPDATES, SIGNING_JOBS, SIGNING_PROFILES, THING_GROUPS, THINGS, Write,
};
use crate::{
    Certificate, OtaError, OtaUpdate, OtaUpdateStatus, ProfileStatus, S3Version, SignedObject,
    SigningJob, SigningProfile, SigningStatus, StoreError, StoreResult, Thing, ThingGroup,
};

/// Converts every `resources` row (in insertion order) and drops the table.
pub(crate) fn convert_resources(conn: &Connection) -> StoreResult<()> {
    let rows: Vec<(String, String, Option<String>, String)> = {
        let mut stmt = conn.prepare("SELECT kind, id, parent, body FROM resources ORDER BY seq")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let converted = rows.len();
    for (kind, id, _parent, body) in rows {
        let doc: Value = serde_json::from_str(&body)?;
        convert_one(conn, &kind, &id, &doc).map_err(|e| {
            StoreError::db_source(format!("cannot convert the old {kind} record '{id}'"), e)
        })?;
    }
    conn.execute_batch("DROP TABLE resources;")?;
    if converted > 0 {
        tracing::info!(
            records = converted,
            "converted the untyped resource records into typed tables"
        );
    }
    Ok(())
}

fn convert_one(conn: &Connection, kind: &str, id: &str, doc: &Value) -> StoreResult<()> {
    match kind {
        "thing" => THINGS.write(conn, id, &thing(doc)?, Write::Upsert),
        "thing-group" => THING_GROUPS.write(conn, id, &thing_group(doc), Write::Upsert),
        "thing-group-member" => {
            conn.execute(
                "INSERT INTO group_members (group_name, thing) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![text(&doc["thingGroupName"]), text(&doc["thingName"])],
            )?;
            Ok(())
        }
        "job" => JOBS.write(conn, id, doc, Write::Upsert),
        "job-execution" => {
            conn.execute(
                "INSERT INTO job_executions (job_id, thing, body) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (job_id, thing) DO UPDATE SET body = excluded.body",
                params![
                    text(&doc["jobId"]),
                    text(&doc["thingName"]),
                    doc.to_string()
                ],
            )?;
            Ok(())
        }
        "ota-update" => OTA_UPDATES.write(conn, id, &ota_update(doc)?, Write::Upsert),
        "signer-profile" => SIGNING_PROFILES.write(conn, id, &profile(doc), Write::Upsert),
        "signer-job" => SIGNING_JOBS.write(conn, id, &signing_job(doc)?, Write::Upsert),
        "acm-certificate" => CERTIFICATES.write(conn, id, &certificate(id, doc), Write::Upsert),
        other => Err(StoreError::db(format!("unknown resource kind '{other}'"))),
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn opt_text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn opt_value(v: &Value) -> Option<Value> {
    (!v.is_null()).then(|| v.clone())
}

/// Epoch seconds (the old documents' timestamps) as milliseconds.
fn ms(v: &Value) -> u64 {
    let secs = v.as_f64().unwrap_or(0.0).max(0.0);
    // Old timestamps are milliseconds / 1000 as f64: rounding restores them exactly.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let millis = (secs * 1000.0).round() as u64;
    millis
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

fn thing(doc: &Value) -> StoreResult<Thing> {
    Ok(Thing {
        name: text(&doc["thingName"]),
        arn: text(&doc["thingArn"]),
        id: text(&doc["thingId"]),
        type_name: opt_text(&doc["thingTypeName"]),
        attributes: serde_json::from_value(doc["attributes"].clone()).unwrap_or_default(),
        version: doc["version"].as_u64().unwrap_or(1),
    })
}

fn thing_group(doc: &Value) -> ThingGroup {
    let meta = &doc["thingGroupMetadata"];
    ThingGroup {
        name: text(&doc["thingGroupName"]),
        arn: text(&doc["thingGroupArn"]),
        id: text(&doc["thingGroupId"]),
        version: doc["version"].as_u64().unwrap_or(1),
        properties: opt_value(&doc["thingGroupProperties"])
            .unwrap_or_else(|| Value::Object(Default::default())),
        parent: opt_text(&meta["parentGroupName"]),
        created_ms: ms(&meta["creationDate"]),
    }
}

fn ota_update(doc: &Value) -> StoreResult<OtaUpdate> {
    let status = doc["otaUpdateStatus"].as_str().unwrap_or_default();
    let status = OtaUpdateStatus::parse(status)
        .ok_or_else(|| StoreError::db(format!("unknown OTA update status '{status}'")))?;
    let error = doc
        .get("errorInfo")
        .filter(|e| e.is_object())
        .map(|e| OtaError {
            code: text(&e["code"]),
            message: text(&e["message"]),
        });
    Ok(OtaUpdate {
        id: text(&doc["otaUpdateId"]),
        arn: text(&doc["otaUpdateArn"]),
        created_ms: ms(&doc["creationDate"]),
        modified_ms: ms(&doc["lastModifiedDate"]),
        description: opt_text(&doc["description"]),
        targets: strings(&doc["targets"]),
        protocols: strings(&doc["protocols"]),
        target_selection: opt_text(&doc["targetSelection"]).unwrap_or_else(|| "SNAPSHOT".into()),
        rollout_config: opt_value(&doc["awsJobExecutionsRolloutConfig"]),
        presigned_url_config: doc["awsJobPresignedUrlConfig"].clone(),
        abort_config: opt_value(&doc["_abortConfig"]),
        timeout_config: opt_value(&doc["_timeoutConfig"]),
        files: doc["otaUpdateFiles"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        additional_parameters: opt_value(&doc["additionalParameters"]),
        role_arn: text(&doc["_roleArn"]),
        status,
        job_id: opt_text(&doc["awsIotJobId"]),
        job_arn: opt_text(&doc["awsIotJobArn"]),
        error,
        created_stream: opt_text(&doc["_createdStream"]),
        streams: strings(&doc["_streams"]),
    })
}

fn profile(doc: &Value) -> SigningProfile {
    SigningProfile {
        name: text(&doc["profileName"]),
        version: text(&doc["profileVersion"]),
        version_arn: text(&doc["profileVersionArn"]),
        arn: text(&doc["arn"]),
        certificate_arn: text(&doc["signingMaterial"]["certificateArn"]),
        platform_id: text(&doc["platformId"]),
        platform_display_name: text(&doc["platformDisplayName"]),
        signing_parameters: doc["signingParameters"].clone(),
        status: if doc["status"] == "Canceled" {
            ProfileStatus::Canceled
        } else {
            ProfileStatus::Active
        },
        signature_validity_period: doc["signatureValidityPeriod"].clone(),
        overrides: opt_value(&doc["overrides"]),
        tags: opt_value(&doc["tags"]),
    }
}

fn signing_job(doc: &Value) -> StoreResult<SigningJob> {
    let status = match doc["status"].as_str().unwrap_or_default() {
        "InProgress" => SigningStatus::InProgress,
        "Succeeded" => SigningStatus::Succeeded,
        "Failed" => SigningStatus::Failed,
        other => return Err(StoreError::db(format!("unknown signing status '{other}'"))),
    };
    let src = &doc["source"]["s3"];
    let signed = doc["signedObject"]["s3"]
        .as_object()
        .map(|s3| SignedObject {
            object: S3Version {
                bucket: s3.get("bucketName").map(text).unwrap_or_default(),
                key: s3.get("key").map(text).unwrap_or_default(),
                version: text(&doc["_signedVersion"]),
            },
            signature: text(&doc["_signature"]),
        });
    Ok(SigningJob {
        id: text(&doc["jobId"]),
        source: S3Version {
            bucket: text(&src["bucketName"]),
            key: text(&src["key"]),
            version: text(&src["version"]),
        },
        destination_bucket: text(&doc["_destination"]["bucketName"]),
        destination_prefix: text(&doc["_destination"]["prefix"]),
        certificate_arn: text(&doc["signingMaterial"]["certificateArn"]),
        platform_id: text(&doc["platformId"]),
        platform_display_name: text(&doc["platformDisplayName"]),
        profile_name: text(&doc["profileName"]),
        profile_version: text(&doc["profileVersion"]),
        signing_parameters: doc["signingParameters"].clone(),
        created_ms: ms(&doc["createdAt"]),
        completed_ms: (!doc["completedAt"].is_null()).then(|| ms(&doc["completedAt"])),
        status,
        status_reason: opt_text(&doc["statusReason"]),
        signed,
        account_id: text(&doc["jobOwner"]),
    })
}

fn certificate(id: &str, doc: &Value) -> Certificate {
    let pem = &doc["_pem"];
    Certificate {
        id: id.to_owned(),
        arn: text(&doc["CertificateArn"]),
        domain_name: text(&doc["DomainName"]),
        subject: text(&doc["Subject"]),
        issuer: text(&doc["Issuer"]),
        serial: text(&doc["Serial"]),
        not_before_ms: ms(&doc["NotBefore"]),
        not_after_ms: ms(&doc["NotAfter"]),
        imported_ms: ms(&doc["ImportedAt"]),
        key_algorithm: text(&doc["KeyAlgorithm"]),
        signature_algorithm: text(&doc["SignatureAlgorithm"]),
        certificate_pem: text(&pem["certificate"]),
        private_key_pem: text(&pem["privateKey"]),
        chain_pem: opt_text(&pem["chain"]),
    }
}
