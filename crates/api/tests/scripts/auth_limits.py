"""What AWS answers to requests it refuses, checked with boto3 and urllib against otastream
(endpoint in argv[1], the server's credentials in the env). Prints one JSON object of outcomes;
the Rust test asserts on it."""
import http.client
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

import boto3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint = sys.argv[1]
cfg = Config(s3={"addressing_style": "path"}, signature_version="s3v4", retries={"max_attempts": 1})
out = {}


def error_of(call):
    try:
        call()
    except ClientError as e:
        meta = e.response.get("ResponseMetadata", {})
        return {
            "code": e.response["Error"]["Code"],
            "status": meta.get("HTTPStatusCode"),
            "request_id": e.response["Error"].get("RequestId") or meta.get("RequestId"),
            "region": e.response["Error"].get("Region"),
        }
    return None


def raw(url, headers=None, data=None, method="GET"):
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request) as response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            return {"status": response.status, "body": response.read(), "headers": headers}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read(), "headers": {k.lower(): v for k, v in e.headers.items()}}


s3 = boto3.client("s3", endpoint_url=endpoint, config=cfg)
s3.create_bucket(Bucket="limits")
data = bytes(range(256)) * 40
s3.put_object(Bucket="limits", Key="obj.bin", Body=data)

# Another region in the credential scope: S3 answers AuthorizationHeaderMalformed with the
# expected Region, which botocore understands (it signs again for that region and succeeds).
s3_eu = boto3.client("s3", endpoint_url=endpoint, config=cfg, region_name="eu-west-1")
out["s3_wrong_region_redirected"] = error_of(lambda: s3_eu.list_objects_v2(Bucket="limits")) is None
signed_eu = AWSRequest(method="GET", url=endpoint + "/limits?list-type=2")
S3SigV4Auth(boto3.Session().get_credentials(), "s3", "eu-west-1").add_auth(signed_eu)
wrong = raw(signed_eu.url, dict(signed_eu.headers.items()))
out["s3_wrong_region"] = {"status": wrong["status"], "body": wrong["body"].decode(),
                          "request_id": wrong["headers"].get("x-amz-request-id")}
iot_eu = boto3.client("iot", endpoint_url=endpoint, region_name="eu-west-1")
out["iot_wrong_region"] = error_of(lambda: iot_eu.list_things())
presigned_eu = s3_eu.generate_presigned_url("get_object", Params={"Bucket": "limits", "Key": "obj.bin"})
wrong = raw(presigned_eu)
out["presigned_wrong_region"] = {"status": wrong["status"], "body": wrong["body"].decode()}

# An access key the server does not know.
unknown = dict(aws_access_key_id="AKIAUNKNOWNKEY000001", aws_secret_access_key="whatever")
s3_unknown = boto3.client("s3", endpoint_url=endpoint, config=cfg, **unknown)
out["s3_unknown_key"] = error_of(lambda: s3_unknown.list_objects_v2(Bucket="limits"))
out["s3_missing_key_request_id"] = error_of(lambda: s3.get_object(Bucket="limits", Key="nope"))

# Ranges: one range is 206 with its exact Content-Range; several ranges are ignored (200, all).
url = s3.generate_presigned_url("get_object", Params={"Bucket": "limits", "Key": "obj.bin"})
one = raw(url, {"Range": "bytes=10-19"})
out["range_one"] = {"status": one["status"], "content_range": one["headers"].get("content-range"),
                    "ok": one["body"] == data[10:20]}
several = raw(url, {"Range": "bytes=0-1,5-6"})
out["range_several"] = {"status": several["status"], "ok": several["body"] == data}
beyond = raw(url, {"Range": f"bytes={len(data) + 10}-"})
out["range_beyond"] = {"status": beyond["status"], "body": beyond["body"].decode()}

# One body limit on the control plane: 3 MiB reaches the handler (an AWS-shaped answer, not a
# plain-text 413); over 8 MiB is 413 RequestEntityTooLarge, signed or not, declared or not.
iot = boto3.client("iot", endpoint_url=endpoint)
out["iot_3mib"] = error_of(lambda: iot.create_thing(
    thingName="big", attributePayload={"attributes": {"a": "x" * (3 << 20)}}))
out["iot_9mib"] = error_of(lambda: iot.create_thing(
    thingName="big", attributePayload={"attributes": {"a": "x" * (9 << 20)}}))
# A declared 9 MiB body is refused before any of it is sent.
conn = http.client.HTTPConnection(urllib.parse.urlsplit(endpoint).netloc, timeout=30)
conn.putrequest("POST", "/things/big")
conn.putheader("Content-Type", "application/json")
conn.putheader("Content-Length", str(9 << 20))
conn.endheaders()
declared = conn.getresponse()
out["unsigned_9mib"] = {"status": declared.status, "type": declared.getheader("x-amzn-ErrorType")}

print(json.dumps(out))
