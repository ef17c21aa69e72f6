"""The seed workflow with boto3 against otastream (endpoint in argv[1], credentials in the env).

Exits non-zero on the first mismatch; prints "boto3 workflow OK" at the end.
"""
import json
import sys
import time
import urllib.error
import urllib.request

import boto3
from botocore.config import Config

endpoint = sys.argv[1]
cfg = Config(s3={"addressing_style": "path"}, signature_version="s3v4", retries={"max_attempts": 1})
s3 = boto3.client("s3", endpoint_url=endpoint, config=cfg)
acm = boto3.client("acm", endpoint_url=endpoint)
signer = boto3.client("signer", endpoint_url=endpoint)
iot = boto3.client("iot", endpoint_url=endpoint)
ROLE = "arn:aws:iam::123456789012:role/ota-role"


def wait(what, get, done):
    for _ in range(300):
        value = get()
        if done(value):
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} never finished: {value}")


def expect_error(exception, call, **kwargs):
    try:
        call(**kwargs)
    except exception as e:
        return e
    raise AssertionError(f"{call.__name__} did not raise {exception.__name__}")


firmware = bytes((i * 7 + 3) % 251 for i in range(50_000))
s3.create_bucket(Bucket="boto-bucket")
s3.put_bucket_versioning(Bucket="boto-bucket", VersioningConfiguration={"Status": "Enabled"})
version = s3.put_object(Bucket="boto-bucket", Key="fw.bin", Body=firmware)["VersionId"]
assert s3.get_object(Bucket="boto-bucket", Key="fw.bin", VersionId=version)["Body"].read() == firmware
expect_error(s3.exceptions.NoSuchKey, s3.get_object, Bucket="boto-bucket", Key="missing.bin")

# Presigned V4 GET: valid, then expired.
url = s3.generate_presigned_url("get_object", Params={"Bucket": "boto-bucket", "Key": "fw.bin"}, ExpiresIn=300)
assert "X-Amz-Signature=" in url, url
assert urllib.request.urlopen(url).read() == firmware
short = s3.generate_presigned_url("get_object", Params={"Bucket": "boto-bucket", "Key": "fw.bin"}, ExpiresIn=1)
time.sleep(2.1)
try:
    urllib.request.urlopen(short)
    raise AssertionError("an expired presigned URL was served")
except urllib.error.HTTPError as e:
    assert e.code == 403, e.code

cert_arn = acm.list_certificates()["CertificateSummaryList"][0]["CertificateArn"]
signer.put_signing_profile(profileName="boto_profile", platformId="AmazonFreeRTOS-Default",
                           signingMaterial={"certificateArn": cert_arn}, signingParameters={"certname": "c.crt"})
expect_error(signer.exceptions.ValidationException, signer.put_signing_profile, profileName="bad-name",
             platformId="AmazonFreeRTOS-Default", signingMaterial={"certificateArn": cert_arn})
job_id = signer.start_signing_job(
    source={"s3": {"bucketName": "boto-bucket", "key": "fw.bin", "version": version}},
    destination={"s3": {"bucketName": "boto-bucket", "prefix": "SignedImages/"}},
    profileName="boto_profile")["jobId"]
job = wait("signing", lambda: signer.describe_signing_job(jobId=job_id), lambda j: j["status"] != "InProgress")
assert job["status"] == "Succeeded", job
signed_key = job["signedObject"]["s3"]["key"]
assert signed_key == f"SignedImages/{job_id}", signed_key

iot.create_thing(thingName="boto_dev")
files = [{"fileId": 5, "s3Location": {"bucket": "boto-bucket", "key": signed_key}}]
stream = iot.create_stream(streamId="boto_stream", files=files, roleArn=ROLE)
assert stream["streamVersion"] == 1
e = expect_error(iot.exceptions.ResourceAlreadyExistsException, iot.create_stream, streamId="boto_stream",
                 files=files, roleArn=ROLE)
assert e.response["resourceId"] == "boto_stream", e.response
expect_error(iot.exceptions.InvalidRequestException, iot.create_stream, streamId="bad_ids",
             files=[{"fileId": 300, "s3Location": {"bucket": "boto-bucket", "key": "fw.bin"}}], roleArn=ROLE)
expect_error(iot.exceptions.ResourceNotFoundException, iot.describe_stream, streamId="nope")

iot.create_ota_update(
    otaUpdateId="boto_ota", targets=["arn:aws:iot:us-east-1:123456789012:thing/boto_dev"], protocols=["MQTT"],
    files=[{"fileName": "fw.bin", "fileLocation": {"stream": {"streamId": "boto_stream", "fileId": 5}},
            "codeSigning": {"awsSignerJobId": job_id}}],
    roleArn=ROLE)
info = wait("ota", lambda: iot.get_ota_update(otaUpdateId="boto_ota")["otaUpdateInfo"],
            lambda i: i["otaUpdateStatus"] != "CREATE_PENDING")
assert info["otaUpdateStatus"] == "CREATE_COMPLETE", info
assert info["awsIotJobId"] == "AFR_OTA-boto_ota", info
doc = json.loads(iot.get_job_document(jobId="AFR_OTA-boto_ota")["document"])["afr_ota"]
assert doc["streamname"] == "boto_stream" and doc["files"][0]["fileid"] == 5, doc
assert doc["files"][0]["filesize"] == len(firmware) and doc["files"][0]["certfile"] == "c.crt", doc
assert doc["files"][0]["sig-sha256-ecdsa"].startswith("ME"), doc
executions = iot.list_job_executions_for_job(jobId="AFR_OTA-boto_ota")["executionSummaries"]
assert [e["jobExecutionSummary"]["status"] for e in executions] == ["QUEUED"], executions
expect_error(iot.exceptions.InvalidStateTransitionException, iot.delete_job, jobId="AFR_OTA-boto_ota")
iot.delete_ota_update(otaUpdateId="boto_ota", deleteStream=True, forceDeleteAWSJob=True)
expect_error(iot.exceptions.ResourceNotFoundException, iot.describe_job, jobId="AFR_OTA-boto_ota")
iot.describe_stream(streamId="boto_stream")  # the user's stream is kept
print("boto3 workflow OK")
